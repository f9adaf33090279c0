//! The policy lab through the real binary: every stock plugin's fixtures pass offline; a
//! fixture that expects something else fails with an expected-vs-got diff and a JUnit failure;
//! a malformed fixture is a usage error naming its file and line; the JavaScript stock plugin
//! does real work on a run, through the stage's allow-list.

mod support;

use std::path::Path;
use std::process::Output;

use support::*;

const STOCK: [&str; 9] = [
    "api-latency",
    "canary-ratio",
    "canary-steps",
    "error-budget",
    "health-check",
    "slo-thresholds",
    "statusboard-smoke",
    "uat-signoff",
    "site-assets",
];

fn plugin_test(args: &[&str]) -> Output {
    launch_host_with(&[])
        .args(["plugin", "test"])
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn every_stock_plugin_passes_its_fixtures() {
    for name in STOCK {
        stock_plugin(name);
    }
    let plugins = repo().join("plugins");
    let junit = tempfile::NamedTempFile::new().unwrap();
    let out = plugin_test(&[
        plugins.to_str().unwrap(),
        "--fixtures",
        plugins.to_str().unwrap(),
        "--junit",
        junit.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    for name in STOCK {
        let mine = results.iter().filter(|r| r["plugin"] == name).count();
        assert!(mine >= 1, "`{name}` ships no fixture");
    }
    let canary = results
        .iter()
        .filter(|r| r["plugin"] == "canary-steps")
        .count();
    assert!(
        canary >= 8,
        "the canary policy's rules are each pinned: {canary}"
    );
    let xml = std::fs::read_to_string(junit.path()).unwrap();
    assert!(
        xml.contains(&format!("tests=\"{}\" failures=\"0\"", results.len())),
        "{xml}"
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    let fixtures = dir.join("fixtures");
    std::fs::create_dir_all(&fixtures).unwrap();
    std::fs::write(fixtures.join(name), text).unwrap();
}

#[test]
fn a_fixture_expecting_something_else_fails_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "wrong.toml",
        "description = \"expects a promotion the policy will not give\"\n[canary]\npercent = 10\n[[canary.history]]\ncanary = [{ requests = 200, errors = 50, p95-ms = 100 }]\n[expect]\naction = \"promote 30\"\nchecks = { error-rate = \"pass\" }\n",
    );
    write(
        dir.path(),
        "right.json",
        r#"{"canary": {"percent": 0}, "expect": {"action": "promote"}}"#,
    );
    let junit = dir.path().join("junit.xml");
    let out = plugin_test(&[
        stock_plugin("canary-steps").to_str().unwrap(),
        "--fixtures",
        dir.path().to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("PASS  canary-steps"), "{stdout}");
    assert!(
        stdout.contains("action: expected `promote 30`, got `rollback`")
            && stdout.contains("check `error-rate`: expected `pass`, got `fail`"),
        "{stdout}"
    );
    assert!(stdout.contains("FAILED: 1 of 2 fixture(s)"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<failure message=\"action: expected promote 30, got rollback\""),
        "{xml}"
    );
}

#[test]
fn a_malformed_fixture_is_a_usage_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "typo.toml",
        "[canary]\npercent = 10\n[expect]\nacton = \"hold\"\n",
    );
    let out = plugin_test(&[
        stock_plugin("canary-steps").to_str().unwrap(),
        "--fixtures",
        dir.path().to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("typo.toml:4:") && err.contains("acton"),
        "{err}"
    );
}

/// A run of a runbook that deploys the embedded site to staging and then runs `stages` (TOML)
/// with only the stock plugin `plugin`: the plugins folder, the run folder and what the run
/// printed.
fn run_after_deploy(
    dir: &Path,
    plugin: &str,
    stages: &str,
) -> (std::path::PathBuf, std::path::PathBuf, Output) {
    let plugins = dir.join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(stock_plugin(plugin), plugins.join(format!("{plugin}.wasm"))).unwrap();
    let book = dir.join("launch.toml");
    std::fs::write(
        &book,
        format!(
            "[launch]\nname = \"x\"\nflag = \"F\"\n[environments.staging]\ntarget = \"embedded\"\n\
             [[stage]]\nname = \"deploy\"\naction = \"deploy\"\nenvironment = \"staging\"\nsite = \"statusboard-v2\"\n{stages}"
        ),
    )
    .unwrap();
    let runs = dir.join("runs");
    let out = launch_host_with(&[])
        .args(["run", "--yes", "--plugins", plugins.to_str().unwrap()])
        .args(["--runbook", book.to_str().unwrap()])
        .args(["--runs-dir", runs.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = local_runs(&runs).pop().unwrap();
    (plugins, run, out)
}

#[test]
fn the_javascript_step_measures_the_target_through_the_stage_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let (_, run, out) = run_after_deploy(
        dir.path(),
        "api-latency",
        "[[stage]]\nname = \"api\"\nplugin = \"api-latency\"\nenvironment = \"staging\"\nconfig = { samples = 3 }\n\
         [[stage]]\nname = \"elsewhere\"\nplugin = \"api-latency\"\nenvironment = \"staging\"\non-fail = \"continue\"\n\
         config = { samples = 1, paths = [\"http://example.com/api/health\"] }\n",
    );
    // The run went on past the refused stage, and its summary does not call that a pass.
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("2 of 3 stages passed; went on past `elsewhere` NO DATA"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    let api = &report["stages"][1];
    assert_eq!(api["verdict"]["kind"], "pass", "{api:#}");
    // Real numbers from the embedded target: six GETs' statuses and p95s.
    let checks = api["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 4, "{checks:#?}");
    let p95 = checks
        .iter()
        .find(|c| c["name"] == "/api/health p95")
        .unwrap();
    assert!(p95["observed"].as_f64().unwrap() > 0.0);
    // The host refused the host that is not the stage's: no data, and the reason says so.
    let elsewhere = &report["stages"][2];
    assert_eq!(elsewhere["verdict"]["kind"], "no-data", "{elsewhere:#}");
    let reason = elsewhere["verdict"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("denied") && reason.contains("example.com"),
        "{reason}"
    );
}

/// The JavaScript smoke suite uses the web's `fetch()`, which reaches the embedded site through
/// `wasi:http` under the stage's grants; every exchange is recorded, and the replay answers the
/// same calls from the recording.
#[test]
fn the_javascript_fetch_smoke_suite_checks_the_live_site_and_replays_from_its_recording() {
    let dir = tempfile::tempdir().unwrap();
    let (plugins, run, _) = run_after_deploy(
        dir.path(),
        "site-assets",
        "[[stage]]\nname = \"site\"\nplugin = \"site-assets\"\nenvironment = \"staging\"\n",
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    let site = &report["stages"][1];
    assert_eq!(site["verdict"]["kind"], "pass", "{site:#}");
    // The page and the script and stylesheet the deploy published, each fetched for real.
    let checks = site["checks"].as_array().unwrap();
    assert!(checks.len() >= 3, "{checks:#?}");
    assert!(
        checks
            .iter()
            .any(|c| c["name"].as_str().unwrap().ends_with(".css"))
    );
    assert!(
        checks
            .iter()
            .any(|c| c["name"].as_str().unwrap().ends_with(".js"))
    );

    // The call recorded its wasi:http exchanges, bodies and all.
    let (_, input) = recorded_inputs(&run)
        .into_iter()
        .find(|(_, i)| i["plugin"] == "site-assets")
        .expect("the recorded call");
    let http = input["http"].as_array().unwrap();
    assert_eq!(http.len(), checks.len(), "{input:#}");
    assert!(
        http[0]["body"].as_str().unwrap().contains("<script"),
        "{:#}",
        http[0]
    );

    // Replayed from the recording (the run's site is gone): the same verdict.
    let out = launch_host_with(&[])
        .args([
            "replay",
            run.to_str().unwrap(),
            "--plugins",
            plugins.to_str().unwrap(),
        ])
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = rows
        .iter()
        .find(|r| r["stage"] == "site")
        .expect("the site call");
    assert_eq!(
        (row["same"].as_bool(), row["answer"].as_str()),
        (Some(true), Some("pass")),
        "{row:#}"
    );
}

#[test]
fn a_plugins_first_compile_is_said_once_and_never_again() {
    let cache = tempfile::tempdir().unwrap();
    let plugin = stock_plugin("canary-steps");
    let fixtures = repo().join("plugins");
    let test = || {
        launch_host_with(&[("LAUNCH_HOST_CACHE_DIR", cache.path().display().to_string())])
            .args([
                "plugin",
                "test",
                plugin.to_str().unwrap(),
                "--fixtures",
                fixtures.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    let first = test();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stdout));
    let said = text(&first.stderr);
    assert!(
        said.contains("compiling")
            && said.contains("canary-steps.wasm")
            && said.contains("once: later loads come from the cache"),
        "a cold load is not silent: {said}"
    );
    let second = test();
    assert!(
        !text(&second.stderr).contains("compiling"),
        "{}",
        text(&second.stderr)
    );
}
