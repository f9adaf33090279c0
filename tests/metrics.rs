//! Prometheus as a canary's only metrics source, against a real Prometheus (Debian's binary)
//! scraping the embedded target's `/metrics` every second, with the binary under test.

mod support;

use std::path::Path;

use support::{PrometheusServer, free_port, launch_host_with, local_runs, repo};

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
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
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
                .all(|e| e.get("latencies_ms").is_none()),
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
    let p95: f64 = windows(&records).last().unwrap()["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["served"] == "canary")
        .map(|e| e["p95_ms"].as_f64().unwrap())
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
    let text = std::fs::read_to_string(&book)
        .unwrap()
        .replace("ready-within = \"20s\"", "ready-within = \"3s\"");
    std::fs::write(&book, text).unwrap();
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
    assert!(stderr.contains("answered no series within 3s"), "{stderr}");
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
        .any(|e| e.get("latencies_ms").is_some());
    assert!(raw, "the probe's raw latencies are kept");
    let report = std::fs::read_to_string(local_runs(&runs)[0].join("report.md")).unwrap();
    assert!(report.contains("measured by probe+prometheus"), "{report}");
}
