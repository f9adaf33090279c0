//! Finds the plugins of a directory: every `*.wasm` file is loaded and asked to describe itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Runtime;
use super::error::LoadError;
use super::plugin::Plugin;

/// The plugins found in a directory, and the files that are not usable plugins.
pub struct Catalog {
    pub dir: PathBuf,
    pub plugins: Vec<Plugin>,
    pub rejected: Vec<LoadError>,
    /// Plugins a runbook names by a reference (`oci://…`) rather than by their own name,
    /// loaded from wherever the engine fetched them.
    pub referenced: Vec<Referenced>,
}

/// A plugin known by the reference a runbook names it with.
pub struct Referenced {
    /// The reference as the runbook writes it.
    pub reference: String,
    /// Exactly which build: the reference at its content digest.
    pub pinned: String,
    pub plugin: Plugin,
}

impl Catalog {
    /// No plugins: for work that needs none (a rollback, a flag move), which then runs from
    /// any folder and loads nothing.
    pub fn empty(dir: &Path) -> Catalog {
        Catalog {
            dir: dir.to_path_buf(),
            plugins: Vec::new(),
            rejected: Vec::new(),
            referenced: Vec::new(),
        }
    }

    /// The plugin a runbook names `name`: a reference it was fetched by, else a plugin of the
    /// folder by its own name.
    pub fn get(&self, name: &str) -> Option<&Plugin> {
        self.referenced
            .iter()
            .find(|r| r.reference == name)
            .map(|r| &r.plugin)
            .or_else(|| self.plugins.iter().find(|p| p.info.name == name))
    }

    /// Where a referenced plugin was pinned (`oci://…@sha256:…`), if `name` is a reference.
    pub fn pinned(&self, name: &str) -> Option<&str> {
        self.referenced
            .iter()
            .find(|r| r.reference == name)
            .map(|r| r.pinned.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{}: cannot list the plugin directory: {source} (pass an existing directory with --plugins, e.g. `--plugins plugins/` after `just build-plugins`)", dir.display())]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("plugin name `{name}` is claimed by both {} and {}; names must be unique in a plugin directory", first.display(), second.display())]
    DuplicateName {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
}

/// The `*.wasm` files directly inside `dir`, sorted by name.
pub fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, DiscoveryError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DiscoveryError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

pub(super) async fn discover(runtime: &Runtime, dir: &Path) -> Result<Catalog, DiscoveryError> {
    let mut plugins: Vec<Plugin> = Vec::new();
    let mut rejected = Vec::new();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in wasm_files(dir)? {
        match runtime.load(&file).await {
            Ok(plugin) => {
                if let Some(first) = seen.get(&plugin.info.name) {
                    return Err(DiscoveryError::DuplicateName {
                        name: plugin.info.name.clone(),
                        first: first.clone(),
                        second: file,
                    });
                }
                seen.insert(plugin.info.name.clone(), file);
                plugins.push(plugin);
            }
            Err(e) => rejected.push(e),
        }
    }
    Ok(Catalog {
        dir: dir.to_path_buf(),
        plugins,
        rejected,
        referenced: Vec::new(),
    })
}
