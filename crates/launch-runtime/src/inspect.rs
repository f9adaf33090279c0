//! What a component file contains, whether or not it is a usable plugin.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::Runtime;
use super::contract;
use super::error::LoadError;
use super::plugin::PluginInfo;

#[derive(Debug, serde::Serialize)]
pub struct Inspection {
    pub path: PathBuf,
    pub size: u64,
    pub digest: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// The network interfaces among the imports.
    pub network: Vec<&'static str>,
    /// Contract versions named by the exports (`launch:plugin/...@version`).
    pub contract_versions: Vec<String>,
    pub host_contract: &'static str,
    /// What `describe()` said, when the file is a usable plugin.
    pub plugin: Option<PluginInfo>,
    /// Why it is not a usable plugin, otherwise.
    pub problem: Option<String>,
}

pub(super) async fn inspect(runtime: &Runtime, path: &Path) -> Result<Inspection, LoadError> {
    // Loading as a plugin gives the precise verdict; the component's shape is read regardless.
    let verdict = runtime.load(path).await;
    let bytes = crate::limits::read_component(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let digest = hex::encode(Sha256::digest(&bytes));
    let component = match &verdict {
        Err(
            LoadError::Read { .. }
            | LoadError::NotWasm { .. }
            | LoadError::CoreModule { .. }
            | LoadError::Invalid { .. },
        ) => {
            return Err(verdict.err().expect("matched an error"));
        }
        _ => runtime
            .inner
            .cache
            .load(&runtime.inner.engine, &bytes, &digest, true)
            .await
            .map_err(|e| LoadError::Invalid {
                path: path.to_path_buf(),
                reason: format!("{e:#}"),
            })?,
    };
    let ty = component.0.component_type();
    let engine = &runtime.inner.engine;
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let scan = contract::scan_exports(exports.iter().map(String::as_str));
    let network = crate::capabilities::network_imports(imports.iter().map(String::as_str));
    let (plugin, problem) = match verdict {
        Ok(p) => (Some(p.info), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Inspection {
        path: path.to_path_buf(),
        size: bytes.len() as u64,
        digest,
        imports,
        exports,
        network,
        contract_versions: scan.versions,
        host_contract: contract::VERSION,
        plugin,
        problem,
    })
}
