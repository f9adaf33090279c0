//! What the operator grants one stage's plugin. Nothing is ambient: a plugin gets exactly this.

use std::path::PathBuf;
use std::time::Duration;

use super::allow_list::AllowList;

/// A host folder the plugin may read, and nothing else of the file system: preopened through
/// wasmtime-wasi (cap-std underneath) read-only at `guest`, so no write, no `..` or absolute
/// path and no symlink leads out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyDir {
    pub host: PathBuf,
    /// Where the plugin sees it, e.g. `/dist`.
    pub guest: String,
}

#[derive(Debug, Clone)]
pub struct Grants {
    /// Hosts the `http` capability (and `wasi:http`) may reach. Empty: no network.
    pub allow_hosts: AllowList,
    /// Timeout of one request when the plugin asks for none; also the most it may ask for.
    pub http_timeout: Duration,
    /// Response bodies are cut at this many bytes.
    pub http_max_body_bytes: usize,
    /// Upper bound on `send-batch` concurrency, whatever the plugin asks.
    pub http_max_concurrency: usize,
    /// Upper bound on requests in one plugin call, so a plugin cannot turn into a load generator.
    pub http_max_requests: usize,
    /// Log lines kept per call; later ones are counted and dropped.
    pub log_max_lines: usize,
    /// Longest log line kept; longer ones are cut.
    pub log_max_line_bytes: usize,
    /// Folders the plugin may read (`files = [...]` on its stage); none by default.
    pub read_only_dirs: Vec<ReadOnlyDir>,
}

impl Default for Grants {
    fn default() -> Self {
        Grants {
            allow_hosts: AllowList::default(),
            http_timeout: Duration::from_secs(10),
            http_max_body_bytes: 4 << 20,
            http_max_concurrency: 32,
            http_max_requests: 10_000,
            log_max_lines: 1_000,
            log_max_line_bytes: 4 << 10,
            read_only_dirs: Vec::new(),
        }
    }
}

impl Grants {
    pub fn with_hosts(mut self, allow_hosts: AllowList) -> Self {
        self.allow_hosts = allow_hosts;
        self
    }

    pub fn with_read_only_dirs(mut self, dirs: Vec<ReadOnlyDir>) -> Self {
        self.read_only_dirs = dirs;
        self
    }
}
