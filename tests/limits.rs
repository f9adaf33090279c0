//! Never leave a flag half-way (issue 10), through the real binary against the embedded
//! targets: every out-of-range runbook number is a configuration error at its line in
//! `validate` and `run` alike; a canary ends by its duration whatever its interval; a panic
//! mid-canary puts the flag back to 0; secrets from the environment reach no file and no line.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use support::*;

const DB_PASSWORD: &str = "pw-Zq81-never-written";
const API_TOKEN: &str = "tok-7Hh2-never-written";

fn secrets() -> Vec<(&'static str, String)> {
    vec![
        ("DB_PASSWORD", DB_PASSWORD.to_string()),
        ("API_TOKEN", API_TOKEN.to_string()),
    ]
}

fn plugins() -> String {
    stock_plugin("canary-steps");
    repo().join("plugins").display().to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A canary on the embedded staging target; `defaults` and `stage` add lines to those tables.
fn canary_book(defaults: &str, stage: &str) -> String {
    format!(
        "[launch]\nname = \"x\"\nflag = \"STATUS_BOARD_V2_ENABLED\"\n\n[environments.staging]\ntarget = \"embedded\"\n\n[defaults]\n{defaults}\n\n[[stage]]\nname = \"canary\"\nplugin = \"canary-steps\"\nenvironment = \"staging\"\non-fail = \"rollback\"\n{stage}\n"
    )
}

/// Writes `book` into `dir` and runs `launch-host ARGS --runbook book` with the secrets set.
fn host(dir: &Path, book: &str, args: &[&str], env: &[(&str, String)]) -> Output {
    let path = dir.join("launch.toml");
    std::fs::write(&path, book).unwrap();
    let mut all = secrets();
    all.extend(env.iter().cloned());
    launch_host_with(&all)
        .args(args)
        .args(["--runbook", path.to_str().unwrap()])
        .output()
        .unwrap()
}

fn run_args(runs: &Path) -> Vec<String> {
    [
        "run",
        "--plugins",
        &plugins(),
        "--yes",
        "--runs-dir",
        runs.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Runs a canary stage with `stage` lines and `env`; the folder holds the runs.
fn run_canary(stage: &str, env: &[(&str, String)]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let out = host(
        dir.path(),
        &canary_book("", stage),
        &strs(&run_args(&runs)),
        env,
    );
    (out, dir)
}

#[test]
fn out_of_range_numbers_are_configuration_errors_at_their_line_in_validate_and_run() {
    // (what the operator wrote, the table it goes in, what the error must say)
    let rows = [
        (
            "deadline = \"18446744073709551615s\"",
            "defaults",
            "from 10ms to 10m",
        ),
        (
            "probe-rate = 4000000000",
            "defaults",
            "1 to 10000 requests per second",
        ),
        (
            "probe-rate = 0",
            "defaults",
            "1 to 10000 requests per second",
        ),
        ("deadline = \"0s\"", "defaults", "from 10ms to 10m"),
        ("memory = \"0B\"", "defaults", "1MiB to 4GiB"),
        ("interval = \"10000000000years\"", "stage", "interval"),
        ("interval = \"1ns\"", "stage", "from 100ms to 1h"),
        ("duration = \"30days\"", "stage", "from 1ms to 7days"),
        ("deadline = \"11m\"", "stage", "from 10ms to 10m"),
        (
            "allow-hosts = [\"ops:${DB_PASSWORD}@api.example.com\"]",
            "stage",
            "is not a host pattern",
        ),
        (
            "config = { steps = [10, 50, 30, 100] }",
            "stage",
            "30 does not come after 50",
        ),
        (
            "config = { steps = [10, 130] }",
            "stage",
            "not a percentage from 0 to 100",
        ),
    ];
    for (line, table, message) in rows {
        let dir = tempfile::tempdir().unwrap();
        let book = match table {
            "defaults" => canary_book(line, ""),
            _ => canary_book("", line),
        };
        let at = book.lines().position(|l| l == line).unwrap() + 1;
        let runs = dir.path().join("runs");
        let validate = host(
            dir.path(),
            &book,
            &["validate", "--plugins", &plugins()],
            &[],
        );
        let run = host(dir.path(), &book, &strs(&run_args(&runs)), &[]);
        for (command, out) in [("validate", &validate), ("run", &run)] {
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} `{line}`: {err}");
            assert!(
                err.contains(&format!("launch.toml:{at}:")) && err.contains(message),
                "{command} `{line}` should fail at line {at} with `{message}`: {err}"
            );
            assert!(
                !err.contains(DB_PASSWORD),
                "{command} printed the secret: {err}"
            );
        }
        assert!(!runs.exists(), "`{line}`: a refused runbook creates no run");
    }
}

#[test]
fn a_canary_ends_by_its_duration_whatever_its_interval() {
    let started = Instant::now();
    let (out, dir) = run_canary(
        "interval = \"1h\"\nduration = \"2s\"\nconfig = { steps = [10, 100] }",
        &[],
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        took < Duration::from_secs(60),
        "the canary waited for its hour-long window: {took:?}"
    );
    let run = &local_runs(&dir.path().join("runs"))[0];
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    assert!(journal.contains("rollback:canary-timeout"), "{journal}");
    assert_eq!(flag(run), 0);
}

fn flag(run: &Path) -> u64 {
    let flags: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("env/staging/flags.json")).unwrap())
            .unwrap();
    flags["STATUS_BOARD_V2_ENABLED"].as_u64().unwrap()
}

#[test]
fn a_panic_mid_canary_puts_the_flag_back_to_zero_and_the_journal_says_so() {
    let (out, dir) = run_canary(
        "interval = \"250ms\"\nduration = \"60s\"\nconfig = { steps = [10, 30, 50, 100], step-duration-ms = 300, min-requests = 1 }",
        &[("LAUNCH_HOST_FAULT", "canary-promoted".to_string())],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(4), "{stdout}{stderr}");
    assert!(stdout.contains("HOST-FAILED"), "{stdout}");
    assert!(stdout.contains("restored to 0%"), "{stdout}");
    let run = &local_runs(&dir.path().join("runs"))[0];
    assert_eq!(flag(run), 0, "the flag is back at its safe value");
    let records: Vec<serde_json::Value> = std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let promoted = records
        .iter()
        .position(|r| r["event"] == "effect-done" && r["key"] == "promote:10")
        .expect("the canary moved the flag before the fault");
    let restored = records
        .iter()
        .position(|r| r["event"] == "flag-restored")
        .expect("the journal says the flag was restored");
    assert!(restored > promoted);
    assert_eq!(records[restored]["percent"], 0);
    assert_eq!(records[restored]["restored"], true);
    assert!(
        records[restored]["reason"]
            .as_str()
            .unwrap()
            .contains("deliberate fault")
    );
    // The run's last word (after it, only the runner's signature of its end).
    let last = support::last_word(&records);
    assert_eq!(last["event"], "run-finished");
    assert_eq!(last["outcome"], "host-failed");
    assert_eq!(
        records.last().unwrap()["event"],
        "signed",
        "the end is signed"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["outcome"], "host-failed");
}

#[test]
fn secrets_from_the_environment_reach_no_file_and_no_console_line() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let book = format!(
        r#"[launch]
name = "x"
flag = "STATUS_BOARD_V2_ENABLED"

[environments.staging]
target = "embedded"

[[stage]]
name = "build"
title = "Build with ${{DB_PASSWORD}}"
action = "build"
command = "echo building with token ${{API_TOKEN}} >&2; exit 3"
output = "{out}"
on-fail = "continue"

[[stage]]
name = "uat-init"
action = "uat-init"
plugin = "uat-signoff"
environment = "staging"

[[stage]]
name = "uat"
plugin = "uat-signoff"
environment = "staging"
on-fail = "continue"
config = {{ allow-skipped = true }}
signoffs = [
    {{ role = "qa_lead", name = "QA", decision = "approved", note = "db password is ${{DB_PASSWORD}}" }},
    {{ role = "product_owner", name = "PO", decision = "approved", note = "ok" }},
]

[[stage]]
name = "rollback"
action = "rollback"
environment = "staging"
reason = "as the wiki at https://ops:${{API_TOKEN}}@wiki.example.com/rollback says"
"#,
        out = dir.path().join("never").display()
    );
    let out = host(dir.path(), &book, &strs(&run_args(&runs)), &[]);
    let console = format!("{}{}", text(&out.stdout), text(&out.stderr));
    // The run happened and the texts that carried the secrets were written, masked.
    assert!(console.contains("Build with ***"), "{console}");
    assert!(console.contains("building with token ***"), "{console}");
    let run = &local_runs(&runs)[0];
    let written = launch_targets::store::files_under(run, |_| true).unwrap();
    assert!(written.len() >= 8, "{written:?}");
    let all: String = written
        .iter()
        .map(|f| text(&std::fs::read(f).unwrap()))
        .collect();
    assert!(
        all.contains("db password is ***"),
        "the note was kept, masked"
    );
    assert!(
        all.contains("https://ops:***@wiki.example.com"),
        "the URL was kept, masked"
    );
    for secret in [DB_PASSWORD, API_TOKEN] {
        assert!(
            !console.contains(secret),
            "the console showed {secret}: {console}"
        );
        for f in &written {
            let body = text(&std::fs::read(f).unwrap());
            assert!(!body.contains(secret), "{} holds {secret}", f.display());
        }
    }
}
