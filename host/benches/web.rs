//! `just bench`: the web dashboard under 50 viewers of one live run, next to the goal of issue
//! [10/10] (the server-sent events stay under 1 s behind the journal); then what one viewer of
//! a two-hour canary receives, next to [14/16]'s goal (under 1 MB) and to whole bodies.
//!
//! The server (`launch_web::router`, as `launch-host serve` runs it) serves a run folder whose
//! journal this bench writes: a 2-second-window canary's records (a window and a decision) ten
//! times a second for 15 s. 50 viewers hold the run's event stream open. For every record
//! written and every viewer, the lag is the time from the append until that viewer receives a
//! page that includes it (an event whose id, the journal's record count, is at least its own).

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use tokio::sync::Mutex;

use launch_engine::journal::{Event, Journal};
use launch_engine::record::{EndpointRecord, VerdictRecord, WindowRecord};
use launch_targets::probe::Served;

const VIEWERS: usize = 50;

/// What one viewer was shown: the journal's record count of each event, and when it came.
type Shown = Mutex<Vec<(usize, Instant)>>;
const APPENDS: usize = 150;
const EVERY: Duration = Duration::from_millis(100);

fn window(i: usize) -> WindowRecord {
    window_of(i, APPENDS, 2_000)
}

/// Window `i` of `count`, each `every_ms` long: the flag steps 10 → 30 → 50 → 100 over them.
fn window_of(i: usize, count: usize, every_ms: u64) -> WindowRecord {
    let side = |served, base: f64| EndpointRecord {
        endpoint: "board".into(),
        served: Some(served),
        requests: 400,
        errors: (i % 3) as u64,
        conflicts: 0,
        p50_ms: base,
        p95_ms: base * 2.0 + (i % 17) as f64,
        p99_ms: base * 3.0,
        avg_ms: base,
        max_ms: base * 4.0,
        latencies_ms: Vec::new(),
        missing: Vec::new(),
    };
    WindowRecord {
        start_ms: 1_800_000_000_000 + i as u64 * every_ms,
        duration_ms: every_ms,
        percent: [10, 30, 50, 100][(i * 4 / count).min(3)],
        endpoints: vec![side(Served::Baseline, 80.0), side(Served::Canary, 90.0)],
        sources: Vec::new(),
    }
}

fn decision(i: usize, percent: u8) -> Event {
    Event::Decision {
        stage: "canary".into(),
        percent,
        action: "hold".into(),
        summary: format!("hold: healthy, window {i}"),
        checks: vec![launch_engine::record::CheckRecord {
            name: "latency-p95".into(),
            verdict: VerdictRecord::Pass,
            observed: Some(180.0),
            threshold: Some(2000.0),
            unit: "ms".into(),
            detail: String::new(),
            skipped: false,
        }],
        plugin: "canary-steps".into(),
        // What a policy's decision holds of its call.
        call: Some(launch_engine::journal::CanaryCall {
            step_index: 0,
            step_elapsed_ms: i as u64 * 100,
            total_elapsed_ms: i as u64 * 100,
            history_from: Some(i.saturating_sub(9) as u64),
            history_len: i.min(9) as u64 + 1,
            config: None,
            reason: None,
        }),
    }
}

fn start_run(dir: &Path) -> anyhow::Result<Journal> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("runbook.toml"), "")?;
    let mut journal = Journal::open(&dir.join("journal.jsonl"))?;
    journal.append(Event::RunStarted {
        run_id: "20261128T000000000Z-bench".into(),
        runbook: "(bench)".into(),
        runbook_sha256: String::new(),
        plugins: Vec::new(),
        auto: true,
        started_by: Some("bench".into()),
        launch: "StatusBoardV2".into(),
        flag: "STATUS_BOARD_V2_ENABLED".into(),
        environments: vec!["staging".into()],
    })?;
    journal.append(Event::StageStarted {
        stage: "canary".into(),
        title: "Canary".into(),
    })?;
    Ok(journal)
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let runs = work.path().join("runs");
    let id = "20261128T000000000Z-bench";
    let mut journal = start_run(&runs.join(id))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = launch_web::router(launch_web::Config {
        runs: launch_web::Runs {
            dir: runs.clone(),
            state: None,
            cache: None,
        },
        actions: None,
    });
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Each viewer: (record count it was shown, when) for every event it received.
    let seen: Arc<Vec<Shown>> = Arc::new((0..VIEWERS).map(|_| Mutex::new(Vec::new())).collect());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(VIEWERS)
        .build()?;
    let mut viewers = Vec::new();
    for v in 0..VIEWERS {
        let (client, seen) = (client.clone(), seen.clone());
        let url = format!("http://{addr}/runs/{id}/events");
        viewers.push(tokio::spawn(async move {
            let response = client.get(url).send().await?;
            let mut body = response.bytes_stream();
            let mut buffer = String::new();
            while let Some(chunk) = body.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk?));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    if let Some(n) = event
                        .lines()
                        .find_map(|l| l.strip_prefix("id: "))
                        .and_then(|n| n.trim().parse::<usize>().ok())
                    {
                        seen[v].lock().await.push((n, Instant::now()));
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    // Everyone connected and shown the page as it is.
    let connected = Instant::now();
    while connected.elapsed() < Duration::from_secs(10) {
        let mut all = true;
        for s in seen.iter() {
            all &= !s.lock().await.is_empty();
        }
        if all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut written: Vec<(usize, Instant)> = Vec::new();
    let mut records = 2;
    let mut next = Instant::now();
    for i in 0..APPENDS {
        journal.append(Event::Window {
            stage: "canary".into(),
            environment: "staging".into(),
            window: window(i),
        })?;
        journal.append(decision(i, window(i).percent))?;
        records += 2;
        written.push((records, Instant::now()));
        next += EVERY;
        tokio::time::sleep_until(next.into()).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut lag = Histogram::<u64>::new(3)?;
    let mut missed = 0;
    for s in seen.iter() {
        let s = s.lock().await;
        for (count, at) in &written {
            match s.iter().find(|(n, t)| n >= count && t >= at) {
                Some((_, t)) => lag.record(t.duration_since(*at).as_micros() as u64)?,
                None => missed += 1,
            }
        }
    }
    for v in viewers {
        v.abort();
    }
    let ms = |us: u64| format!("{:.1} ms", us as f64 / 1000.0);
    println!(
        "launch-host web benchmark: {VIEWERS} viewers of one live run, {APPENDS} journal appends at {} ms\n",
        EVERY.as_millis()
    );
    support::row("measure", "launch-host", "goal");
    support::row(
        "SSE behind the journal, median",
        &ms(lag.value_at_quantile(0.5)),
        "",
    );
    support::row(
        "SSE behind the journal, p99",
        &ms(lag.value_at_quantile(0.99)),
        "< 1000 ms",
    );
    support::row("SSE behind the journal, max", &ms(lag.max()), "");
    support::row("appends a viewer never saw", &missed.to_string(), "0");
    // The guide's canary checks health every 60 s; a 10 s interval is six times as dense.
    two_hours(&client, addr, &runs, 60_000).await?;
    two_hours(&client, addr, &runs, 10_000).await
}

/// A two-hour canary of `window_ms` windows (a window and a decision each), appended one
/// window at a time, each its own update: the bytes one viewer's event stream carries, next
/// to what whole bodies (the page before [14/16]) would have been.
async fn two_hours(
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    runs: &Path,
    window_ms: u64,
) -> anyhow::Result<()> {
    let windows = (7_200_000 / window_ms) as usize;
    let id = format!("20261128T000000000Z-long{}", window_ms / 1000);
    let dir = runs.join(&id);
    let mut journal = start_run(&dir)?;
    let received = Arc::new(Mutex::new((0usize, 0usize, 0usize)));
    let counted = received.clone();
    let response = client
        .get(format!("http://{addr}/runs/{id}/events"))
        .send()
        .await?;
    let viewer = tokio::spawn(async move {
        let mut body = response.bytes_stream();
        let mut buffer = String::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            let mut c = counted.lock().await;
            c.0 += chunk.len();
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                c.1 += 1;
                c.2 = c.2.max(event.len());
            }
        }
        anyhow::Ok(())
    });
    let mut whole = 0usize;
    let mut last_body = 0usize;
    for i in 0..windows {
        let w = window_of(i, windows, window_ms);
        let percent = w.percent;
        journal.append(Event::Window {
            stage: "canary".into(),
            environment: "staging".into(),
            window: w,
        })?;
        journal.append(decision(i, percent))?;
        // What a whole-body update of this window would have sent (its data line's JSON).
        let d = dir.clone();
        let update = tokio::task::spawn_blocking(move || launch_web::live::render(&d)).await?;
        last_body = serde_json::to_string(&update)?.len();
        whole += last_body;
        // Past the server's 100 ms look at the journal: every window is an update.
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    viewer.abort();
    let (bytes, events, largest) = *received.lock().await;
    let kb = |b: usize| format!("{:.0} KB", b as f64 / 1000.0);
    println!(
        "\none viewer of a two-hour canary: {windows} windows of {} s, each its own update\n",
        window_ms / 1000
    );
    support::row("measure", "launch-host", "whole bodies / goal");
    support::row(
        "bytes sent to the viewer",
        &kb(bytes),
        &format!("{} / < 1000 KB", kb(whole)),
    );
    support::row("events", &events.to_string(), &windows.to_string());
    support::row(
        "largest event",
        &kb(largest),
        &format!("{} (the last body)", kb(last_body)),
    );
    support::row(
        "per window",
        &format!("{:.0} B", bytes as f64 / windows as f64),
        &format!("{:.0} B", whole as f64 / windows as f64),
    );
    Ok(())
}
