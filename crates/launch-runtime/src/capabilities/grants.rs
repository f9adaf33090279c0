//! What the operator grants one stage's plugin. Nothing is ambient: a plugin gets exactly this.

use std::time::Duration;

use super::allow_list::AllowList;

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
        }
    }
}

impl Grants {
    pub fn with_hosts(mut self, allow_hosts: AllowList) -> Self {
        self.allow_hosts = allow_hosts;
        self
    }
}
