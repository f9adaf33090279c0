//! `just bench`: what loading and calling plugins costs, next to the goals of issues [1/4] and
//! [7/10].
//!
//! - cold load (compile from bytes, no cache) vs warm load (from the artifact cache) per plugin;
//! - all stock Rust plugins warm-loaded together;
//! - instantiate + call of a policy plugin (fresh instance per call), median and p99, and the
//!   spread of its medians over 50 chunks of calls (`support::chunks`); the same call on an
//!   instance made ahead for its sandbox.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use launch_runtime::types::*;
use launch_runtime::{Runtime, Sandbox};
use support::chunks::{CHUNK, Chunked};

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn us(ns: u64) -> String {
    format!("{:.1} µs", ns as f64 / 1e3)
}

fn samples() -> Samples {
    let ep = |name: &str| EndpointWindow {
        endpoint: name.into(),
        requests: 500,
        errors: 1,
        conflicts: 2,
        p50_ms: 80.0,
        p95_ms: 300.0,
        p99_ms: 500.0,
        avg_ms: 110.0,
        max_ms: 900.0,
        latencies_ms: Vec::new(),
    };
    Samples {
        windows: (0..10)
            .map(|i| MetricWindow {
                start_ms: i * 60_000,
                duration_ms: 60_000,
                endpoints: vec![ep("board"), ep("drawer")],
            })
            .collect(),
    }
}

/// A sandbox of its own, as a replayed call has: no instance was made ahead for it
/// (`launch_runtime::standby`), so a call under it times instantiation too.
fn own(sandbox: &Sandbox) -> Sandbox {
    Sandbox {
        grants: Arc::new((*sandbox.grants).clone()),
        ..sandbox.clone()
    }
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // On a worker, as the CLI runs a launch (`cli::on_worker`): a spare's task then goes to
    // the worker's own queue and is made while the caller waits.
    rt.block_on(async { tokio::spawn(run()).await? })
}

async fn run() -> anyhow::Result<()> {
    let dir = support::plugins_dir();
    let cache = tempfile::tempdir()?;
    let runtime = Runtime::new(Some(cache.path().to_path_buf()))?;
    let files = launch_runtime::discovery::wasm_files(&dir)?;
    anyhow::ensure!(
        !files.is_empty(),
        "no plugins in {} (run `just build-plugins`)",
        dir.display()
    );

    println!(
        "launch-host plugin benchmark ({} plugins in {})\n",
        files.len(),
        dir.display()
    );
    println!(
        "{:<20} {:>10} {:>14} {:>14}",
        "plugin", "size", "cold load", "warm load"
    );
    let mut rust_warm_total = Duration::ZERO;
    let mut python_warm = None;
    // `--calls-only`: skip the loads (minutes, for the Python and JS plugins) and measure calls.
    let loads = !std::env::args().any(|a| a == "--calls-only");
    for file in files.iter().filter(|_| loads) {
        let cold = runtime.load_uncached(file).await?; // compiles, and primes nothing
        let _ = runtime.load(file).await?; // compiles once more, into the cache
        // Warm load: best of 5, from the cache.
        let mut warm = Duration::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            runtime.load(file).await?;
            warm = warm.min(t.elapsed());
        }
        let python = cold.size > 4 << 20;
        if !python {
            rust_warm_total += warm;
        } else if cold.info.name == "error-budget" {
            python_warm = Some(warm);
        }
        println!(
            "{:<20} {:>10} {:>14} {:>14}",
            cold.info.name,
            format!("{} KiB", cold.size >> 10),
            ms(cold.load.elapsed),
            ms(warm)
        );
    }

    // All stock Rust plugins warm-loaded together (discovery of the directory minus Python):
    // only after the loads above put them in the cache — with `--calls-only` this would time
    // compiles and call them warm loads.
    let mut together = None;
    if loads {
        let t = Instant::now();
        for file in &files {
            if std::fs::metadata(file)?.len() <= 4 << 20 {
                runtime.load(file).await?;
            }
        }
        together = Some(t.elapsed());
    }

    let gate = runtime.load(&dir.join("slo-thresholds.wasm")).await?;
    let sandbox = Sandbox::default();
    let samples = samples();
    // `LAUNCH_HOST_BENCH_CALLS`: more calls, e.g. to profile them.
    let calls: usize = std::env::var("LAUNCH_HOST_BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    for _ in 0..200 {
        gate.evaluate_slo(&sandbox, &samples, "").await?; // warm-up
    }
    // In chunks of `CHUNK` calls spread over a few seconds (`support::chunks`).
    let (describe, evaluate, machine) = (0, 1, 2);
    let mut timings = Chunked::new(3);
    for _ in 0..calls.div_ceil(CHUNK) {
        timings.chunk().await;
        // After the pause, the chunk's first calls are not timed.
        for _ in 0..5 {
            let own = own(&sandbox);
            gate.describe(&own).await?;
            gate.evaluate_slo(&own, &samples, "").await?;
        }
        for _ in 0..CHUNK {
            let t = Instant::now();
            gate.describe(&sandbox).await?;
            timings.record(describe, t.elapsed());
            let own = own(&sandbox);
            let t = Instant::now();
            gate.evaluate_slo(&own, &samples, "").await?;
            timings.record(evaluate, t.elapsed());
        }
        for _ in 0..20 {
            timings.record(machine, support::chunks::machine_alone());
        }
    }

    // The same sandbox call after call, with a wait between, as a gate's windows: the call
    // finds an instance made ahead for it (`launch_runtime::standby`) while the caller waited.
    let mut ahead = Chunked::new(1);
    for _ in 0..calls.div_ceil(CHUNK) {
        ahead.chunk().await;
        for i in 0..5 + CHUNK {
            let t = Instant::now();
            gate.evaluate_slo(&sandbox, &samples, "").await?;
            if i >= 5 {
                ahead.record(0, t.elapsed());
            }
            tokio::task::yield_now().await;
        }
    }

    // What a call's host state costs by itself (capabilities, captures, and a WASI context
    // if the gate imports WASI; the stock one does not).
    let mut state = Histogram::<u64>::new(3)?;
    let client = launch_runtime::capabilities::http_client::HttpClient::new()?;
    for _ in 0..calls {
        let t = Instant::now();
        let s = launch_runtime::PluginState::new(
            sandbox.grants.clone(),
            client.clone(),
            Default::default(),
            64 << 20,
            gate.wasi,
        );
        drop(std::hint::black_box(s));
        state.record(t.elapsed().as_nanos() as u64)?;
    }

    println!();
    println!("{:<52} {:>12} {:>12}", "measure", "launch-host", "goal");
    println!(
        "{:<52} {:>12} {:>12}",
        if gate.wasi {
            "  a call's host state alone (with WASI), median"
        } else {
            "  a call's host state alone (no WASI), median"
        },
        us(state.value_at_quantile(0.5)),
        ""
    );
    if let Some(together) = together {
        println!(
            "{:<52} {:>12} {:>12}",
            "stock Rust plugins warm-loaded together",
            ms(together),
            "< 100 ms"
        );
        println!(
            "{:<52} {:>12} {:>12}",
            "  (sum of best warm loads)",
            ms(rust_warm_total),
            ""
        );
    }
    if let Some(warm) = python_warm {
        println!(
            "{:<52} {:>12} {:>12}",
            "Python plugin (18 MB) warm load, best of 5",
            ms(warm),
            "< 20 ms"
        );
    }
    let median = |h: Histogram<u64>| us(h.value_at_quantile(0.5));
    let p99 = |h: Histogram<u64>| us(h.value_at_quantile(0.99));
    let spread = |timings: &Chunked, series| {
        let (fastest, middle, slowest) = timings.chunk_medians(series);
        let n = |ns: u64| format!("{:.1}", ns as f64 / 1e3);
        format!("{}/{}/{} µs", n(fastest), n(middle), n(slowest))
    };
    let of_chunks = format!(
        "  {} chunks' medians: fastest/middle/slowest",
        timings.chunks()
    );
    support::row(
        &format!(
            "instantiate+describe, median of {}",
            timings.all(describe).len()
        ),
        &median(timings.all(describe)),
        "< 25 µs",
    );
    support::row("  p99", &p99(timings.all(describe)), "");
    support::row(&of_chunks, &spread(&timings, describe), "");
    support::row(
        "instantiate+slo-gate.evaluate (10 windows), median",
        &median(timings.all(evaluate)),
        "< 25 µs",
    );
    support::row("  p99", &p99(timings.all(evaluate)), "");
    support::row(&of_chunks, &spread(&timings, evaluate), "");
    // No plugin: whether the slow chunks were the machine's (`support::chunks::machine_alone`).
    let (in_fast, in_slow) = support::chunks::control_by_thirds(&timings, evaluate, machine);
    support::row(
        "  64 KiB copy + 32 allocations, no plugin, median",
        &median(timings.all(machine)),
        "",
    );
    support::row(
        "  … in evaluate's fastest / slowest third of chunks",
        &format!("{:.2}/{:.2} µs", in_fast as f64 / 1e3, in_slow as f64 / 1e3),
        "",
    );
    support::row(
        "slo-gate.evaluate on an instance made ahead, median",
        &median(ahead.all(0)),
        "",
    );
    support::row("  p99", &p99(ahead.all(0)), "");
    support::row(&of_chunks, &spread(&ahead, 0), "");
    Ok(())
}
