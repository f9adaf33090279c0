//! The plugin runtime: one wasmtime engine per process, the linker with every capability, the
//! compiled-artifact cache, plugin loading and discovery, and sandboxed calls.
//!
//! Inside the crate the arrows point down: `Runtime` (this file) → `plugin`, `discovery`,
//! `inspect`, `cache` → `bindings`, `bounds`, `limits`, `types` → `capabilities` (the host side of
//! each WIT import, with its back-end) → `text`. The crate knows nothing of runbooks or targets.

pub mod bindings;
pub mod bounds;
pub mod cache;
mod call;
pub mod capabilities;
pub mod contract;
pub mod digest;
pub mod discovery;
pub mod engine;
pub mod error;
pub mod inspect;
pub mod limits;
mod load;
pub mod plugin;
mod standby;
mod state;
mod text;
pub mod types;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::Linker;

pub use cache::LoadSource;
pub use capabilities::exchange::{Exchange, HttpSource};
pub use contract::Role;
pub use discovery::{Catalog, DiscoveryError, Referenced};
pub use error::{CallFailure, FailureKind, LoadError};
pub use limits::Limits;
pub use plugin::{Called, Plugin, PluginInfo, Sandbox};
pub use state::PluginState;

use crate::capabilities::http_client::HttpClient;

/// Shared by every plugin loaded through it; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<PluginState>,
    cache: cache::ArtifactCache,
    http: HttpClient,
    /// Told before a component is compiled (a cache miss): the one slow load of a build.
    on_compile: std::sync::OnceLock<CompileHook>,
}

/// What is told before a compile: the file and its size in bytes.
pub type CompileHook = Box<dyn Fn(&Path, u64) + Send + Sync>;

impl Runtime {
    /// `cache_dir: None` disables the compiled-artifact cache.
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let engine = engine::new_engine()?;
        engine::start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        capabilities::link_all(&mut linker)?;
        let cache = cache::ArtifactCache::new(&engine, cache_dir);
        let http = HttpClient::new()?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                http,
                on_compile: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Calls `hook` before each compile (a component not in the cache yet), so a person
    /// waiting on an 18 MB Python plugin's first load is told why (set once).
    pub fn on_compile(&self, hook: impl Fn(&Path, u64) + Send + Sync + 'static) {
        let _ = self.inner.on_compile.set(Box::new(hook));
    }

    pub fn cache_dir(&self) -> Option<&Path> {
        self.inner.cache.dir()
    }

    /// Loads one plugin file (through the cache) and asks it to describe itself.
    pub async fn load(&self, path: &Path) -> Result<Plugin, LoadError> {
        load::load(self, path, true).await
    }

    /// Loads one plugin file compiling it from scratch, bypassing the cache.
    pub async fn load_uncached(&self, path: &Path) -> Result<Plugin, LoadError> {
        load::load(self, path, false).await
    }

    /// Reads a component's imports and exports and, if it is a plugin, its description.
    pub async fn inspect(&self, path: &Path) -> Result<inspect::Inspection, LoadError> {
        inspect::inspect(self, path).await
    }

    /// Loads every `*.wasm` of `dir`.
    pub async fn discover(&self, dir: &Path) -> Result<Catalog, DiscoveryError> {
        discovery::discover(self, dir).await
    }
}
