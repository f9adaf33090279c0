//! `just bench`: what the policy lab costs, next to the goals of issue [7/10].
//!
//! - recording: a 2-hour canary at a 60 s interval (120 windows, 120 decisions by the stock
//!   `canary-steps` in statistical mode, 200 raw latencies per side), each call timed, then
//!   what recording it adds: a run records a canary's call in the decision it journals
//!   anyway, so the decision's journaling is timed with the call in it and, in every other
//!   round, without. As in a run, the canary runs on a worker thread and one sandbox serves
//!   it whole, so from its third call on each call's instance was made ahead, between the
//!   windows (`launch_runtime::standby`);
//! - replay: that recorded run read back and replayed against the same plugin, every decision
//!   reproduced;
//! - backtest: `launch-host backtest` (the release binary) over 200 copies of that run — 24 000
//!   recorded decisions — every one agreed.

mod support;

use std::path::Path;
use std::time::Instant;

use hdrhistogram::Histogram;

use launch_engine::journal::{Event, Journal};
use launch_engine::lab::answer::action_word;
use launch_engine::lab::record::{CallStore, CanaryCalls};
use launch_engine::lab::replay;
use launch_engine::record::{self, EndpointRecord, WindowRecord};
use launch_runtime::types::{Action, CanaryState, CanaryWindow};
use launch_runtime::{Plugin, Runtime, Sandbox};
use launch_targets::probe::Served;

const WINDOWS: u64 = 120;
const INTERVAL_MS: u64 = 60_000;
const ROUNDS: usize = 10;

fn config() -> serde_json::Value {
    serde_json::json!({
        "steps": [10, 30, 50, 100],
        "step-duration-ms": 30 * INTERVAL_MS,
        "mode": "statistical",
    })
}

/// Window `i`: healthy, with raw latencies that differ per window.
fn window(i: u64, percent: u8) -> WindowRecord {
    let side = |served, base: f64| {
        let raw: Vec<f64> = (0..200)
            .map(|k| base + ((k * 37 + i * 11) % 97) as f64)
            .collect();
        EndpointRecord {
            endpoint: "board".into(),
            served: Some(served),
            requests: 600,
            errors: 0,
            conflicts: 1,
            p50_ms: base + 48.0,
            p95_ms: base + 92.0,
            p99_ms: base + 96.0,
            avg_ms: base + 48.0,
            max_ms: base + 96.0,
            latencies_ms: raw,
            missing: Vec::new(),
        }
    };
    WindowRecord {
        start_ms: 1_800_000_000_000 + i * INTERVAL_MS,
        duration_ms: INTERVAL_MS,
        percent,
        endpoints: vec![side(Served::Canary, 100.0), side(Served::Baseline, 100.0)],
        sources: Vec::new(),
    }
}

/// Per call: instantiate + decide; then journaling its decision, with the call in it (a run
/// that records) and without (one that would not).
struct Times {
    call: Histogram<u64>,
    recorded: Histogram<u64>,
    unrecorded: Histogram<u64>,
}

/// Decides the whole canary, journaled into `run` when given, each call recorded in its
/// decision when `record`; returns the number of calls.
async fn canary(
    plugin: &Plugin,
    run: Option<&Path>,
    record: bool,
    times: &mut Times,
) -> anyhow::Result<usize> {
    let mut journal = match run {
        Some(dir) => Some(Journal::open(&dir.join("journal.jsonl"))?),
        None => None,
    };
    let config = config();
    let mut recorder = run.filter(|_| record).map(|dir| {
        let map = config.as_object().cloned().unwrap_or_default();
        (CanaryCalls::new("canary", map), CallStore::new(dir))
    });
    let sandbox = Sandbox::default();
    let config_json = config.to_string();
    let mut state = CanaryState {
        percent: 0,
        step_index: 0,
        step_elapsed_ms: 0,
        total_elapsed_ms: 0,
    };
    // The history, and where it starts in the journal (what a call names).
    let (mut history, mut from): (Vec<CanaryWindow>, Option<u64>) = (Vec::new(), None);
    let mut calls = 0;
    for i in 0..WINDOWS {
        let w = window(i, state.percent);
        if let Some(j) = journal.as_mut() {
            j.append(Event::Window {
                stage: "canary".into(),
                environment: "production".into(),
                window: w.clone(),
            })?;
        }
        history.push(w.canary_window());
        from.get_or_insert(i);
        state.step_elapsed_ms += INTERVAL_MS;
        state.total_elapsed_ms += INTERVAL_MS;

        let t = Instant::now();
        let called = plugin
            .decide_canary(&sandbox, &state, &history, &config_json)
            .await?;
        times.call.record(t.elapsed().as_nanos() as u64)?;
        let len = history.len() as u64;
        // The decision a run journals whether it records or not.
        let (action, summary) = (action_word(&called.value.action), &called.value.summary);
        let checks = record::checks(&called.value.checks);
        // What a run records of the call (stages::canary): the call, in its decision. Timed
        // with the decision's journaling (serialized, secret-scanned, hashed, buffered: made
        // durable by the next window's synced append), against rounds that do not record.
        if let Some(j) = journal.as_mut() {
            let t = Instant::now();
            let call = recorder.as_mut().map(|(recorder, store)| {
                recorder.call(store, &state, (from, len), &called.value.action, summary)
            });
            j.append_unsynced(Event::Decision {
                stage: "canary".into(),
                percent: state.percent,
                action,
                summary: summary.clone(),
                checks,
                plugin: "canary-steps".into(),
                call,
            })?;
            let took = t.elapsed().as_nanos() as u64;
            match record {
                true => times.recorded.record(took)?,
                false => times.unrecorded.record(took)?,
            }
        }
        // The canary waits for its next window (here, not at all): the plugin's next instance
        // is made then, on this worker (`launch_runtime::standby`).
        tokio::task::yield_now().await;
        calls += 1;
        match called.value.action {
            Action::Promote(p) => {
                state.percent = p;
                state.step_index += 1;
                state.step_elapsed_ms = 0;
                history.clear();
                from = None;
            }
            Action::Complete => break,
            Action::Hold(_) => {}
            Action::Rollback(r) => anyhow::bail!("the healthy canary rolled back: {r}"),
        }
    }
    Ok(calls)
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // On a worker thread, as `launch-host` runs a launch (`cli::on_worker`).
    rt.block_on(async { tokio::spawn(run()).await? })
}

fn row(measure: &str, got: String, goal: &str) {
    println!("{measure:<58} {got:>14} {goal:>12}");
}

async fn run() -> anyhow::Result<()> {
    let dir = support::plugins_dir();
    let runtime = Runtime::new(Some(tempfile::tempdir()?.keep()))?;
    let plugin = runtime.load(&dir.join("canary-steps.wasm")).await?;
    let mut times = Times {
        call: Histogram::new(3)?,
        recorded: Histogram::new(3)?,
        unrecorded: Histogram::new(3)?,
    };
    canary(&plugin, None, false, &mut times).await?; // warm-up
    times.call.reset();
    // `LAUNCH_HOST_BENCH_ROUNDS`: more canaries, e.g. to profile the calls.
    let rounds: usize = std::env::var("LAUNCH_HOST_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(ROUNDS);
    // Rounds that record and rounds that do not, in turn; the last one records (it is replayed).
    let rounds = rounds.max(2);
    let (mut calls, mut last_run) = (0, None);
    for round in 0..rounds {
        let run = tempfile::tempdir()?;
        let record = (rounds - round) % 2 == 1;
        calls = canary(&plugin, Some(run.path()), record, &mut times).await?;
        last_run = Some(run);
    }
    let run = last_run.expect("at least one round");

    let t = Instant::now();
    let recorded_calls = replay::recorded(run.path())?;
    let rows = replay::replay(&recorded_calls, |_| Some(&plugin), None).await;
    let replay_time = t.elapsed();
    let same = rows
        .iter()
        .filter(|r| r.same && r.skipped.is_none())
        .count();
    anyhow::ensure!(
        same == rows.len() && rows.len() == calls,
        "replay reproduced {same} of {} decisions ({calls} made)",
        rows.len()
    );

    let median = |h: &Histogram<u64>| h.value_at_quantile(0.5) as f64 / 1e3;
    let call = median(&times.call);
    let (recorded, unrecorded) = (median(&times.recorded), median(&times.unrecorded));
    let recording = recorded - unrecorded;
    println!("launch-host lab benchmark: a 2-hour canary at a 60 s interval ({calls} decisions)\n");
    println!("{:<58} {:>14} {:>12}", "measure", "launch-host", "goal");
    row(
        &format!(
            "canary-policy.decide, instance made ahead, median of {}",
            times.call.len()
        ),
        format!("{call:.1} µs"),
        "< 60 µs",
    );
    row(
        "journaling its decision, median: with the call in it",
        format!("{recorded:.2} µs"),
        "",
    );
    row(
        "  … without (a run that would not record)",
        format!("{unrecorded:.2} µs"),
        "",
    );
    row(
        "recording overhead on the call",
        format!("{:.1} %", recording / call * 100.0),
        "< 5 %",
    );
    row(
        &format!(
            "replay of the recorded run ({} decisions, all same)",
            rows.len()
        ),
        format!("{:.1} ms", replay_time.as_secs_f64() * 1e3),
        "< 1 s",
    );
    backtest(run.path(), &dir.join("canary-steps.wasm"), calls)?;
    Ok(())
}

/// `launch-host backtest` over 200 runs: copies of the recorded one, each its own run id.
fn backtest(recorded: &Path, policy: &Path, calls: usize) -> anyhow::Result<()> {
    const RUNS: usize = 200;
    let runs = tempfile::tempdir()?;
    for i in 0..RUNS {
        let to = runs
            .path()
            .join(format!("20261203T12{:02}{:02}000Z-{i:04x}", i / 60, i % 60));
        std::fs::create_dir_all(&to)?;
        copy_tree(recorded, &to)?;
    }
    let t = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_launch-host"))
        .arg("backtest")
        .arg(policy)
        .arg("--runs-dir")
        .arg(runs.path())
        .args(["--output", "json"])
        .output()?;
    let took = t.elapsed();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let rows = json["runs"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(
        out.status.success()
            && rows.len() == RUNS
            && rows
                .iter()
                .all(|r| r["finding"] == "agreed" && r["calls"] == calls),
        "backtest: {} run(s) of {RUNS}; the first not agreed with {calls} calls: {}; {}",
        rows.len(),
        rows.iter()
            .find(|r| r["finding"] != "agreed" || r["calls"] != calls)
            .map_or(String::new(), |r| r.to_string()),
        String::from_utf8_lossy(&out.stderr)
    );
    row(
        &format!(
            "backtest over {RUNS} recorded runs ({} decisions)",
            RUNS * calls
        ),
        format!("{:.2} s", took.as_secs_f64()),
        "< 10 s",
    );
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
