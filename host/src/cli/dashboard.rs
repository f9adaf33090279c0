//! The live dashboard of `monitor` and `canary monitor`: per-endpoint p95 and average latency,
//! error rate and OCC conflicts measured by the host's own probes, the flag percentage, and —
//! when a canary is running in this workspace — its step, time to the next step and last
//! decision. Redrawn in place on a terminal (indicatif); periodic plain lines otherwise.

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output::say;
use super::output::table;
use launch_engine::Runbook;
use launch_engine::environment::Env;
use launch_engine::journal::now_ms;
use launch_engine::record::EndpointRecord;
pub use launch_engine::watch::Snapshot;
use launch_engine::workspace::CanaryProgress;

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
            c.state(),
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

/// Probes `env` and shows a snapshot per window — redrawn in place on a terminal, a plain line
/// otherwise — until `until` passes or Ctrl-C. Returns the last snapshot.
pub async fn watch(
    runbook: &Runbook,
    env: &Env,
    runs_dir: &Path,
    interval: Duration,
    until: Option<Duration>,
    live: bool,
) -> anyhow::Result<Option<Snapshot>> {
    let tty = live && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let bar = tty.then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        if let Ok(style) = ProgressStyle::with_template("{msg}") {
            bar.set_style(style);
        }
        bar
    });
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let last =
        launch_engine::watch::watch(
            runbook,
            env,
            runs_dir,
            interval,
            until,
            stop,
            |s| match &bar {
                Some(bar) => bar.set_message(render(s)),
                None if live => say!("{}", plain(s)),
                None => {}
            },
        )
        .await?;
    if let Some(bar) = bar {
        bar.finish();
    }
    Ok(last)
}

/// The snapshot as a table, for one-shot commands.
pub fn print(s: &Snapshot) {
    say!("{}", render(s));
}
