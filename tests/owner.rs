//! One run, one owner, tried the way a second operator and a crash would: `resume` of a run
//! whose process lives, five `resume`s at once after a `kill -9`, a resume after an operator
//! rolled the flag back while the run was stopped, and a journal deleted or replaced under a
//! running canary. Real binary, real processes, the embedded target.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// A launch with a slow canary: four steps of `step_ms` each, checked every 300 ms.
fn runbook(dir: &Path, step_ms: u64) -> PathBuf {
    let path = dir.join("launch.toml");
    std::fs::write(
        &path,
        format!(
            r#"[launch]
name = "owner-test"
flag = "STATUS_BOARD_V2_ENABLED"

[environments.staging]
target = "embedded"

[defaults]
probe-rate = 200

[[stage]]
name = "deploy"
action = "deploy"
environment = "staging"
site = "statusboard-v2"

[[stage]]
name = "canary"
plugin = "canary-steps"
role = "canary-policy"
environment = "staging"
interval = "300ms"
duration = "120s"
on-fail = "rollback"
config = {{ steps = [10, 30, 50, 100], step-duration-ms = {step_ms}, min-requests = 3 }}
"#
        ),
    )
    .unwrap();
    path
}

fn launch_host() -> Command {
    let mut c = launch_host_with(&[]);
    c.env_remove("AUTO_CONFIRM");
    c
}

fn plugins() -> String {
    stock_plugin("canary-steps");
    repo().join("plugins").display().to_string()
}

/// Starts `run` of `book` in the background.
fn start(book: &Path, runs: &Path) -> Child {
    launch_host()
        .args(["run", "--yes", "--plugins", &plugins(), "--runbook"])
        .arg(book)
        .arg("--runs-dir")
        .arg(runs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn journal(run: &Path) -> Vec<serde_json::Value> {
    journal_of(run)
}

/// Waits until the run's journal shows `key` done (e.g. `promote:30`); returns the run folder.
fn wait_for_effect(runs: &Path, key: &str) -> PathBuf {
    let started = Instant::now();
    loop {
        if let Some(run) = local_runs(runs).pop()
            && journal(&run)
                .iter()
                .any(|r| r["event"] == "effect-done" && r["key"] == key)
        {
            return run;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run never reached {key}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn flag(run: &Path) -> u64 {
    let flags: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("env/staging/flags.json")).unwrap())
            .unwrap();
    flags["STATUS_BOARD_V2_ENABLED"].as_u64().unwrap()
}

fn id(run: &Path) -> String {
    run.file_name().unwrap().to_string_lossy().into_owned()
}

fn resume(runs: &Path, run: &Path) -> Command {
    let mut c = launch_host();
    // `--yes` as `run` takes it (8fddcc8 refused it on resume).
    c.args(["resume", &id(run), "--yes", "--runs-dir"])
        .arg(runs);
    c
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn resume_of_a_run_whose_process_lives_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let book = runbook(dir.path(), 1500);
    let mut child = start(&book, &runs);
    let run = wait_for_effect(&runs, "promote:10");
    let before = journal(&run).len();

    let out = resume(&runs, &run).output().unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(5), "a live owner is exit 5: {said}");
    assert!(
        said.contains(&format!("is being run by pid {}", child.id())),
        "names the owner: {said}"
    );
    // The refused resume wrote nothing: no `resumed` record, and the owner goes on alone.
    assert!(
        !journal(&run).iter().any(|r| r["event"] == "resumed"),
        "the refused resume journaled nothing"
    );
    assert!(child.try_wait().unwrap().is_none(), "the owner still runs");
    let status = launch_host_output(
        &[],
        &["status", &id(&run), "--runs-dir", runs.to_str().unwrap()],
    );
    assert!(status.1.contains("RUNNING"), "{}", status.1);
    assert!(
        status.1.contains(&format!("pid {}", child.id())),
        "{}",
        status.1
    );
    let _ = child.kill();
    child.wait().unwrap();
    assert!(journal(&run).len() >= before);
    let status = launch_host_output(
        &[],
        &["status", &id(&run), "--runs-dir", runs.to_str().unwrap()],
    );
    assert!(
        status.1.contains("INTERRUPTED") && status.1.contains("launch-host resume"),
        "a run whose process is gone is not `running`: {}",
        status.1
    );
}

#[test]
fn five_resumes_at_once_after_a_kill_leave_exactly_one_owner_and_an_intact_history() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let book = runbook(dir.path(), 600);
    let mut child = start(&book, &runs);
    let run = wait_for_effect(&runs, "promote:30");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let resumers: Vec<Child> = (0..5)
        .map(|_| {
            resume(&runs, &run)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = resumers
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    let proceeded: Vec<_> = outs.iter().filter(|o| o.status.code() != Some(5)).collect();
    assert_eq!(
        proceeded.len(),
        1,
        "exactly one resume proceeds, the others are refused (exit 5): {codes:?}\n{}",
        outs.iter().map(text).collect::<Vec<_>>().join("\n---\n")
    );
    assert_eq!(
        proceeded[0].status.code(),
        Some(0),
        "{}",
        text(proceeded[0])
    );
    for refused in outs.iter().filter(|o| o.status.code() == Some(5)) {
        assert!(
            text(refused).contains("is being run by pid"),
            "{}",
            text(refused)
        );
    }

    let records = journal(&run);
    assert_eq!(
        records.iter().filter(|r| r["event"] == "resumed").count(),
        1,
        "one resume journaled"
    );
    let mut done = std::collections::HashSet::new();
    for r in records.iter().filter(|r| r["event"] == "effect-done") {
        let key = format!("{}/{}", r["stage"], r["key"]);
        assert!(done.insert(key.clone()), "effect {key} was done twice");
    }
    assert_eq!(flag(&run), 100);
    let (code, said) = launch_host_output(
        &[],
        &["verify", &id(&run), "--runs-dir", runs.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{said}");
}

#[test]
fn a_canary_rolled_back_by_an_operator_while_stopped_is_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let book = runbook(dir.path(), 600);
    let ws_args = |cmd: &[&str]| {
        let mut c = launch_host();
        c.args(cmd)
            .arg("--workspace")
            .arg(&ws)
            .arg("--runbook")
            .arg(&book);
        c
    };
    let out = ws_args(&["deploy", "staging", "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut canary = ws_args(&["canary", "start", "--yes"])
        .arg("--plugins")
        .arg(plugins())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runs = ws.join("runs");
    let run = wait_for_effect(&runs, "promote:30");
    canary.kill().unwrap(); // the runner dies at 30 %
    canary.wait().unwrap();
    let flags = || -> u64 {
        let f: serde_json::Value =
            serde_json::from_slice(&std::fs::read(ws.join("env/staging/flags.json")).unwrap())
                .unwrap();
        f["STATUS_BOARD_V2_ENABLED"].as_u64().unwrap()
    };
    assert_eq!(flags(), 30);
    // An operator turns it off while the run is stopped.
    let out = ws_args(&[
        "rollback",
        "emergency",
        "--env",
        "staging",
        "--reason",
        "paged",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(flags(), 0);

    let started = Instant::now();
    let out = resume(&runs, &run).output().unwrap();
    let said = text(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the canary ends rolled back: {said}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "at once, not after holding for its duration"
    );
    assert!(
        said.contains("reads 0%, but this run had moved it to 30%"),
        "{said}"
    );
    assert_eq!(flags(), 0, "the operator's rollback stands");
    let records = journal(&run);
    let after: Vec<_> = records
        .iter()
        .skip_while(|r| r["event"] != "resumed")
        .collect();
    assert!(
        !after.iter().any(|r| r["event"] == "effect-done"
            && r["key"].as_str().is_some_and(|k| k.starts_with("promote"))),
        "nothing promoted after the resume"
    );
    assert!(
        after
            .iter()
            .any(|r| r["event"] == "decision" && r["action"] == "moved-back"),
        "the resume journaled what it found"
    );
    assert!(
        !after
            .iter()
            .any(|r| r["event"] == "decision" && r["percent"] != 0),
        "no decision recorded at a percentage the flag is not at"
    );
}

/// Runs the slow canary, waits for 30 %, does `tamper` to the journal, and returns the run's
/// exit code, its folder and what it printed.
fn tamper_mid_canary(tamper: impl FnOnce(&Path)) -> (Option<i32>, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let book = runbook(dir.path(), 1500);
    let child = launch_host()
        .args(["run", "--yes", "--plugins", &plugins(), "--runbook"])
        .arg(&book)
        .arg("--runs-dir")
        .arg(&runs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = wait_for_effect(&runs, "promote:30");
    tamper(&run);
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "noticed at the next append, not at the end"
    );
    let kept = dir.keep();
    let run = kept.join("runs").join(run.file_name().unwrap());
    (out.status.code(), run, text(&out))
}

fn assert_host_failed_and_said_so(code: Option<i32>, run: &Path, said: &str, what: &str) {
    assert_eq!(code, Some(4), "a host failure: {said}");
    assert!(said.contains(what), "{said}");
    assert_eq!(flag(run), 0, "the canary's flag went back to 0");
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("host-failed.json")).unwrap()).unwrap();
    assert!(
        marker["reason"].as_str().unwrap().contains(what),
        "{marker}"
    );
    let salvaged = std::fs::read_to_string(run.join("journal.salvaged.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = salvaged
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        records[0]["event"], "run-started",
        "the run's history was kept"
    );
    assert!(
        records
            .iter()
            .any(|r| r["event"] == "effect-done" && r["key"] == "promote:30")
    );
    assert!(records.iter().any(|r| r["event"] == "flag-restored"));
    let last = records
        .iter()
        .rev()
        .find(|r| r["event"] != "signed")
        .unwrap();
    assert_eq!(last["event"], "run-finished");
    assert!(
        !records.iter().any(|r| r["key"] == "promote:50"),
        "the canary did not go on"
    );
    let runs = run.parent().unwrap();
    let (_, status) = launch_host_output(
        &[],
        &["status", &id(run), "--runs-dir", runs.to_str().unwrap()],
    );
    assert!(status.contains("HOST-FAILED"), "{status}");
    assert!(status.contains(what), "{status}");
    assert!(!status.contains("RUNNING"), "{status}");
    let (code, said) = launch_host_output(
        &[],
        &["resume", &id(run), "--runs-dir", runs.to_str().unwrap()],
    );
    assert_eq!(code, Some(2), "a lost run is not resumed: {said}");
    let _ = std::fs::remove_dir_all(runs.parent().unwrap());
}

#[test]
fn a_journal_deleted_under_a_running_canary_stops_it_and_the_folder_says_so() {
    let (code, run, said) = tamper_mid_canary(|run| {
        std::fs::remove_file(run.join("journal.jsonl")).unwrap();
    });
    assert_host_failed_and_said_so(code, &run, &said, "was deleted");
}

#[test]
fn a_journal_replaced_under_a_running_canary_stops_it_and_the_folder_says_so() {
    let (code, run, said) = tamper_mid_canary(|run| {
        let forged = run.join("forged.jsonl");
        std::fs::write(&forged, "{\"at\":1,\"event\":\"resumed\",\"pid\":1}\n").unwrap();
        std::fs::rename(&forged, run.join("journal.jsonl")).unwrap();
    });
    assert_host_failed_and_said_so(code, &run, &said, "was replaced by another file");
}

#[test]
fn a_journal_that_becomes_unwritable_under_a_running_canary_stops_it_and_the_folder_says_so() {
    // An immutable file refuses writes through descriptors already open: the journal cannot
    // be written any more, though nothing moved it.
    let probe = tempfile::NamedTempFile::new().unwrap();
    let immutable = |path: &Path, on: bool| {
        Command::new("chattr")
            .arg(if on { "+i" } else { "-i" })
            .arg(path)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !immutable(probe.path(), true) {
        println!("skipped: this file system has no immutable flag (chattr +i failed)");
        return;
    }
    immutable(probe.path(), false);
    let mut frozen = PathBuf::new();
    let (code, run, said) = tamper_mid_canary(|run| {
        frozen = run.join("journal.jsonl");
        assert!(immutable(&frozen, true));
    });
    immutable(&run.join("journal.jsonl"), false);
    assert_host_failed_and_said_so(code, &run, &said, "cannot be written");
}
