//! What a plugin looks like in a registry, following the wasm OCI conventions `wkg`, Spin and
//! wasmCloud use: an image manifest whose config is `application/vnd.wasm.config.v0+json` and
//! whose one layer is the component (`application/wasm`), described by annotations. The
//! SSHSIG signature is not a second layer (wkg refuses manifests with more than one): it is an
//! OCI referrer, a small manifest whose `subject` is the plugin's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The signature referrer's artifact type, and its one layer's media type.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.launch-host.plugin.sshsig.v1";
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.launch-host.sshsig.v1+pem";
/// The OCI 1.1 empty config, for artifacts that have nothing to configure.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY: &[u8] = b"{}";

/// The annotations a pulled plugin is described by (besides the OCI standard ones).
pub const TITLE: &str = "org.opencontainers.image.title";
pub const VERSION: &str = "org.opencontainers.image.version";
pub const DESCRIPTION: &str = "org.opencontainers.image.description";
pub const CREATED: &str = "org.opencontainers.image.created";
pub const ROLE: &str = "dev.launch-host.plugin.role";
pub const CONTRACT: &str = "dev.launch-host.plugin.contract";
pub const CAPABILITIES: &str = "dev.launch-host.plugin.capabilities";

/// The wasm config blob, as `wkg` writes it (`oci-wasm`'s `WasmConfig`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    pub created: String,
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    pub layer_digests: Vec<String>,
    pub component: Option<Component>,
}

/// A component's WIT world, as names (`oci-wasm`'s `Component`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Component {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    pub target: Option<String>,
}

/// A plugin ready to push.
pub struct Package {
    pub wasm: Vec<u8>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub annotations: BTreeMap<String, String>,
    /// The SSHSIG PEM beside the component, if it is signed.
    pub signature: Option<String>,
}

impl Package {
    /// The config blob for this component.
    pub fn config(&self) -> WasmConfig {
        WasmConfig {
            created: self.annotations.get(CREATED).cloned().unwrap_or_default(),
            author: None,
            architecture: "wasm".into(),
            os: "wasip2".into(),
            layer_digests: vec![sha256(&self.wasm)],
            component: Some(Component {
                exports: self.exports.clone(),
                imports: self.imports.clone(),
                target: None,
            }),
        }
    }
}

/// `sha256:HEX` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
