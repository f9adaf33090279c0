//! Prometheus as a canary's only metrics source, against a real Prometheus (Debian's binary)
//! scraping the embedded target's `/metrics` every second, with the binary under test — and
//! where it meets the host at its edges: a template that matches nothing, a server that
//! hangs, a canary that never gets enough traffic. No data is never a zero.

mod support;

use std::path::Path;

use support::{
    PrometheusServer, free_port, launch_host_output, launch_host_with, local_runs, repo,
};

/// A canary judged on Prometheus alone: the target listens on `port` with simulated users'
/// traffic, and no probe runs.
fn runbook(dir: &Path, port: u16, prometheus: &str, metrics_extra: &str) -> std::path::PathBuf {
    runbook_with(dir, port, prometheus, "\"prometheus\"", metrics_extra)
}

fn runbook_with(
    dir: &Path,
    port: u16,
    prometheus: &str,
    source: &str,
    metrics_extra: &str,
) -> std::path::PathBuf {
    let path = dir.join("launch.toml");
    std::fs::write(
        &path,
        format!(
            r#"[launch]
name = "prometheus-canary"
flag = "STATUS_BOARD_V2_ENABLED"

[environments.staging]
target = "embedded"
listen = "127.0.0.1:{port}"
traffic = 100

[environments.staging.metrics]
source = {source}
prometheus = "{prometheus}"
scrape-interval = "1s"
ready-within = "20s"
{metrics_extra}

[[stage]]
name = "deploy"
action = "deploy"
environment = "staging"
site = "statusboard-v2"

[[stage]]
name = "canary"
plugin = "canary-steps"
environment = "staging"
interval = "1s"
duration = "60s"
on-fail = "rollback"
config = {{ steps = [10, 50, 100], step-duration-ms = 2000, min-requests = 3 }}
"#
        ),
    )
    .unwrap();
    path
}

fn run(book: &Path, runs: &Path, extra: &[&str]) -> std::process::Output {
    launch_host_with(&[])
        .args(["run", "--yes", "--plugins"])
        .arg(repo().join("plugins"))
        .arg("--runbook")
        .arg(book)
        .arg("--runs-dir")
        .arg(runs)
        .args(extra)
        .output()
        .unwrap()
}

fn journal(run: &Path) -> Vec<serde_json::Value> {
    support::journal_of(run)
}

fn windows(records: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    records
        .iter()
        .filter(|r| r["event"] == "window")
        .map(|r| &r["window"])
        .collect()
}

#[test]
fn a_canary_on_prometheus_alone_promotes_on_healthy_traffic_and_rolls_back_on_latency() {
    let port = free_port();
    let prometheus = PrometheusServer::start(&[format!("127.0.0.1:{port}")]);
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path(), port, &prometheus.url, "");
    let runs = dir.path().join("runs");

    let healthy = run(&book, &runs, &[]);
    let stderr = String::from_utf8_lossy(&healthy.stderr);
    assert_eq!(healthy.status.code(), Some(0), "{stderr}");
    let records = journal(&local_runs(&runs)[0]);
    let ws = windows(&records);
    assert!(ws.len() >= 3, "a window per check interval: {}", ws.len());
    for w in &ws {
        assert_eq!(w["sources"], serde_json::json!(["prometheus"]), "{w}");
        // No probe ran: its raw latencies would be here.
        assert!(
            w["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e.get("latencies").is_none()),
            "{w}"
        );
    }
    // At 50 % the canary serves about half of the users' requests, as Prometheus counted them.
    let at_half = ws
        .iter()
        .find(|w| w["percent"] == 50)
        .expect("a window at 50%");
    let served = |who: &str| -> u64 {
        at_half["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["served"] == who)
            .map(|e| e["requests"].as_u64().unwrap())
            .sum()
    };
    assert!(
        served("canary") > 20 && served("baseline") > 20,
        "{at_half}"
    );
    let promoted: Vec<_> = records
        .iter()
        .filter(|r| r["event"] == "effect-done")
        .filter_map(|r| r["key"].as_str())
        .filter(|k| k.starts_with("promote:"))
        .collect();
    assert_eq!(promoted, ["promote:10", "promote:50", "promote:100"]);
    let report = std::fs::read_to_string(local_runs(&runs)[0].join("report.md")).unwrap();
    assert!(report.contains("measured by prometheus"), "{report}");

    // The same canary with V2 2.5 s slower: Prometheus' p95 of the canary breaches 2000 ms.
    let slow = run(&book, &runs, &["--inject", "v2-latency=2500ms"]);
    let stderr = String::from_utf8_lossy(&slow.stderr);
    assert_eq!(slow.status.code(), Some(3), "rolled back: {stderr}");
    let run_dir = local_runs(&runs).pop().unwrap();
    let records = journal(&run_dir);
    let rollback = records
        .iter()
        .find(|r| r["event"] == "decision" && r["action"] == "rollback")
        .expect("the policy decided to roll back");
    let summary = rollback["summary"].as_str().unwrap();
    assert!(summary.contains("latency-p95"), "{summary}");
    // Read as the host reads it: a percentile equal to the one above is left out.
    let last: launch_engine::record::WindowRecord =
        serde_json::from_value((*windows(&records).last().unwrap()).clone()).unwrap();
    let p95: f64 = last
        .endpoints
        .iter()
        .filter(|e| e.served == Some(launch_targets::probe::Served::Canary))
        .map(|e| e.p95_ms)
        .fold(0.0, f64::max);
    assert!(
        p95 > 2500.0,
        "the canary's p95 as Prometheus measured it: {p95}"
    );
    let flags: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("env/staging/flags.json")).unwrap())
            .unwrap();
    assert_eq!(flags["STATUS_BOARD_V2_ENABLED"], 0, "{flags}");
}

#[test]
fn an_unreachable_prometheus_or_a_query_that_answers_nothing_refuses_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");

    // Nothing listens there.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let book = runbook(dir.path(), free_port(), &nowhere, "");
    let out = run(&book, &runs, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("prometheus at {nowhere}: unreachable")),
        "{stderr}"
    );
    assert!(stderr.contains("stage `canary`"), "{stderr}");
    assert!(local_runs(&runs).is_empty(), "nothing was run");

    // A real Prometheus, asked about a metric the target does not export.
    let port = free_port();
    let prometheus = PrometheusServer::start(&[format!("127.0.0.1:{port}")]);
    let typo = r#"queries = { requests = 'sum(increase(http_requests_totl{route="{endpoint}"}[{window}]))' }"#;
    let book = runbook(dir.path(), port, &prometheus.url, typo);
    support::rewrite(
        &book,
        &[("ready-within = \"20s\"", "ready-within = \"3s\"")],
    );
    let out = run(&book, &runs, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("prometheus at {}", prometheus.url)),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"query: sum(increase(http_requests_totl{route="/api/admin/appointments/board"}[2000ms]))"#),
        "the query, as sent: {stderr}"
    );
    assert!(
        stderr.contains("the requests query of endpoint `board` matched no series for the baseline (`v1`) within 3s"),
        "{stderr}"
    );
    assert!(local_runs(&runs).is_empty(), "nothing was run");
}

#[test]
fn with_both_sources_each_window_is_measured_by_the_probe_and_prometheus() {
    let port = free_port();
    let prometheus = PrometheusServer::start(&[format!("127.0.0.1:{port}")]);
    let dir = tempfile::tempdir().unwrap();
    let both = r#"["probe", "prometheus"]"#;
    let book = runbook_with(dir.path(), port, &prometheus.url, both, "");
    let runs = dir.path().join("runs");
    let out = run(&book, &runs, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = journal(&local_runs(&runs)[0]);
    let ws = windows(&records);
    assert!(!ws.is_empty());
    for w in &ws {
        assert_eq!(
            w["sources"],
            serde_json::json!(["probe", "prometheus"]),
            "{w}"
        );
    }
    // The probe's raw latencies ride along for statistical policies.
    let raw = ws
        .iter()
        .flat_map(|w| w["endpoints"].as_array().unwrap())
        .any(|e| e.get("latencies").is_some());
    assert!(raw, "the probe's raw latencies are kept");
    let report = std::fs::read_to_string(local_runs(&runs)[0].join("report.md")).unwrap();
    assert!(report.contains("measured by probe+prometheus"), "{report}");
}

fn decisions(records: &[serde_json::Value]) -> Vec<(u64, String)> {
    records
        .iter()
        .filter(|r| r["event"] == "decision")
        .map(|r| {
            (
                r["percent"].as_u64().unwrap(),
                r["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn flag_of(run: &Path) -> u64 {
    let flags: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("env/staging/flags.json")).unwrap())
            .unwrap();
    flags["STATUS_BOARD_V2_ENABLED"].as_u64().unwrap()
}

#[test]
fn a_latency_query_that_matches_nothing_for_the_canary_is_no_data_never_zero() {
    let port = free_port();
    let prometheus = PrometheusServer::start(&[format!("127.0.0.1:{port}")]);
    let dir = tempfile::tempdir().unwrap();
    // A p95 template that matches the baseline's series and never the canary's (a label
    // slip): on 8fddcc8 the canary's empty answer read as 0 ms and a 2.5 s canary promoted
    // to 100 %.
    let p95 = r#"queries = { p95-ms = '1000 * histogram_quantile(0.95, sum by (le) (rate(http_server_request_duration_seconds_bucket{http_route="{endpoint}",version="{version}",version!="v2"}[{window}])))' }
"#;
    let book = runbook(dir.path(), port, &prometheus.url, p95);
    support::rewrite(
        &book,
        &[(
            "on-fail = \"rollback\"\n",
            "on-fail = \"rollback\"\nno-data-limit = \"4s\"\n",
        )],
    );
    let runs = dir.path().join("runs");
    let out = run(&book, &runs, &["--inject", "v2-latency=2500ms"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "rolled back, never promoted: {stderr}"
    );
    let run_dir = local_runs(&runs).pop().unwrap();
    let records = journal(&run_dir);
    let promoted: Vec<_> = records
        .iter()
        .filter(|r| r["event"] == "effect-done")
        .filter_map(|r| r["key"].as_str())
        .filter(|k| k.starts_with("promote:"))
        .collect();
    assert_eq!(
        promoted,
        ["promote:10"],
        "no promotion on a missing measure"
    );
    // The journal says the measure is missing — null, not 0 — beside the numbers it has.
    let canary: Vec<&serde_json::Value> = windows(&records)
        .iter()
        .flat_map(|w| w["endpoints"].as_array().unwrap())
        .filter(|e| e["served"] == "canary")
        .collect();
    assert!(!canary.is_empty());
    for e in &canary {
        assert_eq!(e["missing"], serde_json::json!(["p95-ms"]), "{e}");
        assert!(e["p95"].is_null(), "{e}");
        assert!(e["avg"].as_f64().unwrap() > 2000.0, "{e}");
    }
    // The policy was never asked about those windows: the host held for no data.
    let ds = decisions(&records);
    assert!(
        ds.iter().filter(|(_, a)| a == "no-data").count() >= 2,
        "{ds:?}"
    );
    let finished = records
        .iter()
        .find(|r| r["event"] == "stage-finished" && r["stage"] == "canary")
        .unwrap();
    let reason = finished["verdict"]["reason"].as_str().unwrap();
    assert_eq!(finished["verdict"]["kind"], "no-data", "{finished}");
    assert!(
        reason.contains("no data for") && reason.contains("p95-ms of the canary on `board`"),
        "{reason}"
    );
    assert!(
        stderr.contains("canary holding at 10%"),
        "the operator heard: {stderr}"
    );
    assert_eq!(flag_of(&run_dir), 0);
}

#[test]
fn preflight_names_the_template_that_matches_nothing() {
    let port = free_port();
    let prometheus = PrometheusServer::start(&[format!("127.0.0.1:{port}")]);
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    // A label name slip in the errors query: on 8fddcc8 it read as 0 errors and a canary
    // failing 20 % promoted.
    let errors = r#"queries = { errors = 'sum(increase(http_server_request_duration_seconds_count{http_route="{endpoint}",version="{version}",status=~"5.."}[{window}]))' }
ready-within = "8s"
"#;
    let book = runbook(dir.path(), port, &prometheus.url, errors);
    support::rewrite(&book, &[("ready-within = \"20s\"\n", "")]);
    let out = run(&book, &runs, &["--inject", "v2-errors=20%"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the errors query of endpoint `board` matched no series for the baseline"),
        "{stderr}"
    );
    assert!(
        stderr.contains("or 0 * sum(increase("),
        "how to prove a zero: {stderr}"
    );
    assert!(local_runs(&runs).is_empty(), "nothing was run");

    let p95 = r#"queries = { p95-ms = '1000 * histogram_quantile(0.95, sum by (le) (rate(http_server_duration_bucket{http_route="{endpoint}"}[{window}])))' }
ready-within = "8s"
"#;
    let book = runbook(dir.path(), port, &prometheus.url, p95);
    support::rewrite(&book, &[("ready-within = \"20s\"\n", "")]);
    let out = run(&book, &runs, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the p95-ms query of endpoint `board`"),
        "{stderr}"
    );
    assert!(local_runs(&runs).is_empty(), "nothing was run");
}

#[test]
fn a_prometheus_that_hangs_is_no_data_within_one_interval_then_a_rollback() {
    let port = free_port();
    let prometheus = PrometheusServer::start(&[format!("127.0.0.1:{port}")]);
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path(), port, &prometheus.url, "");
    support::rewrite(
        &book,
        &[
            ("step-duration-ms = 2000", "step-duration-ms = 60000"),
            (
                "on-fail = \"rollback\"\n",
                "on-fail = \"rollback\"\nno-data-limit = \"5s\"\n",
            ),
        ],
    );
    let runs = dir.path().join("runs");
    let child = launch_host_with(&[])
        .args(["run", "--yes", "--plugins"])
        .arg(repo().join("plugins"))
        .arg("--runbook")
        .arg(&book)
        .arg("--runs-dir")
        .arg(&runs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for a healthy hold at 10 %, then freeze the server: it accepts, never answers.
    let started = std::time::Instant::now();
    let run_dir = loop {
        if let Some(r) = local_runs(&runs).pop()
            && decisions(&journal(&r))
                .iter()
                .any(|(p, a)| *p == 10 && a == "hold")
        {
            break r;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no hold at 10%"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let frozen_ms = prometheus.pause();
    let out = child.wait_with_output().unwrap();
    prometheus.resume();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let records = journal(&run_dir);
    let first_blind = records
        .iter()
        .find(|r| {
            r["event"] == "decision"
                && r["action"] == "no-data"
                && r["at"].as_u64().unwrap() >= frozen_ms
        })
        .expect("a no-data window after the freeze");
    let late = first_blind["at"].as_u64().unwrap() - frozen_ms;
    println!("frozen Prometheus → first no-data window after {late} ms");
    assert!(
        late <= 2_500,
        "no data within about one interval (1 s), not 10 s: {late} ms"
    );
    assert!(
        first_blind["summary"]
            .as_str()
            .unwrap()
            .contains("no answer within 1s"),
        "{first_blind}"
    );
    let rolled = records
        .iter()
        .find(|r| {
            r["event"] == "effect-done"
                && r["key"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("rollback:"))
        })
        .expect("rolled back");
    let after = rolled["at"].as_u64().unwrap() - frozen_ms;
    println!("frozen Prometheus → flag at 0 after {after} ms (no-data-limit 5 s)");
    assert!(
        (4_000..=9_000).contains(&after),
        "rolled back at the no-data limit (5 s), not at the stage's duration: {after} ms"
    );
    assert_eq!(flag_of(&run_dir), 0);
}

#[test]
fn a_canary_without_enough_traffic_says_why_it_holds_and_rolls_back_at_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("launch.toml");
    // 200 probe requests a second, 100 ms checks, 10 % to the canary: 2 canary requests per
    // check where the policy needs 10. On 8fddcc8 it held silently for the stage's duration.
    std::fs::write(
        &book,
        r#"[launch]
name = "starved"
flag = "STATUS_BOARD_V2_ENABLED"

[environments.staging]
target = "embedded"

[defaults]
probe-rate = 200

[[stage]]
name = "canary"
plugin = "canary-steps"
environment = "staging"
interval = "100ms"
duration = "10m"
no-data-limit = "2s"
on-fail = "rollback"
config = { steps = [10, 30, 50, 100], step-duration-ms = 1000, min-requests = 10 }
"#,
    )
    .unwrap();
    let (code, said) = launch_host_output(
        &[],
        &[
            "validate",
            "--plugins",
            repo().join("plugins").to_str().unwrap(),
            "--runbook",
            book.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "a warning, not a refusal: {said}");
    assert!(
        said.contains("warning:")
            && said.contains("at 10% with a 100ms interval and 200 requests/s, the canary gets about 2 request(s) per interval")
            && said.contains("10 needed"),
        "{said}"
    );
    let runs = dir.path().join("runs");
    let started = std::time::Instant::now();
    let out = run(&book, &runs, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(
        stderr.contains("canary holding at 10%")
            && stderr.contains("10 needed")
            && stderr.contains("no data for"),
        "the console says why it holds: {stderr}"
    );
    assert!(stderr.contains("no-data-limit 2s"), "{stderr}");
    let run_dir = local_runs(&runs).pop().unwrap();
    assert_eq!(flag_of(&run_dir), 0);
}
