//! The whole playbook through the real binary against the embedded StatusBoardV2 targets:
//! a healthy launch, canaries that roll back, a target that is down, a host killed mid-canary
//! and resumed, a malformed runbook and a plugin that traps.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn launch_host() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_launch-host"));
    c.env("LAUNCH_HOST_CACHE_DIR", cache_dir())
        .env_remove("AUTO_CONFIRM")
        .stdin(Stdio::null());
    c
}

fn plugins() -> String {
    stock_plugin("canary-steps");
    repo().join("plugins").display().to_string()
}

fn run(runs: &Path, extra: &[&str]) -> Output {
    let plugins = plugins();
    let mut args = vec![
        "run",
        "--plugins",
        &plugins,
        "--yes",
        "--runs-dir",
        runs.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    launch_host().args(&args).output().expect("binary runs")
}

/// Runs `runbook` (written into `dir`) with the stock plugins; returns the output and the
/// runs folder.
fn run_book(dir: &Path, runbook: &str) -> (Output, PathBuf) {
    run_book_with(dir, &plugins(), runbook)
}

/// The same with the plugins of `plugins`.
fn run_book_with(dir: &Path, plugins: &str, runbook: &str) -> (Output, PathBuf) {
    let book = dir.join("launch.toml");
    std::fs::write(&book, runbook).unwrap();
    let runs = dir.join("runs");
    let out = launch_host()
        .args([
            "run",
            "--plugins",
            plugins,
            "--yes",
            "--runs-dir",
            runs.to_str().unwrap(),
            "--runbook",
            book.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    (out, runs)
}

fn only_run(runs: &Path) -> PathBuf {
    // Run folders only: `.locks` sits beside them.
    let dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn journal(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid journal line {l}: {e}"))
        })
        .collect()
}

fn report(run: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap()
}

fn flag(run: &Path, env: &str) -> u64 {
    let flags: serde_json::Value = serde_json::from_slice(
        &std::fs::read(run.join("env").join(env).join("flags.json")).unwrap(),
    )
    .unwrap();
    flags["STATUS_BOARD_V2_ENABLED"].as_u64().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn healthy_launch_passes_all_fourteen_stages_and_reports_agree() {
    let runs = tempfile::tempdir().unwrap();
    let out = run(runs.path(), &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let run = only_run(runs.path());

    let r = report(&run);
    assert_eq!(r["outcome"], "passed");
    let stages = r["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 14);
    for s in stages {
        assert_eq!(s["verdict"]["kind"], "pass", "{s:#}");
    }
    assert_eq!(flag(&run, "production"), 100, "the rollout reached 100 %");
    // The production canary went through the guide's steps, in order.
    let rollout = stages
        .iter()
        .find(|s| s["name"] == "production-rollout")
        .unwrap();
    let promoted: Vec<u64> = rollout["effects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            e.as_str()?
                .split("→ ")
                .nth(1)?
                .trim_end_matches('%')
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(promoted, vec![5, 15, 25, 50, 75, 100]);

    let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    let checks: usize = stages
        .iter()
        .map(|s| s["checks"].as_array().unwrap().len().max(1))
        .sum();
    assert!(
        junit.contains(&format!("tests=\"{checks}\" failures=\"0\"")),
        "junit disagrees with report.json ({checks} checks):\n{}",
        &junit[..300.min(junit.len())]
    );
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("— PASSED") && md.matches("**PASS**").count() == 14,
        "{md}"
    );
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        html.contains(r["run_id"].as_str().unwrap()) && html.contains("<svg"),
        "the HTML has the canary chart"
    );
    // The deployed site is the new release, with the V2 markers.
    let prod_current = std::fs::read_to_string(run.join("env/production/store/current")).unwrap();
    assert!(
        prod_current.ends_with("-production-deploy"),
        "{prod_current}"
    );
}

#[test]
fn slow_v2_rolls_the_canary_back_and_says_which_rule_fired() {
    let runs = tempfile::tempdir().unwrap();
    let out = run(runs.path(), &["--inject", "v2-latency=2500ms"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "rolled back is exit 3: {}",
        text(&out.stderr)
    );
    let run = only_run(runs.path());
    assert_eq!(flag(&run, "staging"), 0, "the flag is back at 0");
    let r = report(&run);
    assert_eq!(r["outcome"], "rolled-back");
    let canary = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "staging-canary")
        .unwrap();
    let reason = canary["verdict"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("latency-p95") && reason.contains("exceeds 2000 ms"),
        "{reason}"
    );
    let latency = canary["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "latency-p95")
        .unwrap();
    assert!(latency["observed"].as_f64().unwrap() >= 2500.0, "{latency}");
    assert_eq!(latency["threshold"], 2000.0);
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("ROLLED-BACK") && md.contains("latency-p95"),
        "{md}"
    );
    // Nothing after the canary ran: production was never touched.
    assert_eq!(flag(&run, "production"), 0);
    assert!(
        !r["stages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "production-deploy")
    );
}

#[test]
fn failing_v2_rolls_back_on_error_rate() {
    let runs = tempfile::tempdir().unwrap();
    let out = run(runs.path(), &["--inject", "v2-errors=20%"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let run = only_run(runs.path());
    assert_eq!(flag(&run, "staging"), 0);
    let r = report(&run);
    let canary = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "staging-canary")
        .unwrap();
    let err = canary["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "error-rate")
        .unwrap();
    assert_eq!(err["verdict"]["kind"], "fail");
    let observed = err["observed"].as_f64().unwrap();
    assert!(
        (10.0..=30.0).contains(&observed),
        "20 % of V2 answers fail, observed {err}"
    );
    assert_eq!(err["threshold"], 1.0);
}

#[test]
fn a_target_that_is_down_never_passes() {
    let runs = tempfile::tempdir().unwrap();
    let out = run(runs.path(), &["--inject", "down"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed gate is exit 1: {}",
        text(&out.stderr)
    );
    let r = report(&only_run(runs.path()));
    assert_eq!(r["outcome"], "gate-failed");
    let first = &r["stages"][0];
    assert_eq!(first["name"], "preflight");
    assert_ne!(first["verdict"]["kind"], "pass");
    assert_eq!(
        r["stages"].as_array().unwrap().len(),
        1,
        "nothing ran after the failed gate"
    );
}

#[test]
fn killed_mid_canary_then_resumed_completes_without_repeating_effects() {
    let runs = tempfile::tempdir().unwrap();
    let mut child = launch_host()
        .args([
            "run",
            "--plugins",
            &plugins(),
            "--yes",
            "--runs-dir",
            runs.path().to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let started = Instant::now();
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains("canary 15% → 25%") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the production canary never started"
        );
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let run = only_run(runs.path());
    assert!(!journal(&run).iter().any(|r| r["event"] == "run-finished"));
    assert!(flag(&run, "production") >= 25);

    let id = run.file_name().unwrap().to_str().unwrap().to_string();
    let out = launch_host()
        .args(["resume", &id, "--runs-dir", runs.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(flag(&run, "production"), 100);

    let records = journal(&run);
    assert_eq!(
        records.iter().filter(|r| r["event"] == "resumed").count(),
        1
    );
    let mut done = std::collections::HashSet::new();
    for r in records.iter().filter(|r| r["event"] == "effect-done") {
        let key = format!("{}/{}", r["stage"], r["key"]);
        assert!(done.insert(key.clone()), "effect {key} was done twice");
    }
    for stage in ["staging-deploy", "production-deploy", "production-rollout"] {
        let started = records
            .iter()
            .filter(|r| r["event"] == "stage-started" && r["stage"] == stage)
            .count();
        let finished = records
            .iter()
            .filter(|r| r["event"] == "stage-finished" && r["stage"] == stage)
            .count();
        assert_eq!((started, finished), (1, 1), "{stage}");
    }
    assert_eq!(report(&run)["outcome"], "passed");
    // The chain runs unbroken across the kill and the resume, anchored by the final report.
    let out = launch_host()
        .args(["verify", &id, "--runs-dir", runs.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("anchor its last line"));
}

#[test]
fn a_malformed_runbook_is_refused_with_its_line_and_nothing_runs() {
    let runs = tempfile::tempdir().unwrap();
    let book = runs.path().join("launch.toml");
    std::fs::write(&book, "[launch]\nname = \"x\"\nflag = \"F\"\n\n[environments.staging]\ntarget = \"embedded\"\n\n[[stage]]\nname = \"smoke\"\nplugin = \"no-such-plugin\"\nenvironment = \"staging\"\n").unwrap();
    let out = launch_host()
        .args([
            "run",
            "--plugins",
            &plugins(),
            "--yes",
            "--runs-dir",
            runs.path().join("runs").to_str().unwrap(),
            "--runbook",
            book.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("launch.toml:10:") && err.contains("no plugin named `no-such-plugin`"),
        "{err}"
    );
    assert!(
        !runs.path().join("runs").exists(),
        "a refused runbook creates no run"
    );

    std::fs::write(&book, "[launch]\nname = \"x\"\nflag = 3\n").unwrap();
    let out = launch_host()
        .args([
            "run",
            "--plugins",
            &plugins(),
            "--yes",
            "--runbook",
            book.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("launch.toml:3:"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn without_a_terminal_and_without_yes_it_refuses_instead_of_hanging() {
    let out = launch_host()
        .args([
            "run",
            "--plugins",
            &plugins(),
            "--runs-dir",
            "/nonexistent-runs",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
}

#[test]
fn a_plugin_that_traps_fails_its_stage_by_name_and_keeps_the_journal_intact() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir(&plugin_dir).unwrap();
    std::fs::copy(test_plugin("hostile"), plugin_dir.join("hostile.wasm")).unwrap();
    let (out, runs) = run_book_with(
        dir.path(),
        plugin_dir.to_str().unwrap(),
        "[launch]\nname = \"x\"\nflag = \"F\"\n[environments.staging]\ntarget = \"embedded\"\n[[stage]]\nname = \"custom\"\nplugin = \"hostile\"\nenvironment = \"staging\"\nconfig = { attack = \"panic\" }\n[[stage]]\nname = \"after\"\naction = \"wait\"\nduration = \"10ms\"\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let run = only_run(&runs);
    let r = report(&run);
    assert_eq!(
        r["stages"].as_array().unwrap().len(),
        1,
        "the stage after a failed gate did not run"
    );
    let reason = r["stages"][0]["verdict"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("plugin `hostile` trapped") && reason.contains("panicked on purpose"),
        "{reason}"
    );
    assert_eq!(r["stages"][0]["plugin"], "hostile");
    // The failed call's stderr (the panic message) is kept in the journal for later reading.
    let kept = journal(&run).into_iter().any(|e| {
        e["event"] == "log"
            && e["source"] == "stderr"
            && e["message"]
                .as_str()
                .unwrap_or("")
                .contains("panicked on purpose")
    });
    assert!(kept, "the failed call's stderr is journaled");
}

/// Makes a finished run look interrupted in its last stage: drops the journal's last two
/// records (that stage's `stage-finished` and `run-finished`). Returns the journal's path.
fn interrupt_last_stage(run: &Path) -> PathBuf {
    let path = run.join("journal.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    std::fs::write(&path, lines[..lines.len() - 2].join("\n") + "\n").unwrap();
    path
}

#[test]
fn a_torn_last_record_is_cut_and_the_run_resumes_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (out, runs) = run_book(
        dir.path(),
        "[launch]\nname = \"x\"\nflag = \"F\"\n[environments.staging]\ntarget = \"embedded\"\n[[stage]]\nname = \"ten\"\naction = \"flag\"\nenvironment = \"staging\"\npercent = 10\n[[stage]]\nname = \"thirty\"\naction = \"flag\"\nenvironment = \"staging\"\npercent = 30\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = only_run(&runs);
    // As if the host died while writing: the last stage never finished, and its record is
    // half on disk.
    let path = interrupt_last_stage(&run);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, br#"{"at":1,"event":"stage-fini"#).unwrap();

    let id = run.file_name().unwrap().to_str().unwrap().to_string();
    let resume = || {
        launch_host()
            .args(["resume", &id, "--runs-dir", runs.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = resume();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("torn"), "{}", text(&out.stderr));
    let records = journal(&run); // every line parses: nothing was written onto the torn one
    let torn_bytes = r#"{"at":1,"event":"stage-fini"#.len();
    assert!(
        records
            .iter()
            .any(|r| r["event"] == "resumed" && r["torn_bytes_dropped"] == torn_bytes),
        "{records:#?}"
    );
    assert_eq!(report(&run)["outcome"], "passed");
    // The torn bytes were kept aside, not lost, and the warning names where.
    let aside = run.join("journal.jsonl.torn");
    assert!(
        std::fs::read_to_string(&aside)
            .unwrap()
            .starts_with(r#"{"at":1,"event":"stage-fini"#)
    );
    assert!(
        text(&out.stderr).contains("journal.jsonl.torn"),
        "{}",
        text(&out.stderr)
    );
    // A second resume says the run is finished, not that its journal is corrupt.
    let again = resume();
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("already finished"),
        "{}",
        text(&again.stderr)
    );
    let status = launch_host()
        .args(["status", run.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
}

#[test]
fn a_plugin_file_truncated_before_resume_is_reported_as_changed() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let file = plugins.join("health-check.wasm");
    std::fs::copy(stock_plugin("health-check"), &file).unwrap();
    let (out, runs) = run_book_with(
        dir.path(),
        plugins.to_str().unwrap(),
        "[launch]\nname = \"x\"\nflag = \"F\"\n[environments.staging]\ntarget = \"embedded\"\n[[stage]]\nname = \"check\"\nplugin = \"health-check\"\nenvironment = \"staging\"\n[[stage]]\nname = \"pause\"\naction = \"wait\"\nduration = \"10ms\"\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = only_run(&runs);
    // Interrupted before its last stage finished...
    interrupt_last_stage(&run);
    // ...and meanwhile the plugin file was cut in half.
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let id = run.file_name().unwrap().to_str().unwrap();
    let out = launch_host()
        .args(["resume", id, "--runs-dir", runs.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("plugin `health-check` changed since run")
            && err.contains("health-check.wasm"),
        "{err}"
    );
}

#[test]
fn a_bad_environment_is_refused_before_the_run_folder_exists() {
    for (line, expect) in [
        ("flags = \"bogus\"", "unknown flag provider `bogus`"),
        ("store = \"/var/www/site\"", "is not an s3:// URL"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (out, runs) = run_book(
            dir.path(),
            &format!(
                "[launch]\nname = \"x\"\nflag = \"F\"\n\n[environments.staging]\ntarget = \"embedded\"\n{line}\n\n[[stage]]\nname = \"on\"\naction = \"flag\"\nenvironment = \"staging\"\npercent = 10\n"
            ),
        );
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains("launch.toml:7:") && err.contains(expect),
            "{err}"
        );
        assert!(!runs.exists(), "a refused run leaves no folder behind");
    }
}

#[test]
fn a_full_rollback_stage_restores_the_previous_release() {
    let dir = tempfile::tempdir().unwrap();
    let (out, runs) = run_book(
        dir.path(),
        "[launch]\nname = \"x\"\nflag = \"STATUS_BOARD_V2_ENABLED\"\n[environments.staging]\ntarget = \"embedded\"\n\
         [[stage]]\nname = \"deploy\"\naction = \"deploy\"\nenvironment = \"staging\"\nsite = \"statusboard-v2\"\n\
         [[stage]]\nname = \"flag-on\"\naction = \"flag\"\nenvironment = \"staging\"\npercent = 50\n\
         [[stage]]\nname = \"undo\"\naction = \"rollback\"\nenvironment = \"staging\"\nfull = true\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = only_run(&runs);
    assert_eq!(flag(&run, "staging"), 0);
    let current = std::fs::read_to_string(run.join("env/staging/store/current")).unwrap();
    assert!(
        current.ends_with("-legacy"),
        "the legacy release is live again: {current}"
    );
    let page = std::fs::read_to_string(
        run.join("env/staging/store/releases")
            .join(&current)
            .join("index.html"),
    )
    .unwrap();
    assert!(
        !page.contains("StatusBoardV2"),
        "the restored site is the previous one"
    );
}

#[test]
fn concurrent_runs_against_one_environment_exactly_one_proceeds() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("launch.toml");
    std::fs::write(
        &book,
        "[launch]\nname = \"x\"\nflag = \"F\"\n[environments.production]\ntarget = \"embedded\"\n\
         [[stage]]\nname = \"hold\"\naction = \"monitor\"\nenvironment = \"production\"\nduration = \"1500ms\"\ninterval = \"500ms\"\n",
    )
    .unwrap();
    let runs = dir.path().join("runs");
    let children: Vec<_> = (0..4)
        .map(|_| {
            launch_host()
                .args([
                    "run",
                    "--plugins",
                    &plugins(),
                    "--yes",
                    "--runs-dir",
                    runs.to_str().unwrap(),
                    "--runbook",
                    book.to_str().unwrap(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "exactly one run proceeds: {codes:?}"
    );
    for o in outputs.iter().filter(|o| o.status.code() != Some(0)) {
        assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains("environment `production` is locked by run") && err.contains("since"),
            "{err}"
        );
    }
    let finished: Vec<PathBuf> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("journal.jsonl").exists())
        .collect();
    assert_eq!(finished.len(), 1, "refused runs leave no run folder");
    // The lock is released at the end: the next run proceeds.
    let (out, _) = run_book(dir.path(), &std::fs::read_to_string(&book).unwrap());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn emergency_rollback_through_the_http_flag_provider_reaches_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let (out, runs) = run_book(
        dir.path(),
        "[launch]\nname = \"x\"\nflag = \"STATUS_BOARD_V2_ENABLED\"\n[environments.staging]\ntarget = \"embedded\"\nflags = \"http\"\n\
         [[stage]]\nname = \"flag-on\"\naction = \"flag\"\nenvironment = \"staging\"\npercent = 30\n\
         [[stage]]\nname = \"check\"\naction = \"monitor\"\nenvironment = \"staging\"\nduration = \"500ms\"\ninterval = \"250ms\"\n\
         [[stage]]\nname = \"emergency\"\naction = \"rollback\"\nenvironment = \"staging\"\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = only_run(&runs);
    // The target's own flag storage, written only through its admin API.
    assert_eq!(flag(&run, "staging"), 0);
    let r = report(&run);
    let effects: Vec<String> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["effects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap().to_string())
        })
        .collect();
    assert!(
        effects
            .iter()
            .any(|e| e.contains("to 30% via http://127.0.0.1:")
                && e.contains("/api/admin/feature-flags")),
        "{effects:?}"
    );
    assert!(
        effects
            .iter()
            .any(|e| e.starts_with("emergency rollback of staging") && e.contains("via http://")),
        "{effects:?}"
    );
    // While the flag was at 30 %, the target really routed V2 traffic.
    let monitor = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "check")
        .unwrap();
    assert_eq!(monitor["verdict"]["kind"], "pass");
}

#[test]
fn a_runbook_of_built_in_actions_needs_no_plugin_folder() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-plugins-here");
    let book = "[launch]\nname = \"x\"\nflag = \"F\"\n[environments.staging]\ntarget = \"embedded\"\n[[stage]]\nname = \"ten\"\naction = \"flag\"\nenvironment = \"staging\"\npercent = 10\n";
    let (out, runs) = run_book_with(dir.path(), missing.to_str().unwrap(), book);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(report(&only_run(&runs))["outcome"], "passed");
    let validate = launch_host()
        .args([
            "validate",
            "--plugins",
            missing.to_str().unwrap(),
            "--runbook",
        ])
        .arg(dir.path().join("launch.toml"))
        .output()
        .unwrap();
    assert_eq!(
        validate.status.code(),
        Some(0),
        "{}",
        text(&validate.stderr)
    );
    // A runbook that names a plugin still needs the folder, and is told where to find one.
    let canary = format!(
        "{book}[[stage]]\nname = \"smoke\"\nplugin = \"statusboard-smoke\"\nenvironment = \"staging\"\n"
    );
    let (out, _) = run_book_with(dir.path(), missing.to_str().unwrap(), &canary);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot list the plugin directory"),
        "{}",
        text(&out.stderr)
    );
}
