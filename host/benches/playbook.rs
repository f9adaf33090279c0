//! `just bench` (second part): the launch as a whole, side by side with its goals and with wrk.
//!
//! 1. wall time of the full embedded run (`launch-host run --yes`), goal < 15 s;
//! 2. the probe engine's HTTP client path against wrk on the same loopback target, same
//!    connection count: requests/s (goal ≥ 0.8× wrk) and p95 (goal within 10 % of wrk);
//! 3. reaction time from injecting a V2 fault into a running canary to the flag at 0
//!    (goal ≤ one check interval + 200 ms), and the same with a real Prometheus as the canary's
//!    only source (goal ≤ scrape interval + check interval + 200 ms).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use launch_targets::flags::LocalFlags;
use launch_targets::simulator::{Simulator, SimulatorConfig, site};
use launch_targets::store::LocalStore;

// The tests' real Prometheus server (and the rest of their fixtures).
#[path = "../../tests/support/mod.rs"]
mod test_support;

const BIN: &str = env!("CARGO_BIN_EXE_launch-host");
const CONNECTIONS: usize = 32;
const LOAD_SECONDS: u64 = 5;
const INTERVAL_MS: u64 = 250;
/// The canary's check interval when Prometheus (scraping every second) is its source.
const PROM_INTERVAL_MS: u64 = 500;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn row(measure: &str, ours: String, reference: String, goal: &str) {
    println!("{measure:<62} {ours:>14} {reference:>14} {goal:>22}");
}

fn main() -> anyhow::Result<()> {
    let plugins = repo().join("plugins");
    anyhow::ensure!(
        plugins.join("canary-steps.wasm").is_file(),
        "run `just build-plugins` first"
    );
    let work = tempfile::tempdir()?;
    println!("launch-host playbook benchmark\n");
    println!(
        "{:<44} {:>14} {:>14} {:>22}",
        "measure", "launch-host", "reference", "goal"
    );

    // 1. The full embedded run.
    let mut walls = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        let status = Command::new(BIN)
            .args([
                "run",
                "--yes",
                "--plugins",
                plugins.to_str().unwrap(),
                "--runs-dir",
            ])
            .arg(work.path().join(format!("runs{i}")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "the embedded run failed ({status})");
        walls.push(t.elapsed());
    }
    walls.sort();
    row(
        "full embedded run, median of 3",
        format!("{:.2} s", walls[1].as_secs_f64()),
        "—".into(),
        "< 15 s",
    );

    // 2. Probe engine vs wrk.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let target = work.path().join("target");
    let sim = rt.block_on(async {
        let store = Arc::new(LocalStore::new(target.join("store")));
        site::write_statusboard_build(&target.join("build"), "bench", true)?;
        store.publish("r1", &target.join("build"))?;
        store.set_current("r1")?;
        let flags = Arc::new(LocalFlags::new(target.join("flags.json")));
        flags.write("STATUS_BOARD_V2_ENABLED", 0)?;
        Simulator::start(SimulatorConfig {
            store,
            flags,
            flag: "STATUS_BOARD_V2_ENABLED".into(),
            inject: Default::default(),
            inject_file: None,
            listen: None,
            traffic: 0,
        })
        .await
    })?;
    let url = format!("{}/api/admin/appointments/board", sim.url());
    let probe_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let stats = probe_rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CONNECTIONS)
            .tcp_nodelay(true)
            .build()
            .unwrap();
        launch_targets::probe::saturate(
            client,
            url.clone(),
            CONNECTIONS,
            Duration::from_secs(LOAD_SECONDS),
        )
        .await
    });
    let ours_rps = stats.requests as f64 / LOAD_SECONDS as f64;
    let ours_p95 = stats.quantile_ms(0.95);
    match wrk(&url, work.path()) {
        Some((rps, p95)) => {
            row(
                &format!("requests/s, {CONNECTIONS} connections, {LOAD_SECONDS} s"),
                format!("{ours_rps:.0}"),
                format!("{rps:.0} (wrk)"),
                &format!("≥ {:.0} (0.8× wrk)", 0.8 * rps),
            );
            row(
                "p95 latency",
                format!("{ours_p95:.2} ms"),
                format!("{p95:.2} ms (wrk)"),
                &format!("{:.2}–{:.2} ms", p95 * 0.9, p95 * 1.1),
            );
        }
        None => {
            row(
                &format!("requests/s, {CONNECTIONS} connections, {LOAD_SECONDS} s"),
                format!("{ours_rps:.0}"),
                "wrk missing".into(),
                "install wrk",
            );
            row(
                "p95 latency",
                format!("{ours_p95:.2} ms"),
                "wrk missing".into(),
                "",
            );
        }
    }
    // 3. An operator's emergency rollback through the guide's flag admin API: the whole
    //    command (runbook, journal, reports; no plugin is loaded) next to the bare HTTP call
    //    the guide's rollback.sh makes.
    let (ours, curl) = emergency_rollback(&plugins, work.path(), &sim.url())?;
    row(
        "rollback emergency → flag at 0, median of 5",
        format!("{:.0} ms", ours.as_secs_f64() * 1000.0),
        curl.map_or("curl missing".into(), |c| {
            format!("{:.0} ms (curl)", c.as_secs_f64() * 1000.0)
        }),
        "≤ 3× curl",
    );
    drop(sim);

    // 4. Reaction time: fault injected mid-canary → flag at 0, measured by the probe, then by
    //    a real Prometheus scraping the target every second (the canary's only source).
    let mut reactions = Vec::new();
    for i in 0..3 {
        let dir = work.path().join(format!("react{i}"));
        reactions.push(reaction(&plugins, &dir, INTERVAL_MS, "")?);
    }
    reactions.sort();
    row(
        &format!("fault → flag at 0, probe (interval {INTERVAL_MS} ms), median/max"),
        format!(
            "{}/{} ms",
            reactions[1].as_millis(),
            reactions[2].as_millis()
        ),
        "—".into(),
        &format!("≤ {} ms", INTERVAL_MS + 200),
    );
    let prometheus_installed = Command::new("prometheus")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    match prometheus_installed {
        false => {
            println!("prometheus is not installed (scripts/setup.sh --tests): no Prometheus row")
        }
        true => {
            let mut reactions = Vec::new();
            for i in 0..3 {
                let port = test_support::free_port();
                let prometheus =
                    test_support::PrometheusServer::start(&[format!("127.0.0.1:{port}")]);
                let metrics = format!(
                    "listen = \"127.0.0.1:{port}\"\ntraffic = 200\n[environments.staging.metrics]\nsource = \"prometheus\"\nprometheus = \"{}\"\nscrape-interval = \"1s\"\n",
                    prometheus.url
                );
                let dir = work.path().join(format!("react-prom{i}"));
                reactions.push(reaction(&plugins, &dir, PROM_INTERVAL_MS, &metrics)?);
            }
            reactions.sort();
            row(
                &format!(
                    "fault → flag at 0, Prometheus (scrape 1 s, interval {PROM_INTERVAL_MS} ms), median/max"
                ),
                format!(
                    "{}/{} ms",
                    reactions[1].as_millis(),
                    reactions[2].as_millis()
                ),
                "—".into(),
                &format!("≤ {} ms", 1000 + PROM_INTERVAL_MS + 200),
            );
        }
    }
    Ok(())
}

/// Median wall time of `launch-host rollback emergency` against the simulator's flag admin API,
/// and of the same change made with one `curl -X PUT` (None when curl is missing).
fn emergency_rollback(
    plugins: &Path,
    dir: &Path,
    api: &str,
) -> anyhow::Result<(Duration, Option<Duration>)> {
    let book = dir.join("rollback.toml");
    std::fs::write(
        &book,
        format!(
            "[launch]\nname = \"bench\"\nflag = \"STATUS_BOARD_V2_ENABLED\"\n\
             [environments.production]\nurl = \"{api}\"\napi-url = \"{api}\"\nflags = \"http\"\n\
             [[stage]]\nname = \"idle\"\naction = \"wait\"\nduration = \"1ms\"\n"
        ),
    )?;
    let admin = format!("{api}/api/admin/feature-flags");
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mut ours = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let status = Command::new(BIN)
            .args(["rollback", "emergency", "--reason", "bench", "--runbook"])
            .arg(&book)
            .arg("--plugins")
            .arg(plugins)
            .arg("--workspace")
            .arg(dir.join("ws"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "rollback emergency failed ({status})");
        ours.push(t.elapsed());
    }
    let mut curl = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let ok = Command::new("curl")
            .args(["-sf", "-X", "PUT", "-H", "content-type: application/json"])
            .args([
                "-d",
                r#"{"name":"STATUS_BOARD_V2_ENABLED","percent":0}"#,
                &admin,
            ])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Ok((median(ours), None));
        }
        curl.push(t.elapsed());
    }
    Ok((median(ours), Some(median(curl))))
}

/// wrk's requests/s and p95 (ms) on `url`, or None when wrk is not installed.
fn wrk(url: &str, dir: &Path) -> Option<(f64, f64)> {
    let script = dir.join("p95.lua");
    std::fs::write(&script, "done = function(summary, latency, requests)\n  io.write(string.format(\"P95_US %d\\n\", latency:percentile(95)))\nend\n").ok()?;
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{LOAD_SECONDS}s"),
            "-s",
        ])
        .arg(&script)
        .arg(url)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let p95_us: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("P95_US "))?
        .trim()
        .parse()
        .ok()?;
    Some((rps, p95_us / 1000.0))
}

/// Starts a canary that would hold for a minute per step, injects a V2 failure once it is at
/// 10 %, and measures until the host has set the flag back to 0. `environment` adds to the
/// staging environment's table (a metrics source).
fn reaction(
    plugins: &Path,
    dir: &Path,
    interval_ms: u64,
    environment: &str,
) -> anyhow::Result<Duration> {
    std::fs::create_dir_all(dir)?;
    let book = dir.join("launch.toml");
    std::fs::write(
        &book,
        format!(
            "[launch]\nname = \"bench\"\nflag = \"STATUS_BOARD_V2_ENABLED\"\n[defaults]\nprobe-rate = 400\n[environments.staging]\ntarget = \"embedded\"\n{environment}\n\
             [[stage]]\nname = \"canary\"\nplugin = \"canary-steps\"\nenvironment = \"staging\"\ninterval = \"{interval_ms}ms\"\non-fail = \"rollback\"\n\
             config = {{ steps = [10, 100], step-duration-ms = 60000, min-requests = 5 }}\n"
        ),
    )?;
    let runs = dir.join("runs");
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--yes",
            "--plugins",
            plugins.to_str().unwrap(),
            "--runbook",
            book.to_str().unwrap(),
            "--runs-dir",
            runs.to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    loop {
        let Some(line) = lines.next() else {
            anyhow::bail!("the canary never reached 10%:\n{}", said.join("\n"))
        };
        let line = line?;
        if line.contains("canary 0% → 10%") {
            break;
        }
        said.push(line);
    }
    std::thread::sleep(Duration::from_millis(600)); // a couple of healthy intervals first
    let run = std::fs::read_dir(&runs)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            !p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .starts_with('.')
        })
        .ok_or_else(|| anyhow::anyhow!("no run folder in {}", runs.display()))?;
    let env = run.join("env/staging");
    let flags = LocalFlags::new(env.join("flags.json"));
    let injected = Instant::now();
    std::fs::write(env.join("inject"), "v2-errors=100%")?;
    while flags.read("STATUS_BOARD_V2_ENABLED")? != 0 {
        anyhow::ensure!(
            injected.elapsed() < Duration::from_secs(30),
            "the canary never rolled back"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let reaction = injected.elapsed();
    let _ = child.wait();
    Ok(reaction)
}
