//! The stability gate: an SLO gate with a `duration` watches the environment at 100 %, judging
//! every window; `breaches` failing windows in a row roll back. Real binary, real plugins,
//! the embedded target.

mod support;

use std::path::Path;

use support::{launch_host_with, local_runs, repo};

fn runbook(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("launch.toml");
    std::fs::write(
        &path,
        r#"[launch]
name = "stability"
flag = "STATUS_BOARD_V2_ENABLED"

[environments.production]
target = "embedded"

[[stage]]
name = "deploy"
action = "deploy"
environment = "production"
site = "statusboard-v2"

[[stage]]
name = "full-rollout"
action = "flag"
environment = "production"
percent = 100

[[stage]]
name = "stability"
plugin = "slo-thresholds"
environment = "production"
duration = "2s"
interval = "200ms"
breaches = 3
config = { min-requests = 5 }
"#,
    )
    .unwrap();
    path
}

/// Runs the runbook; returns the exit code, the stability stage's SLO answers in order, and
/// the primary flag at the end.
fn run(extra: &[&str]) -> (Option<i32>, Vec<String>, u64, String) {
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path());
    let runs = dir.path().join("runs");
    let out = launch_host_with(&[])
        .args(["run", "--yes", "--plugins"])
        .arg(repo().join("plugins"))
        .arg("--runbook")
        .arg(&book)
        .arg("--runs-dir")
        .arg(&runs)
        .args(extra)
        .output()
        .unwrap();
    let run = local_runs(&runs).pop().expect("a run folder");
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    let answers = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "call" && r["stage"] == "stability")
        .map(|r| r["answer"].as_str().unwrap().to_string())
        .collect();
    let flags: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("env/production/flags.json")).unwrap())
            .unwrap();
    let report = std::fs::read_to_string(run.join("report.md")).unwrap_or_default();
    (
        out.status.code(),
        answers,
        flags["STATUS_BOARD_V2_ENABLED"].as_u64().unwrap(),
        report + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn a_stable_launch_is_judged_on_every_window_and_stays_at_100() {
    let (code, answers, flag, text) = run(&[]);
    assert_eq!(code, Some(0), "{text}");
    // 2 s at 200 ms: about ten windows, each judged as it closed.
    assert!((7..=10).contains(&answers.len()), "{answers:?}");
    assert!(answers.iter().all(|a| a == "pass"), "{answers:?}");
    assert_eq!(flag, 100);
    assert!(
        text.contains("window(s) judged, at most 0 consecutive breach(es) of 3 allowed"),
        "{text}"
    );
}

#[test]
fn three_breaching_windows_in_a_row_roll_back_to_zero() {
    let (code, answers, flag, text) = run(&["--inject", "v2-errors=100%"]);
    assert_eq!(code, Some(3), "rolled back: {text}");
    assert_eq!(
        answers,
        ["fail", "fail", "fail"],
        "judged until the third breach, then stopped"
    );
    assert_eq!(flag, 0, "the flag went back to 0");
    assert!(
        text.contains("3 consecutive windows breached the SLOs at 100%; the last: "),
        "{text}"
    );
    // The gate judged one window at a time: its own count is not repeated as the stage's
    // (on 8fddcc8: "3 consecutive … (1 consecutive breached window(s))").
    assert!(
        !text
            .lines()
            .any(|l| l.contains("3 consecutive windows") && l.contains("(1 consecutive")),
        "{text}"
    );
    assert!(
        text.contains("(limit 1 %)"),
        "the numbers behind it: {text}"
    );
}
