//! `just bench`: a long canary's record — issue [14/16]'s 10 000-window row.
//!
//! One canary step held for 10 000 windows (`LAUNCH_HOST_BENCH_WINDOWS`), each window shaped
//! like the embedded target's at a 100 ms interval (three endpoints, both versions, a few raw
//! latencies), decided by the stock `canary-steps` with the step's history as the host bounds it, and
//! recorded as a run records it: the `window` record, and the `decision` holding its call. The run is
//! mirrored to S3 (moto on 127.0.0.1) with one upload per window — the most a run sends; its
//! background uploads coalesce. Printed: the journal per window, the bytes the mirror sent next
//! to what re-uploading the whole journal each time would have (computed from the journal's
//! length at each upload), the requests to read it back, and the decision time at the start
//! of the step and at its end.

use std::time::Instant;

use hdrhistogram::Histogram;

#[path = "../../tests/support/mod.rs"]
mod test_support;

use launch_engine::journal::{Event, Journal};
use launch_engine::lab::answer::action_word;
use launch_engine::lab::record::{CallStore, CanaryCalls};
use launch_engine::mirror::Mirror;
use launch_engine::record::{self, EndpointRecord, WindowRecord};
use launch_runtime::types::{Action, CanaryState};
use launch_runtime::{Runtime, Sandbox};
use launch_targets::probe::Served;

const INTERVAL_MS: u64 = 100;
/// Decisions timed at each end of the step.
const EDGE: u64 = 200;

/// Window `i` as the embedded target's probe measures it at 10 %: per endpoint both versions
/// together, then the canary (one request), then the baseline (six).
fn window(i: u64) -> WindowRecord {
    let row = |endpoint: &str, served: Option<Served>, requests: u64| {
        let base = 1.2 + ((i * 7 + requests) % 13) as f64 / 10.0;
        let mut samples: Vec<f64> = (0..requests)
            .map(|k| ((base + k as f64 * 0.137) * 1000.0).round() / 1000.0)
            .collect();
        let raw = if served.is_some() {
            samples.clone()
        } else {
            Vec::new()
        };
        // The probe's statistics of those samples: nearest-rank percentiles, so (as on the
        // embedded target) a window of a few requests has p95 = p99 = its maximum.
        samples.sort_by(f64::total_cmp);
        let rank =
            |q: f64| samples[((q * requests as f64).ceil() as usize).clamp(1, samples.len()) - 1];
        let avg = (samples.iter().sum::<f64>() / requests as f64 * 1000.0).round() / 1000.0;
        EndpointRecord {
            endpoint: endpoint.into(),
            served,
            requests,
            errors: 0,
            conflicts: 0,
            p50_ms: rank(0.5),
            p95_ms: rank(0.95),
            p99_ms: rank(0.99),
            avg_ms: avg,
            max_ms: rank(1.0),
            latencies_ms: raw,
            missing: Vec::new(),
        }
    };
    let mut endpoints = Vec::new();
    for (served, requests) in [
        (None, 7),
        (Some(Served::Canary), 1),
        (Some(Served::Baseline), 6),
    ] {
        for name in ["board", "drawer", "stats"] {
            endpoints.push(row(name, served, requests));
        }
    }
    WindowRecord {
        start_ms: 1_800_000_000_000 + i * INTERVAL_MS,
        duration_ms: INTERVAL_MS,
        percent: 10,
        endpoints,
        sources: Vec::new(),
    }
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

fn row(measure: &str, ours: String, reference: &str, goal: &str) {
    println!("{measure:<52} {ours:>16} {reference:>22} {goal:>12}");
}

async fn run() -> anyhow::Result<()> {
    let windows: u64 = std::env::var("LAUNCH_HOST_BENCH_WINDOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let moto = test_support::Moto::start();
    moto.s3()
        .await
        .create_bucket()
        .bucket("state")
        .send()
        .await?;
    for (k, v) in moto.env() {
        // SAFETY: set before this process reads its environment from other threads (the S3
        // client is created below, on this task).
        unsafe { std::env::set_var(k, v) };
    }
    let plugins = test_support::repo().join("plugins");
    let plugins = std::env::args()
        .skip_while(|a| a != "--plugins")
        .nth(1)
        .map_or(plugins, std::path::PathBuf::from);
    let runtime = Runtime::new(Some(tempfile::tempdir()?.keep()))?;
    let plugin = runtime.load(&plugins.join("canary-steps.wasm")).await?;

    let run = tempfile::tempdir()?;
    let run_id = "20261203T120000000Z-bench";
    let mut journal = Journal::open(&run.path().join("journal.jsonl"))?;
    let mirror = Mirror::start(
        "s3://state",
        run_id,
        run.path(),
        "bench",
        vec!["production".into()],
    )
    .await?;
    let shared = mirror.shared();
    let mut store = CallStore::new(run.path());
    let config =
        serde_json::json!({ "steps": [10, 100], "step-duration-ms": 3_600_000, "min-requests": 1 });
    let mut recorder = CanaryCalls::new("canary", config.as_object().cloned().unwrap_or_default());
    let config_json = config.to_string();
    let sandbox = Sandbox::default();
    let mut state = CanaryState {
        percent: 10,
        step_index: 0,
        step_elapsed_ms: 0,
        total_elapsed_ms: 0,
    };
    // The step's history as the host keeps it: its most recent windows, bounded.
    let mut history = launch_engine::StepHistory::default();
    let (mut start, mut end) = (Histogram::<u64>::new(3)?, Histogram::<u64>::new(3)?);
    let sent_before = launch_targets::s3::bytes_sent();
    let mut whole_journal_uploads: u64 = 0;
    let began = Instant::now();
    for i in 0..windows {
        let w = window(i);
        // The run's window number: every window of this run is the canary's.
        history.push(w.canary_window(), i);
        journal.append(Event::Window {
            stage: "canary".into(),
            environment: "production".into(),
            window: w,
        })?;
        state.step_elapsed_ms += INTERVAL_MS;
        state.total_elapsed_ms += INTERVAL_MS;
        let t = Instant::now();
        let called = plugin
            .decide_canary(&sandbox, &state, history.windows(), &config_json)
            .await?;
        let took = t.elapsed().as_nanos() as u64;
        if i < EDGE {
            start.record(took)?;
        } else if i >= windows.saturating_sub(EDGE) {
            end.record(took)?;
        }
        let decision = called.value;
        anyhow::ensure!(
            matches!(decision.action, Action::Hold(_)),
            "window {i}: {:?}",
            decision.action
        );
        // What a run journals per call (stages::canary): its decision, holding the call.
        let checks = record::checks(&decision.checks);
        let (action, summary) = (action_word(&decision.action), decision.summary);
        let range = history.range();
        let call = recorder.call(
            &mut store,
            &state,
            (range.from, range.len),
            &decision.action,
            &summary,
        );
        journal.append(Event::Decision {
            stage: "canary".into(),
            percent: 10,
            action,
            summary,
            checks,
            plugin: "canary-steps".into(),
            call: Some(call),
        })?;
        shared.flush().await?;
        whole_journal_uploads += std::fs::metadata(run.path().join("journal.jsonl"))?.len();
    }
    let elapsed = began.elapsed();
    let sent = launch_targets::s3::bytes_sent() - sent_before;
    let size = std::fs::metadata(run.path().join("journal.jsonl"))?.len();

    let loc = launch_targets::s3::S3Location::connect("s3://state").await?;
    let (requests, t) = (launch_targets::s3::requests(), Instant::now());
    let read = launch_engine::mirror::segments::read(&loc, run_id)
        .await?
        .expect("the mirrored journal");
    let (read_requests, read_time) = (launch_targets::s3::requests() - requests, t.elapsed());
    anyhow::ensure!(
        read.bytes == std::fs::read(run.path().join("journal.jsonl"))?,
        "the mirrored journal differs"
    );

    println!(
        "launch-host journal benchmark: a canary step held for {windows} windows at {INTERVAL_MS} ms, mirrored to moto ({:.0} s)\n",
        elapsed.as_secs_f64()
    );
    println!(
        "{:<52} {:>16} {:>22} {:>12}",
        "measure", "launch-host", "reference", "goal"
    );
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    row("journal", mb(size), "", "");
    row(
        "journal per window",
        format!("{} B", size / windows),
        "",
        "≤ 2 KB",
    );
    row(
        "mirror bytes sent (one upload per window)",
        mb(sent),
        &format!("{} whole each time", mb(whole_journal_uploads)),
        "∝ journal",
    );
    row(
        "mirror bytes sent per journal byte",
        format!("{:.2}", sent as f64 / size as f64),
        "",
        "",
    );
    row(
        "reading the mirrored journal back",
        format!("{read_requests} requests"),
        "",
        "",
    );
    row(
        "  … in",
        format!("{:.0} ms", read_time.as_secs_f64() * 1e3),
        "",
        "",
    );
    let median = |h: &Histogram<u64>| format!("{:.0} µs", h.value_at_quantile(0.5) as f64 / 1e3);
    row(
        &format!("decide, median of the first {EDGE} windows"),
        median(&start),
        "",
        "",
    );
    row(
        &format!(
            "decide, median of the last {EDGE} (history {})",
            windows.min(launch_runtime::bounds::MAX_HISTORY as u64)
        ),
        median(&end),
        "",
        "",
    );
    mirror.finish().await?;
    Ok(())
}
