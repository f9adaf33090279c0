//! Watching an environment between launches (`monitor`, `canary monitor`): the host's own
//! probes measure per-endpoint latency, errors and OCC conflicts, one window per interval, and
//! each window becomes a snapshot with the flag, the live release and the canary's progress.
//! The caller draws them (a sink per snapshot); the engine only measures.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::environment::Env;
use crate::record::{EndpointRecord, WindowRecord};
use crate::runbook::Runbook;
use crate::workspace::{self, CanaryProgress};

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub environment: String,
    pub api_url: String,
    pub flag: String,
    pub percent: u8,
    pub release: Option<String>,
    pub window_ms: u64,
    pub endpoints: Vec<EndpointRecord>,
    pub canary: Option<CanaryProgress>,
}

/// Probes `env`, handing each window's snapshot to `sink`, until `until` passes or `stop`
/// completes. Returns the last snapshot.
pub async fn watch(
    runbook: &Runbook,
    env: &Env,
    runs_dir: &Path,
    interval: Duration,
    until: Option<Duration>,
    stop: impl Future<Output = ()>,
    mut sink: impl FnMut(&Snapshot),
) -> anyhow::Result<Option<Snapshot>> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    // A dashboard watches gently: at most 100 probe requests a second.
    let mut sources = env.sources.clone();
    if let Some((_, rate)) = &mut sources.probe {
        *rate = (*rate).min(100);
    }
    let mut signals = launch_targets::metrics::Signals::start(
        &sources,
        client,
        interval,
        Duration::from_secs(5),
        false,
    );
    let started = Instant::now();
    let mut last = None;
    tokio::pin!(stop);
    loop {
        let reading = tokio::select! {
            w = signals.next() => w,
            _ = &mut stop => None,
        };
        let Some(reading) = reading else { break };
        let reading = reading?;
        let flag = runbook.launch.flag.clone();
        let percent = env.flags.get(&flag).await.unwrap_or(0);
        let record = WindowRecord::from_reading(reading, percent);
        let snapshot = Snapshot {
            environment: env.name.clone(),
            api_url: env.api_url.clone(),
            flag,
            percent,
            release: env.store.current().await.ok().flatten(),
            window_ms: record.duration_ms,
            endpoints: record
                .endpoints
                .into_iter()
                .filter(|e| e.served.is_none())
                .collect(),
            canary: workspace::canary_progress(runs_dir, runbook, &env.name),
        };
        sink(&snapshot);
        last = Some(snapshot);
        if until.is_some_and(|u| started.elapsed() + interval / 2 >= u) {
            break;
        }
    }
    Ok(last)
}
