//! Shadow policies through the real binary on the embedded target: a shadow canary policy sees
//! exactly the live policy's inputs and its disagreements reach every report, while the live
//! policy alone acts; a shadow that traps leaves the run's verdicts and exit code unchanged;
//! `validate` refuses a shadow that cannot stand beside its live plugin, at its line.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::*;

/// The stock plugins plus the hostile test plugin, in one folder.
fn plugins(dir: &Path) -> PathBuf {
    let out = dir.join("plugins");
    std::fs::create_dir_all(&out).unwrap();
    for name in [
        "canary-steps",
        "canary-ratio",
        "health-check",
        "slo-thresholds",
    ] {
        std::fs::copy(stock_plugin(name), out.join(format!("{name}.wasm"))).unwrap();
    }
    std::fs::copy(test_plugin("hostile"), out.join("hostile.wasm")).unwrap();
    out
}

fn launch(dir: &Path, book: &str, args: &[&str]) -> Output {
    let path = dir.join("launch.toml");
    std::fs::write(&path, book).unwrap();
    let plugins = plugins(dir);
    launch_host_with(&[])
        .args(args)
        .args(["--plugins", plugins.to_str().unwrap()])
        .args(["--runbook", path.to_str().unwrap()])
        .output()
        .unwrap()
}

fn run(dir: &Path, book: &str, extra: &[&str]) -> (Output, PathBuf) {
    let runs = dir.join("runs");
    let mut args = vec!["run", "--yes", "--runs-dir", runs.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = launch(dir, book, &args);
    let run = local_runs(&runs).pop().expect("a run folder");
    (out, run)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const HEAD: &str = "[launch]\nname = \"x\"\nflag = \"STATUS_BOARD_V2_ENABLED\"\n\n[environments.staging]\ntarget = \"embedded\"\n\n[[stage]]\nname = \"deploy\"\naction = \"deploy\"\nenvironment = \"staging\"\nsite = \"statusboard-v2\"\n";

fn canary(shadow: &str) -> String {
    format!(
        "{HEAD}\n[[stage]]\nname = \"canary\"\nplugin = \"canary-steps\"\nenvironment = \"staging\"\ninterval = \"250ms\"\nduration = \"30s\"\non-fail = \"rollback\"\nconfig = {{ steps = [10, 50, 100], step-duration-ms = 300, min-requests = 5 }}\n{shadow}\n"
    )
}

#[test]
fn a_shadow_canary_policy_disagrees_in_every_report_and_never_acts() {
    let dir = tempfile::tempdir().unwrap();
    // 300 ms more on V2: within the live policy's 2000 ms limit, 100× the baseline for the
    // shadow, which judges the canary against the baseline.
    let (out, run) = run(
        dir.path(),
        &canary("shadow = [\"canary-ratio\"]"),
        &["--inject", "v2-latency=300ms"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    let stage = &report["stages"][1];
    assert_eq!(stage["verdict"]["kind"], "pass", "the live policy decided");
    let decisions = stage["decisions"].as_array().unwrap();
    let shadows = stage["shadows"].as_array().unwrap();
    // Exactly one shadow answer per live decision, on the same inputs (same percentages).
    assert_eq!(shadows.len(), decisions.len());
    for (d, s) in decisions.iter().zip(shadows) {
        assert_eq!(d["percent"], s["percent"]);
        assert_eq!(d["action"], s["live"]);
    }
    let disagreements: Vec<_> = shadows.iter().filter(|s| s["agrees"] == false).collect();
    assert!(!disagreements.is_empty(), "{shadows:#?}");
    for s in &disagreements {
        assert_eq!(s["shadow"], "rollback", "{s:#}");
        assert!(
            s["summary"].as_str().unwrap().contains("latency-ratio"),
            "{s:#}"
        );
    }
    // The flag went where the live policy said: all the way.
    let flags: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("env/staging/flags.json")).unwrap())
            .unwrap();
    assert_eq!(flags["STATUS_BOARD_V2_ENABLED"], 100);
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("live vs shadow") && md.contains("`canary-ratio`: rollback"),
        "{md}"
    );
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("Live vs shadow") && html.contains("latency-ratio"));
    // The operator hears it as it happens, and `status` shows it (8fddcc8: neither).
    let console = text(&out.stderr);
    assert!(
        console.contains("shadow `canary-ratio` at ")
            && console.contains("rollback where the live policy said"),
        "{console}"
    );
    let id = run.file_name().unwrap().to_str().unwrap();
    let runs = run.parent().unwrap();
    let (_, status) =
        launch_host_output(&[], &["status", id, "--runs-dir", runs.to_str().unwrap()]);
    assert!(
        status.contains(&format!(
            "shadow `canary-ratio` on `canary`: agreed {} of {}",
            shadows.len() - disagreements.len(),
            shadows.len()
        )),
        "{status}"
    );
}

/// A step stage on the embedded target, with `shadow` lines.
fn step(shadow: &str) -> String {
    format!(
        "{HEAD}\n[[stage]]\nname = \"check\"\nplugin = \"health-check\"\nenvironment = \"staging\"\n{shadow}\n[[stage]]\nname = \"after\"\naction = \"wait\"\nduration = \"10ms\"\n"
    )
}

#[test]
fn a_trapping_shadow_leaves_the_run_unchanged() {
    let plain_dir = tempfile::tempdir().unwrap();
    let (plain, plain_run) = run(plain_dir.path(), &step(""), &[]);
    let dir = tempfile::tempdir().unwrap();
    let (out, run) = run(
        dir.path(),
        &step("shadow = [{ plugin = \"hostile\", config = { attack = \"panic\" } }]"),
        &[],
    );
    assert_eq!(
        out.status.code(),
        plain.status.code(),
        "{}",
        text(&out.stderr)
    );
    let verdicts = |run: &Path| -> Vec<serde_json::Value> {
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
        r["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["verdict"].clone())
            .collect()
    };
    assert_eq!(verdicts(&run), verdicts(&plain_run));
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    let shadow: serde_json::Value = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["event"] == "shadow")
        .expect("the shadow's failure is journaled");
    assert_eq!(shadow["plugin"], "hostile");
    assert_eq!(shadow["shadow"], "failed");
    assert!(
        shadow["failed"]
            .as_str()
            .unwrap()
            .contains("panicked on purpose"),
        "{shadow:#}"
    );
}

#[test]
fn validate_refuses_a_shadow_that_cannot_stand_beside_its_live_plugin() {
    let rows = [
        // (shadow line, what the error says)
        (
            "shadow = [\"slo-thresholds\"]",
            "shadow `slo-thresholds` is a slo-gate",
        ),
        (
            "shadow = [\"canary-steps\"]",
            "is the live plugin or named twice",
        ),
        (
            "shadow = [\"canary-ratio\", \"canary-ratio\"]",
            "is the live plugin or named twice",
        ),
        (
            "shadow = [\"no-such-policy\"]",
            "no plugin named `no-such-policy`",
        ),
        (
            "shadow = [{ plugin = \"canary-ratio\", config = { max-latency-ratio = 0.5 } }]",
            "config rejected by `canary-ratio`'s schema",
        ),
    ];
    for (line, message) in rows {
        let dir = tempfile::tempdir().unwrap();
        let book = canary(line);
        let at = book.lines().position(|l| l == line).unwrap() + 1;
        let out = launch(dir.path(), &book, &["validate"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "`{line}`: {err}");
        assert!(
            err.contains(&format!("launch.toml:{at}:")) && err.contains(message),
            "`{line}` should fail at line {at} with `{message}`: {err}"
        );
    }
}
