//! Compiled-artifact cache: a component compiled once is loaded from disk in milliseconds after
//! that. Entries are keyed by the component's sha256 *and* the engine's compatibility hash
//! (wasmtime version, target, enabled features and settings), so a `.cwasm` from another
//! configuration is never offered to this engine.

use std::hash::Hasher;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadSource {
    /// Compiled now (and stored, when the cache is enabled).
    Compiled,
    /// Loaded from the cache.
    Cached,
}

pub struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// Feeds `Hash` output into sha256, so the key is stable across processes.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        unreachable!("only the sha256 digest is used")
    }
}

impl ArtifactCache {
    /// `dir: None` disables the cache (every load compiles).
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = ShaHasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        ArtifactCache { dir, engine_key }
    }

    /// The default location: `$LAUNCH_HOST_CACHE_DIR`, else the user's cache directory.
    pub fn default_dir() -> Option<PathBuf> {
        std::env::var_os("LAUNCH_HOST_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("launch-host").join("compiled")))
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn entry(&self, digest: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{digest}-{}.cwasm", self.engine_key)))
    }

    /// Loads `bytes` (whose sha256 is `digest`) from the cache, or compiles and stores it.
    pub async fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
        use_cache: bool,
    ) -> wasmtime::Result<(Component, LoadSource)> {
        let cached = if use_cache {
            self.cached(engine, digest)
        } else {
            None
        };
        match cached {
            Some(component) => Ok((component, LoadSource::Cached)),
            None => self.compile(engine, bytes, digest, use_cache).await,
        }
    }

    /// The compiled component whose sha256 is `digest`, when the cache holds it.
    pub fn cached(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.entry(digest).filter(|p| p.is_file())?;
        // SAFETY: the file was written by `precompile_component` of an engine with the same
        // compatibility hash (it is in the name) into the user's own cache directory.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            // A stale or damaged entry is recompiled and replaced, never fatal.
            Err(_) => {
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Compiles `bytes` (whose sha256 is `digest`) and, with `store`, keeps the result.
    /// Compilation runs on a blocking thread: a large component keeps a core busy for seconds.
    pub async fn compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
        store: bool,
    ) -> wasmtime::Result<(Component, LoadSource)> {
        let entry = if store { self.entry(digest) } else { None };
        let engine2 = engine.clone();
        let owned = bytes.to_vec();
        let compiled = tokio::task::spawn_blocking(move || engine2.precompile_component(&owned))
            .await
            .map_err(|e| wasmtime::format_err!("compiler thread failed: {e}"))??;
        if let Some(path) = &entry {
            // Best effort: a read-only cache only costs speed. Written atomically, so a
            // concurrent reader never sees half an entry.
            let _ = write_atomically(path, &compiled);
        }
        // SAFETY: `compiled` was produced by this very engine a moment ago.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        Ok((component, LoadSource::Compiled))
    }
}

/// Writes through a temporary file in the same folder renamed into place (tempfile picks a
/// unique name, so concurrent writers never share one).
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
