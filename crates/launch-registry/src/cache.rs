//! Pulled plugins, kept by manifest digest: a run after the first pull needs no registry.
//! `<dir>/sha256/<hex>/` holds `plugin.wasm`, its signature `plugin.wasm.sig` when it has one
//! (beside it, where `[trust]` looks for every plugin) and `entry.json`. An entry is written in
//! a temporary folder and renamed into place, so a reader sees all of it or nothing, and its
//! component is hashed again on every read: a cache edited by hand is a miss, never a build.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::client::{COMPONENT_MAX, Pulled};
use crate::package::sha256;
use crate::reference::is_sha256;

/// Where pulled plugins are kept: `$LAUNCH_HOST_CACHE_DIR/oci`, else the user's cache folder.
pub fn default_dir() -> Option<PathBuf> {
    std::env::var_os("LAUNCH_HOST_CACHE_DIR")
        .map(|d| PathBuf::from(d).join("oci"))
        .or_else(|| dirs::cache_dir().map(|d| d.join("launch-host").join("oci")))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Entry {
    /// Where it was pulled from, at its digest.
    pub reference: String,
    pub manifest_digest: String,
    pub layer_digest: String,
    pub annotations: BTreeMap<String, String>,
}

/// A cached plugin.
#[derive(Debug, Clone)]
pub struct Cached {
    pub wasm: PathBuf,
    pub entry: Entry,
}

pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn folder(&self, manifest_digest: &str) -> Option<PathBuf> {
        is_sha256(manifest_digest).then(|| {
            self.dir
                .join("sha256")
                .join(manifest_digest.trim_start_matches("sha256:"))
        })
    }

    /// The plugin at `manifest_digest`, if it is here and its component still hashes to
    /// what was pulled.
    pub fn get(&self, manifest_digest: &str) -> Option<Cached> {
        let folder = self.folder(manifest_digest)?;
        let mut text = Vec::new();
        std::fs::File::open(folder.join("entry.json"))
            .ok()?
            .take(1 << 20)
            .read_to_end(&mut text)
            .ok()?;
        let entry: Entry = serde_json::from_slice(&text).ok()?;
        if entry.manifest_digest != manifest_digest {
            return None;
        }
        let wasm = folder.join("plugin.wasm");
        let mut bytes = Vec::new();
        std::fs::File::open(&wasm)
            .ok()?
            .take(COMPONENT_MAX + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        (sha256(&bytes) == entry.layer_digest).then_some(Cached { wasm, entry })
    }

    /// Keeps `pulled` with `signature` (the one to put beside it).
    pub fn put(&self, pulled: &Pulled, signature: Option<&str>) -> anyhow::Result<Cached> {
        let folder = self
            .folder(&pulled.manifest_digest)
            .context("a pulled manifest digest is sha256")?;
        let parent = folder.parent().expect("an entry has a parent");
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the plugin cache {}", parent.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(".pulling-")
            .tempdir_in(parent)
            .with_context(|| format!("writing in the plugin cache {}", parent.display()))?;
        let entry = Entry {
            reference: pulled.reference.to_string(),
            manifest_digest: pulled.manifest_digest.clone(),
            layer_digest: pulled.layer_digest.clone(),
            annotations: pulled.annotations.clone(),
        };
        std::fs::write(tmp.path().join("plugin.wasm"), &pulled.wasm)?;
        if let Some(pem) = signature {
            std::fs::write(tmp.path().join("plugin.wasm.sig"), pem)?;
        }
        std::fs::write(tmp.path().join("manifest.json"), &pulled.manifest)?;
        std::fs::write(
            tmp.path().join("entry.json"),
            serde_json::to_vec_pretty(&entry)?,
        )?;
        if folder.exists() {
            // A broken or older entry (another signature): replaced whole.
            let _ = std::fs::remove_dir_all(&folder);
        }
        let kept = tmp.keep();
        if let Err(e) = std::fs::rename(&kept, &folder) {
            let _ = std::fs::remove_dir_all(&kept);
            // Another process put the same digest first: theirs is as good as ours.
            if self.get(&pulled.manifest_digest).is_none() {
                return Err(e).with_context(|| format!("writing {}", folder.display()));
            }
        }
        Ok(Cached {
            wasm: folder.join("plugin.wasm"),
            entry,
        })
    }
}
