//! Push, resolve and pull plugins. Every byte fetched is checked against the digest that named
//! it (the manifest against the pinned digest, the component against the manifest's layer)
//! and read with a bound, so a registry, a proxy or someone who can write the registry's
//! storage cannot hand a run another build.

use std::collections::BTreeMap;

use anyhow::Context as _;
use futures::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{ImageIndexEntry, OciDescriptor, OciImageIndex, OciImageManifest};
use oci_client::{Client, RegistryOperation};

use crate::auth::{self, Credentials};
use crate::package::*;
use crate::reference::PluginRef;

/// A component: the runtime's own bound on a plugin file.
pub const COMPONENT_MAX: u64 = 256 << 20;
/// A manifest: distribution's own limit is 4 MiB.
const MANIFEST_MAX: usize = 4 << 20;
/// A signature is a few hundred bytes of PEM.
const SIGNATURE_MAX: u64 = 64 << 10;
/// A referrers index lists at most this many signatures that we read.
const SIGNATURES_READ: usize = 16;

/// Registries spoken to over plain HTTP besides loopback ones: `host:port,…`.
pub const INSECURE_VAR: &str = "LAUNCH_HOST_INSECURE_REGISTRIES";

/// A connection to one registry, with its credentials.
pub struct Registry {
    client: Client,
    creds: Credentials,
}

/// What a push left in the registry.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub manifest_digest: String,
    pub layer_digest: String,
    pub signature_digest: Option<String>,
}

/// A plugin fetched and checked.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// What was fetched: the reference at its manifest digest.
    pub reference: PluginRef,
    pub manifest_digest: String,
    pub manifest: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
    pub wasm: Vec<u8>,
    /// `sha256:HEX` of `wasm` (= the manifest's layer digest).
    pub layer_digest: String,
    /// The SSHSIG PEMs of its signature referrers (checked by whoever trusts keys).
    pub signatures: Vec<String>,
}

fn insecure(registry: &str) -> bool {
    let host = registry
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(registry, |(h, _)| h);
    host == "localhost"
        || host.starts_with("127.")
        || host == "[::1]"
        || std::env::var(INSECURE_VAR)
            .is_ok_and(|list| list.split(',').any(|r| r.trim() == registry))
}

impl Registry {
    /// A client for `reference`'s registry: plain HTTP for loopback (as docker does) and for
    /// the registries `LAUNCH_HOST_INSECURE_REGISTRIES` lists, HTTPS otherwise.
    pub fn new(reference: &PluginRef) -> Registry {
        let registry = reference.registry().to_string();
        let protocol = if insecure(&registry) {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            user_agent: concat!("launch-host/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        });
        Registry {
            client,
            creds: auth::for_registry(&registry),
        }
    }

    /// Where the credentials came from, for messages.
    pub fn credentials_source(&self) -> &str {
        &self.creds.source
    }

    async fn authorize(&self, r: &PluginRef, op: RegistryOperation) -> anyhow::Result<()> {
        self.client
            .auth(r.oci(), &self.creds.auth, op)
            .await
            .map(|_| ())
            .map_err(|e| self.explain(r, e))
    }

    /// An error the operator can act on: what failed, and for a refusal, whose credentials.
    fn explain(&self, r: &PluginRef, e: OciDistributionError) -> anyhow::Error {
        let text = e.to_string();
        let denied = matches!(
            e,
            OciDistributionError::AuthenticationFailure(_)
                | OciDistributionError::UnauthorizedError { .. }
        ) || text.contains("401")
            || text.contains("UNAUTHORIZED")
            || text.contains("DENIED");
        if denied {
            anyhow::anyhow!(
                "{r}: the registry refused the credentials ({}); credentials used: {} — set {} and {}, or log in with `docker login {}`",
                text.trim_end(),
                self.creds.source,
                auth::USERNAME_VAR,
                auth::PASSWORD_VAR,
                r.registry()
            )
        } else {
            anyhow::anyhow!("{r}: {}", text.trim_end())
        }
    }

    async fn push_blob(&self, r: &PluginRef, bytes: Vec<u8>) -> anyhow::Result<String> {
        let digest = sha256(&bytes);
        let there = self
            .client
            .blob_exists(r.oci(), &digest)
            .await
            .unwrap_or(false);
        if !there {
            self.client
                .push_blob(r.oci(), bytes, &digest)
                .await
                .map_err(|e| self.explain(r, e))?;
        }
        Ok(digest)
    }

    async fn push_manifest(
        &self,
        r: &PluginRef,
        body: Vec<u8>,
        media_type: &'static str,
    ) -> anyhow::Result<String> {
        let digest = sha256(&body);
        self.client
            .push_manifest_raw(r.oci(), body, http::HeaderValue::from_static(media_type))
            .await
            .map_err(|e| self.explain(r, e))?;
        Ok(digest)
    }

    /// Pushes `pkg` to `r` (a tag): the config, the component, the manifest, then the
    /// signature as a referrer.
    pub async fn push(&self, r: &PluginRef, pkg: &Package) -> anyhow::Result<Pushed> {
        anyhow::ensure!(
            r.tag().is_some() && r.digest().is_none(),
            "{r}: push to a tag (…:1.2.0); the digest is the registry's to give"
        );
        self.authorize(r, RegistryOperation::Push).await?;
        let config = serde_json::to_vec(&pkg.config())?;
        let config_size = config.len();
        let config_digest = self.push_blob(r, config).await?;
        let layer_digest = self.push_blob(r, pkg.wasm.clone()).await?;
        let manifest = OciImageManifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            config: descriptor(CONFIG_MEDIA_TYPE, &config_digest, config_size),
            layers: vec![descriptor(LAYER_MEDIA_TYPE, &layer_digest, pkg.wasm.len())],
            subject: None,
            artifact_type: None,
            annotations: Some(pkg.annotations.clone()),
        };
        let body = serde_json::to_vec(&manifest)?;
        let size = body.len();
        let manifest_digest = self.push_manifest(r, body, MANIFEST_MEDIA_TYPE).await?;
        let signature_digest = match &pkg.signature {
            Some(pem) => Some(
                self.push_signature(r, &manifest_digest, size, pem)
                    .await
                    .context("pushing the signature")?,
            ),
            None => None,
        };
        Ok(Pushed {
            manifest_digest,
            layer_digest,
            signature_digest,
        })
    }

    /// The signature as an OCI 1.1 referrer of the plugin's manifest, listed in the referrers
    /// tag schema's index (`sha256-HEX`) for registries without the referrers API
    /// (distribution 2.8); one with the API finds it by its `subject` alone.
    async fn push_signature(
        &self,
        r: &PluginRef,
        subject: &str,
        subject_size: usize,
        pem: &str,
    ) -> anyhow::Result<String> {
        let empty = self.push_blob(r, EMPTY.to_vec()).await?;
        let layer = self.push_blob(r, pem.as_bytes().to_vec()).await?;
        let referrer = OciImageManifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            config: descriptor(EMPTY_MEDIA_TYPE, &empty, EMPTY.len()),
            layers: vec![descriptor(SIGNATURE_MEDIA_TYPE, &layer, pem.len())],
            subject: Some(descriptor(MANIFEST_MEDIA_TYPE, subject, subject_size)),
            artifact_type: Some(SIGNATURE_ARTIFACT_TYPE.into()),
            annotations: None,
        };
        let body = serde_json::to_vec(&referrer)?;
        let size = body.len() as i64;
        let digest = sha256(&body);
        self.push_manifest(&r.at(&digest), body, MANIFEST_MEDIA_TYPE)
            .await?;
        let schema = r.tagged(&subject.replace(':', "-"));
        let mut index = match self
            .client
            .pull_manifest_raw(schema.oci(), &self.creds.auth, &[INDEX_MEDIA_TYPE])
            .await
        {
            Ok((bytes, _)) => serde_json::from_slice::<OciImageIndex>(&bytes).ok(),
            Err(_) => None,
        }
        .unwrap_or(OciImageIndex {
            schema_version: 2,
            media_type: Some(INDEX_MEDIA_TYPE.into()),
            manifests: Vec::new(),
            artifact_type: None,
            annotations: None,
        });
        if !index.manifests.iter().any(|m| m.digest == digest) {
            index.manifests.push(ImageIndexEntry {
                media_type: MANIFEST_MEDIA_TYPE.into(),
                digest: digest.clone(),
                size,
                platform: None,
                annotations: None,
                artifact_type: Some(SIGNATURE_ARTIFACT_TYPE.into()),
            });
            self.push_manifest(&schema, serde_json::to_vec(&index)?, INDEX_MEDIA_TYPE)
                .await?;
        }
        Ok(digest)
    }

    /// The manifest digest a tag names now.
    pub async fn resolve(&self, r: &PluginRef) -> anyhow::Result<String> {
        if let Some(d) = r.digest() {
            return Ok(d.to_string());
        }
        self.authorize(r, RegistryOperation::Pull).await?;
        let (body, _) = self.manifest(r).await?;
        Ok(sha256(&body))
    }

    async fn manifest(&self, r: &PluginRef) -> anyhow::Result<(Vec<u8>, OciImageManifest)> {
        let (body, _) = self
            .client
            .pull_manifest_raw(r.oci(), &self.creds.auth, &[MANIFEST_MEDIA_TYPE])
            .await
            .map_err(|e| self.explain(r, e))?;
        anyhow::ensure!(
            body.len() <= MANIFEST_MAX,
            "{r}: the manifest is {} bytes, over the {MANIFEST_MAX}-byte limit",
            body.len()
        );
        let manifest: OciImageManifest = serde_json::from_slice(&body)
            .with_context(|| format!("{r}: not an OCI image manifest"))?;
        Ok((body.to_vec(), manifest))
    }

    /// Fetches the plugin `r` names — by its digest when it has one, which the manifest must
    /// then hash to — and its signatures.
    pub async fn pull(&self, r: &PluginRef) -> anyhow::Result<Pulled> {
        self.authorize(r, RegistryOperation::Pull).await?;
        let (body, manifest) = self.manifest(r).await?;
        let manifest_digest = sha256(&body);
        if let Some(pinned) = r.digest() {
            anyhow::ensure!(
                manifest_digest == pinned,
                "{r}: the registry served a manifest whose digest is {manifest_digest}, not {pinned}; refused"
            );
        }
        let at = r.at(&manifest_digest);
        anyhow::ensure!(
            manifest.config.media_type == CONFIG_MEDIA_TYPE,
            "{r}: not a wasm component (its config is `{}`, not `{CONFIG_MEDIA_TYPE}`)",
            manifest.config.media_type
        );
        let [layer] = manifest.layers.as_slice() else {
            anyhow::bail!(
                "{r}: a wasm package has one layer; this one has {}",
                manifest.layers.len()
            );
        };
        anyhow::ensure!(
            layer.media_type == LAYER_MEDIA_TYPE,
            "{r}: its layer is `{}`, not `{LAYER_MEDIA_TYPE}`",
            layer.media_type
        );
        let wasm = self.blob(&at, layer, COMPONENT_MAX).await?;
        let signatures = self.signatures(&at).await?;
        Ok(Pulled {
            reference: at,
            manifest_digest,
            manifest: body,
            annotations: manifest.annotations.unwrap_or_default(),
            wasm,
            layer_digest: layer.digest.clone(),
            signatures,
        })
    }

    /// A blob, at most `max` bytes, that must hash to its descriptor's digest.
    async fn blob(&self, r: &PluginRef, d: &OciDescriptor, max: u64) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(
            (0..=max as i64).contains(&d.size),
            "{r}: blob {} is {} bytes, over the {max}-byte limit",
            d.digest,
            d.size
        );
        let mut stream = self
            .client
            .pull_blob_stream(r.oci(), d)
            .await
            .map_err(|e| self.explain(r, e))?
            .stream;
        let mut bytes = Vec::with_capacity(d.size as usize);
        while let Some(chunk) = stream.next().await {
            // oci-client checks the digest as the stream ends: a mismatch surfaces here.
            let chunk = chunk.with_context(|| {
                format!("{r}: blob {} did not arrive as itself; refused", d.digest)
            })?;
            anyhow::ensure!(
                (bytes.len() + chunk.len()) as u64 <= max,
                "{r}: blob {} is over the {max}-byte limit",
                d.digest
            );
            bytes.extend_from_slice(&chunk);
        }
        let got = sha256(&bytes);
        anyhow::ensure!(
            got == d.digest && bytes.len() as i64 == d.size,
            "{r}: blob {} arrived as {got} ({} bytes); refused",
            d.digest,
            bytes.len()
        );
        Ok(bytes)
    }

    /// The SSHSIG PEMs of the signature referrers of `r` (at a digest).
    async fn signatures(&self, r: &PluginRef) -> anyhow::Result<Vec<String>> {
        let index = self
            .client
            .pull_referrers(r.oci(), Some(SIGNATURE_ARTIFACT_TYPE))
            .await
            .map_err(|e| self.explain(r, e))?;
        let mut pems = Vec::new();
        for entry in index.manifests.iter().take(SIGNATURES_READ) {
            let sig = r.at(&entry.digest);
            let (body, manifest) = self.manifest(&sig).await?;
            // A referrer is only what its subject says: one that names another manifest is
            // not this plugin's signature, whatever index listed it.
            let about_us = manifest.subject.as_ref().map(|s| s.digest.as_str()) == r.digest();
            if sha256(&body) != entry.digest || !about_us {
                continue;
            }
            for layer in manifest
                .layers
                .iter()
                .filter(|l| l.media_type == SIGNATURE_MEDIA_TYPE)
            {
                let bytes = self.blob(&sig, layer, SIGNATURE_MAX).await?;
                if let Ok(pem) = String::from_utf8(bytes) {
                    pems.push(pem);
                }
            }
        }
        Ok(pems)
    }
}

fn descriptor(media_type: &str, digest: &str, size: usize) -> OciDescriptor {
    OciDescriptor {
        media_type: media_type.into(),
        digest: digest.into(),
        size: size as i64,
        urls: None,
        annotations: None,
        artifact_type: None,
    }
}
