//! Replay through the real binary: a healthy embedded run replays with every decision
//! reproduced; the run whose canary rolled back on 2500 ms replays, with the policy allowed
//! 3000 ms, diverging exactly at the recorded rollback; a run killed with SIGKILL replays what
//! it recorded; recorded calls become fixtures that `plugin test` passes.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn plugins() -> String {
    for name in [
        "canary-steps",
        "slo-thresholds",
        "statusboard-smoke",
        "uat-signoff",
    ] {
        stock_plugin(name);
    }
    repo().join("plugins").display().to_string()
}

fn host(args: &[&str]) -> Output {
    launch_host_with(&[]).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The embedded playbook, run into `runs`.
fn playbook(runs: &Path) -> Command {
    let mut c = launch_host_with(&[]);
    c.args(["run", "--plugins", &plugins(), "--yes", "--runs-dir"])
        .arg(runs);
    c
}

/// Runs the embedded playbook into `runs`; returns the run folder.
fn run(runs: &Path, extra: &[&str]) -> PathBuf {
    playbook(runs).args(extra).output().unwrap();
    local_runs(runs).pop().expect("a run folder")
}

fn replay(run: &Path, extra: &[&str]) -> (Output, Vec<serde_json::Value>) {
    let plugins = plugins();
    let mut args = vec![
        "replay",
        run.to_str().unwrap(),
        "--plugins",
        &plugins,
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = host(&args);
    let rows = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out, rows)
}

#[test]
fn a_healthy_run_replays_with_every_decision_reproduced() {
    let dir = tempfile::tempdir().unwrap();
    let run = run(&dir.path().join("runs"), &[]);
    let (out, rows) = replay(&run, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let replayed: Vec<_> = rows.iter().filter(|r| r["skipped"].is_null()).collect();
    assert!(replayed.len() >= 20, "{rows:#?}");
    for r in &replayed {
        assert_eq!(r["same"], true, "{r:#}");
        assert_eq!(r["answer"], r["recorded"]);
    }
    // Both canaries and both kinds of gate were recorded and replayed.
    for stage in [
        "staging-canary",
        "production-rollout",
        "production-validation",
        "uat",
    ] {
        assert!(replayed.iter().any(|r| r["stage"] == stage), "{stage}");
    }
    // Smoke suites too: their HTTP is answered from the recording (the run's simulator is
    // gone by now, so nothing else could answer it).
    assert!(rows.iter().all(|r| r["skipped"].is_null()), "{rows:#?}");
    assert!(replayed.iter().any(|r| r["stage"] == "final-validation"));

    // What the calls saw: the smoke suite's exchanges, the SLO gate's raw latencies.
    let inputs: Vec<serde_json::Value> =
        recorded_inputs(&run).into_iter().map(|(_, i)| i).collect();
    // A canary decision's inputs are small: they stay in its journal record.
    assert!(
        recorded_inputs(&run)
            .iter()
            .any(|(file, i)| file.is_none() && i["canary"].is_object())
    );
    let smoke = inputs
        .iter()
        .find(|i| i["plugin"] == "statusboard-smoke")
        .expect("a recorded smoke call");
    let exchanges = smoke["http"].as_array().unwrap();
    assert!(exchanges.len() >= 10, "{smoke:#}");
    assert!(
        exchanges.iter().any(|x| x["method"] == "PATCH"),
        "the OCC check's move"
    );
    for x in exchanges {
        assert!(x["method"] == "GET" || x["method"] == "PATCH", "{x:#}");
        assert!(
            x["url"].as_str().unwrap().starts_with("http://127.0.0.1:"),
            "{x:#}"
        );
        assert!(x["status"].as_u64().is_some() && x["elapsed-ms"].as_f64().unwrap() > 0.0);
    }
    let gate = inputs
        .iter()
        .find(|i| i["plugin"] == "slo-thresholds")
        .expect("a recorded SLO gate call");
    let endpoint = &gate["slo"]["windows"][0]["endpoints"][0];
    let raw = endpoint["latencies-ms"].as_array().unwrap();
    assert!(!raw.is_empty() && raw.len() <= 1000, "{endpoint:#}");
    let max = raw.iter().map(|v| v.as_f64().unwrap()).fold(0.0, f64::max);
    assert!(
        (max - endpoint["max-ms"].as_f64().unwrap()).abs() < 1.0,
        "{endpoint:#}"
    );
}

#[test]
fn a_smoke_call_replays_from_its_recorded_exchanges_and_a_changed_answer_diverges() {
    let dir = tempfile::tempdir().unwrap();
    let run = run(&dir.path().join("runs"), &[]);
    // Turn every recorded /api/health answer of the final validation into a 503.
    let mut changed = 0;
    for (file, mut input) in recorded_inputs(&run) {
        if input["plugin"] != "statusboard-smoke" {
            continue;
        }
        // With its HTTP bodies, a smoke suite's inputs are a file of their own.
        let path = file.expect("a smoke call's inputs in calls/");
        for x in input["http"].as_array_mut().unwrap() {
            if x["url"].as_str().unwrap().ends_with("/api/health") {
                x["status"] = 503.into();
                changed += 1;
            }
        }
        std::fs::write(&path, serde_json::to_vec(&input).unwrap()).unwrap();
    }
    assert!(changed >= 1);
    let (out, rows) = replay(&run, &["--stage", "final-validation"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["recorded"], "pass");
    assert_eq!(rows[0]["answer"], "fail", "{:#}", rows[0]);
    assert!(
        rows[0]["reason"].as_str().unwrap().contains("503"),
        "{:#}",
        rows[0]
    );
}

#[test]
fn a_rolled_back_canary_replayed_with_a_looser_limit_diverges_at_the_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let run = run(&dir.path().join("runs"), &["--inject", "v2-latency=2500ms"]);
    // As recorded: the same decisions, the rollback included.
    let (same, rows) = replay(&run, &["--stage", "staging-canary"]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stderr));
    assert_eq!(rows.last().unwrap()["recorded"], "rollback");
    // Allowed 3000 ms, the policy would not have rolled back: the first and only difference is
    // the recorded rollback.
    let (out, rows) = replay(
        &run,
        &[
            "--stage",
            "staging-canary",
            "--config",
            r#"{"max-latency-ms": 3000}"#,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let first = rows.iter().position(|r| r["same"] == false).unwrap();
    assert_eq!(first, rows.len() - 1, "{rows:#?}");
    assert_eq!(rows[first]["recorded"], "rollback");
    assert!(
        rows[first]["recorded_reason"]
            .as_str()
            .unwrap()
            .contains("latency-p95")
    );
    assert_ne!(rows[first]["answer"], "rollback");

    // The incident becomes a regression test.
    let saved = dir.path().join("incident");
    let (out, _) = replay(
        &run,
        &[
            "--stage",
            "staging-canary",
            "--save-fixtures",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let canary = repo().join("plugins/canary-steps.wasm");
    let tested = host(&[
        "plugin",
        "test",
        canary.to_str().unwrap(),
        "--fixtures",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(tested.status.code(), Some(0), "{}", text(&tested.stdout));
    assert!(text(&tested.stdout).contains(&format!("ok: {} fixture(s) passed", rows.len())));
    // The numbers behind each answer are shown, pass or fail.
    assert!(
        text(&tested.stdout).contains("check latency-p95 FAIL")
            && text(&tested.stdout).contains("(threshold 2000 ms)"),
        "{}",
        text(&tested.stdout)
    );

    // The printed hint works for a new policy of the role, not only the recorded one: the
    // fixtures name neither the recorded plugin nor its checks (8fddcc8's did, so another
    // policy found no fixture of its own).
    let ratio = repo().join("plugins/canary-ratio.wasm");
    let tested = host(&[
        "plugin",
        "test",
        ratio.to_str().unwrap(),
        "--fixtures",
        saved.to_str().unwrap(),
    ]);
    let said = text(&tested.stdout) + &text(&tested.stderr);
    assert_ne!(tested.status.code(), Some(2), "not a usage error: {said}");
    assert!(said.matches("canary-ratio").count() >= rows.len(), "{said}");

    // --config is checked against the answering plugin's schema, as a runbook's is.
    let (out, _) = replay(
        &run,
        &[
            "--stage",
            "staging-canary",
            "--config",
            r#"{"max-latency-ms": "fast"}"#,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--config: `canary-steps`'s schema refuses"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_run_killed_mid_canary_replays_what_it_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let mut child = playbook(&runs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let run = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the canary never started"
        );
        if let Some(run) = local_runs(&runs).pop()
            && std::fs::read_to_string(run.join("journal.jsonl"))
                .unwrap_or_default()
                .matches(r#""call":{"#)
                .count()
                >= 6
        {
            break run;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL: no chance to tidy up
    child.wait().unwrap();
    let (out, rows) = replay(&run, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(rows.len() >= 6);
    assert!(rows.iter().all(|r| r["same"] == true), "{rows:#?}");
}

#[test]
fn a_backtest_names_the_launches_a_policy_would_have_stopped_or_let_through() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let passed = run(&runs, &[]);
    let rolled_back = run(&runs, &["--inject", "v2-latency=2500ms"]);
    let id = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_string();
    let policy = repo().join("plugins/canary-steps.wasm");
    let backtest = |extra: &[&str]| {
        let mut args = vec![
            "backtest",
            policy.to_str().unwrap(),
            "--runs-dir",
            runs.to_str().unwrap(),
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = host(&args);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (out, json)
    };
    let finding = |json: &serde_json::Value, run: &Path| {
        json["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["run_id"] == id(run).as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{} not backtested: {json:#}", id(run)))
    };
    // As recorded: it agrees on both launches.
    let (out, json) = backtest(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(finding(&json, &passed)["finding"], "agreed");
    assert_eq!(finding(&json, &rolled_back)["outcome"], "rolled-back");
    assert_eq!(finding(&json, &rolled_back)["finding"], "agreed");
    // Allowed 3 s, it would have let the slow V2 through, at the recorded rollback.
    let (out, json) = backtest(&["--config", r#"{"max-latency-ms": 3000}"#]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let r = finding(&json, &rolled_back);
    assert_eq!(r["finding"], "would-pass", "{r:#}");
    assert_eq!(r["first_divergence"]["recorded"], "rollback");
    assert_eq!(r["first_divergence"]["call"], r["calls"], "{r:#}");
    assert_eq!(finding(&json, &passed)["finding"], "agreed");
    // Allowed 1 ms, it would have rolled back the healthy launch, at its first window.
    let (out, json) = backtest(&["--config", r#"{"max-latency-ms": 1}"#]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let r = finding(&json, &passed);
    assert_eq!(r["finding"], "would-roll-back", "{r:#}");
    assert_eq!(r["first_divergence"]["answer"], "rollback");
    // The table names both kinds, with the runs.
    let out = host(&[
        "backtest",
        policy.to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
        "--config",
        r#"{"max-latency-ms": 3000}"#,
    ]);
    let said = text(&out.stdout);
    assert!(
        said.contains("would have passed a launch that was stopped")
            && said.contains(&id(&rolled_back)),
        "{said}"
    );
    // A config its schema refuses, a role it is not, a day that is not one: refused, exit 2.
    for (extra, why) in [
        (&["--config", r#"{"max-p95": 1}"#][..], "schema refuses"),
        (&["--role", "slo-gate"][..], "not a slo-gate"),
        (&["--since", "yesterday"][..], "YYYY-MM-DD"),
    ] {
        let (out, _) = backtest(extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(text(&out.stderr).contains(why), "{}", text(&out.stderr));
    }
    // Runs before --since are left out.
    let (_, json) = backtest(&["--since", "2999-01-01"]);
    assert_eq!(json["runs"].as_array().unwrap().len(), 0);
}

#[test]
fn a_long_canary_call_names_its_history_in_constant_space_and_replays_whole() {
    // One step held for `windows` windows: each call's history is every window so far.
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("launch.toml");
    std::fs::write(
        &book,
        r#"[launch]
name = "long-hold"
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
config = { steps = [10, 100], step-duration-ms = 4000, min-requests = 1 }
"#,
    )
    .unwrap();
    let runs = dir.path().join("runs");
    let out = launch_host_with(&[])
        .args(["run", "--yes", "--plugins", &plugins(), "--runbook"])
        .arg(&book)
        .arg("--runs-dir")
        .arg(&runs)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = local_runs(&runs).pop().unwrap();
    let lines = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    // Each decision of the canary's policy holds its call.
    let calls: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "decision" && r["call"].is_object())
        .map(|r| r["call"].clone())
        .collect();
    assert!(
        !lines.contains(r#""event":"call""#),
        "a call the decision holds has a record of its own too"
    );
    let held: Vec<u64> = calls
        .iter()
        .filter_map(|c| c["history_len"].as_u64())
        .collect();
    let longest = held.iter().copied().max().unwrap_or(0);
    assert!(longest >= 20, "the step held {longest} windows: {held:?}");
    // The stage's config is held once, by its first call.
    let configs: Vec<usize> = (0..calls.len())
        .filter(|&i| calls[i].get("config").is_some())
        .collect();
    assert_eq!(configs, [0], "the calls holding the config");
    // What names the history is the same size whatever its length.
    let sizes: Vec<usize> = calls
        .iter()
        .filter(|c| c.get("history_from").is_some() && c.get("config").is_none())
        .map(|c| {
            assert!(
                c.get("windows").is_none(),
                "a history listed window by window: {c}"
            );
            c.to_string().len()
        })
        .collect();
    let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(
        max - min <= 16,
        "a call grows with its history: {min} B → {max} B over {longest} windows"
    );
    // Nor does it say what its decision says: the answer, the checks, and the stock
    // policy's reason (its summary reads `<answer>: <reason>`).
    for c in &calls {
        for k in ["answer", "reason", "checks"] {
            assert!(
                c.get(k).is_none(),
                "a canary call repeats its decision's {k}: {c}"
            );
        }
    }
    let (out, rows) = replay(&run, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(rows.len(), calls.len(), "{rows:#?}");
    assert!(rows.iter().all(|r| r["same"] == true), "{rows:#?}");
    // ... and the replay reads them back from the decision: its words, its reason.
    let decisions: Vec<serde_json::Value> = lines
        .lines()
        .filter(|l| l.contains(r#""event":"decision""#))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(decisions.len(), rows.len());
    for (d, r) in decisions.iter().zip(&rows) {
        let (recorded, why) = (
            r["recorded"].as_str().unwrap(),
            r["recorded_reason"].as_str().unwrap(),
        );
        assert_eq!(
            d["action"].as_str().unwrap().trim_end_matches('%'),
            recorded,
            "{r}"
        );
        if recorded == "hold" {
            assert!(!why.is_empty(), "a hold's reason was lost: {r}");
            assert_eq!(d["summary"], format!("hold: {why}"), "{r}");
        }
    }
}
