//! The live dashboard of `monitor` and `canary monitor`: per-endpoint p95 and average latency,
//! error rate and OCC conflicts measured by the host's own probes, the flag percentage, and —
//! when a canary is running in this workspace — its step, time to the next step and last
//! decision. Redrawn in place on a terminal (indicatif); periodic plain lines otherwise.

use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::output::table;
use launch_engine::environment::Env;
use launch_engine::journal::now_ms;
use launch_engine::record::{EndpointRecord, WindowRecord};
use launch_engine::workspace::{self, CanaryProgress};
use launch_engine::{Runbook, probe_endpoints};
use launch_targets::probe::Probe;

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

fn render(s: &Snapshot) -> String {
    let mut out = format!(
        "{} — {} {}%   release {}   window {:.1} s\n",
        s.environment,
        s.flag,
        s.percent,
        s.release.as_deref().unwrap_or("(none)"),
        s.window_ms as f64 / 1000.0
    );
    let mut t = table(&[
        "endpoint", "requests", "errors", "error %", "p95 ms", "avg ms", "OCC 409",
    ]);
    for e in &s.endpoints {
        t.add_row(vec![
            e.endpoint.clone(),
            e.requests.to_string(),
            e.errors.to_string(),
            format!("{:.2}", error_rate(e)),
            format!("{:.1}", e.p95_ms),
            format!("{:.1}", e.avg_ms),
            e.conflicts.to_string(),
        ]);
    }
    out.push_str(&t.to_string());
    out.push('\n');
    out.push_str(&canary_line(s.canary.as_ref()));
    out
}

fn error_rate(e: &EndpointRecord) -> f64 {
    if e.requests == 0 {
        0.0
    } else {
        e.errors as f64 * 100.0 / e.requests as f64
    }
}

fn canary_line(c: Option<&CanaryProgress>) -> String {
    match c {
        None => "canary: none in this workspace".into(),
        Some(c) => format!(
            "canary: {} (run {}) {} at {}% — last decision {} {:.1} s ago: {}{}",
            c.stage,
            c.run_id,
            if c.running { "running" } else { "finished" },
            c.percent,
            c.last_action,
            now_ms().saturating_sub(c.last_decision_ms) as f64 / 1000.0,
            c.last_summary,
            c.next_step_in_ms
                .map(|ms| format!("; next step in {:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default()
        ),
    }
}

/// One plain line per window, for logs and pipes.
fn plain(s: &Snapshot) -> String {
    let mut line = format!(
        "{} {} {}={}%",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        s.environment,
        s.flag,
        s.percent
    );
    for e in &s.endpoints {
        line.push_str(&format!(
            " {}: p95={:.1}ms avg={:.1}ms err={:.2}% occ={}",
            e.endpoint,
            e.p95_ms,
            e.avg_ms,
            error_rate(e),
            e.conflicts
        ));
    }
    if let Some(c) = &s.canary {
        line.push_str(&format!(
            " canary={}@{}% last={}",
            c.stage, c.percent, c.last_action
        ));
    }
    line
}

/// Probes `env` and shows a snapshot per window until `until` passes or Ctrl-C. Returns the
/// last snapshot.
pub async fn watch(
    runbook: &Runbook,
    env: &Env,
    runs_dir: &Path,
    interval: Duration,
    until: Option<Duration>,
    live: bool,
) -> anyhow::Result<Option<Snapshot>> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let mut probe = Probe::start(
        client,
        probe_endpoints(&env.api_url),
        runbook.defaults.probe_rate.min(100),
        interval,
        Duration::from_secs(5),
    );
    let tty = live && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let bar = if tty {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        if let Ok(style) = ProgressStyle::with_template("{msg}") {
            bar.set_style(style);
        }
        Some(bar)
    } else {
        None
    };
    let started = Instant::now();
    let mut last = None;
    loop {
        let window = tokio::select! {
            w = probe.next_window() => w,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(window) = window else { break };
        let flag = runbook.launch.flag.clone();
        let percent = env.flags.get(&flag).await.unwrap_or(0);
        let record = WindowRecord::from_window(&window, percent, false);
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
        match &bar {
            Some(bar) => bar.set_message(render(&snapshot)),
            None if live => println!("{}", plain(&snapshot)),
            None => {}
        }
        last = Some(snapshot);
        if until.is_some_and(|u| started.elapsed() + interval / 2 >= u) {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    Ok(last)
}

/// The snapshot as a table, for one-shot commands.
pub fn print(s: &Snapshot) {
    println!("{}", render(s));
}
