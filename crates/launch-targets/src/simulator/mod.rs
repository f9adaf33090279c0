//! The embedded target: a StatusBoardV2 stand-in on an ephemeral loopback port. It serves the
//! store's *current* release (so a rollback visibly restores the previous site), the API the
//! guide's smoke tests probe, and routes each API request to V2 or legacy behaviour by the
//! feature flag's rollout percentage. V2 can be made slow or failing (`Inject`) so a canary
//! visibly rolls back.

mod api;
pub mod metrics;
mod routing;
pub mod site;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::flags::LocalFlags;
use crate::store::LocalStore;

pub use routing::Variant;

/// Faults injected into V2 behaviour.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Inject {
    /// Extra latency of every V2 API answer.
    pub v2_latency: Duration,
    /// Share of V2 API answers that are 500s, 0.0..=1.0.
    pub v2_error_rate: f64,
    /// Every request is answered 503: the target is down.
    pub down: bool,
}

impl Inject {
    /// Parses `v2-latency=1500ms`, `v2-errors=20%`, `down`.
    pub fn apply(&mut self, spec: &str) -> Result<(), String> {
        let (key, value) = spec.split_once('=').unwrap_or((spec, ""));
        match key.trim() {
            "v2-latency" => {
                self.v2_latency = humantime::parse_duration(value.trim())
                    .map_err(|e| format!("`{spec}`: {e} (e.g. v2-latency=2500ms)"))?
            }
            "v2-errors" => {
                let pct: f64 =
                    value.trim().trim_end_matches('%').parse().map_err(|_| {
                        format!("`{spec}`: expected a percentage, e.g. v2-errors=20%")
                    })?;
                if !(0.0..=100.0).contains(&pct) {
                    return Err(format!("`{spec}`: {pct}% is not between 0 and 100"));
                }
                self.v2_error_rate = pct / 100.0;
            }
            "down" => self.down = true,
            other => {
                return Err(format!(
                    "unknown fault `{other}` (expected v2-latency=DURATION, v2-errors=PERCENT or down)"
                ));
            }
        }
        Ok(())
    }
}

pub struct SimulatorConfig {
    /// The target's own release store; it serves the current release.
    pub store: Arc<LocalStore>,
    /// The target's own flag storage; the admin API reads and writes it.
    pub flags: Arc<LocalFlags>,
    /// The flag that routes requests to V2.
    pub flag: String,
    pub inject: Inject,
    /// A file of fault specs (`v2-errors=100%` ...) that, while it exists, replaces `inject`.
    pub inject_file: Option<std::path::PathBuf>,
    /// Where to listen; an ephemeral loopback port when `None`. A fixed address lets a
    /// metrics system scrape `/metrics`.
    pub listen: Option<SocketAddr>,
    /// Simulated users' requests per second to the API (0: none): the traffic a metrics
    /// system sees when no probe runs.
    pub traffic: u32,
}

/// A running simulator; stops when dropped.
pub struct Simulator {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _users: Option<Users>,
}

/// Simulated users: the probe's open-model load on the API, its windows discarded. Stops when
/// dropped, with the simulator.
struct Users {
    drain: tokio::task::JoinHandle<()>,
}

impl Drop for Users {
    fn drop(&mut self) {
        self.drain.abort();
    }
}

impl Users {
    fn start(url: &str, rate: u32) -> anyhow::Result<Users> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?;
        let mut probe = crate::probe::Probe::start(
            client,
            crate::probe::statusboard_endpoints(url),
            rate,
            Duration::from_secs(1),
            Duration::from_secs(30),
        );
        // The probe stops with the task that owns it.
        let drain = tokio::spawn(async move { while probe.next_window().await.is_some() {} });
        Ok(Users { drain })
    }
}

impl Simulator {
    pub async fn start(config: SimulatorConfig) -> anyhow::Result<Simulator> {
        let bind = config
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("listening on {bind}"))?;
        let addr = listener.local_addr()?;
        let traffic = config.traffic;
        let app = api::router(Arc::new(api::State::new(config)));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        let users = match traffic {
            0 => None,
            rate => Some(Users::start(&format!("http://{addr}"), rate)?),
        };
        Ok(Simulator {
            addr,
            shutdown: Some(tx),
            _users: users,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
