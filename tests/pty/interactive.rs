//! The interactive flows, driven through a real pseudo-terminal (expectrl): proceed / skip /
//! abort in the guided playbook, a tester walked through a UAT item, and two approvals that
//! turn a failing UAT gate into a passing one. Without a terminal, the same commands refuse
//! instead of hanging.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use expectrl::process::unix::WaitStatus;
use expectrl::{Eof, Expect, Session};

fn repo() -> PathBuf {
    // At run time: a test binary built in another clone (one shared target folder) must
    // still find this one.
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../..")
    .canonicalize()
    .expect("the repository root")
}

/// The launch-host binary of this build: `cargo test -p launch-host -p launch-host-pty-tests`
/// (what `just test` runs) builds it beside this test's own folder.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .join("launch-host");
    assert!(
        bin.is_file(),
        "{} is missing: run `just test` (or build -p launch-host with this target dir)",
        bin.display()
    );
    bin
}

fn cache_dir() -> PathBuf {
    std::env::var_os("LAUNCH_HOST_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("launch-host-test-compiled"))
}

fn stock_plugin(name: &str) {
    let path = repo().join("plugins").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `just build-plugins`",
        path.display()
    );
}

/// Run folders under `runs`, by start time.
fn local_runs(runs: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("journal.jsonl").is_file())
        .collect();
    dirs.sort_by_key(|d| {
        let started = std::fs::metadata(d.join("runbook.toml"))
            .and_then(|m| m.modified())
            .ok();
        (started, d.clone())
    });
    dirs
}

fn command(ws: &Path, runbook: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(binary());
    c.args(args)
        .arg("--workspace")
        .arg(ws)
        .arg("--runbook")
        .arg(runbook)
        .arg("--plugins")
        .arg(repo().join("plugins"))
        .env("LAUNCH_HOST_CACHE_DIR", cache_dir())
        .env("USER", "tess")
        .env_remove("AUTO_CONFIRM");
    c
}

/// Runs a command on a pseudo-terminal; `script` answers its prompts. Returns its exit code.
fn on_pty(c: Command, script: impl FnOnce(&mut expectrl::session::OsSession)) -> i32 {
    let mut p = Session::spawn(c).expect("spawn on a pty");
    p.set_expect_timeout(Some(Duration::from_secs(60)));
    script(&mut p);
    p.expect(Eof).expect("the command ends");
    match p.get_process().wait().expect("wait") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("ended with {other:?}"),
    }
}

fn journal(ws: &Path) -> Vec<serde_json::Value> {
    let run = local_runs(&ws.join("runs")).pop().expect("a run folder");
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn finished(records: &[serde_json::Value], stage: &str) -> serde_json::Value {
    records
        .iter()
        .find(|r| r["event"] == "stage-finished" && r["stage"] == stage)
        .cloned()
        .unwrap_or_else(|| panic!("stage {stage} never finished: {records:#?}"))
}

const STEPS: &str = "[launch]\nname = \"x\"\nflag = \"STATUS_BOARD_V2_ENABLED\"\n[environments]\n\
[[stage]]\nname = \"one\"\ntitle = \"Step one\"\naction = \"wait\"\nduration = \"10ms\"\n\
[[stage]]\nname = \"two\"\ntitle = \"Step two\"\naction = \"wait\"\nduration = \"10ms\"\n\
[[stage]]\nname = \"three\"\ntitle = \"Step three\"\naction = \"wait\"\nduration = \"10ms\"\n\
[[stage]]\nname = \"four\"\ntitle = \"Step four\"\naction = \"wait\"\nduration = \"10ms\"\n";

#[test]
fn the_guided_playbook_proceeds_skips_and_aborts_as_answered() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("launch.toml");
    std::fs::write(&book, STEPS).unwrap();
    let ws = dir.path().join("ws");
    let code = on_pty(command(&ws, &book, &["playbook", "interactive"]), |p| {
        p.expect("run \"Step one\"? [p]roceed / [s]kip / [a]bort")
            .unwrap();
        p.send_line("p").unwrap();
        p.expect("run \"Step two\"?").unwrap();
        p.send_line("s").unwrap();
        p.expect("run \"Step three\"?").unwrap();
        p.send_line("maybe").unwrap();
        p.expect("answer p, s or a").unwrap();
        p.expect("run \"Step three\"?").unwrap();
        p.send_line("a").unwrap();
    });
    assert_eq!(code, 1, "an aborted launch does not pass");
    let records = journal(&ws);
    assert_eq!(finished(&records, "one")["verdict"]["kind"], "pass");
    assert_eq!(
        finished(&records, "two")["outcome"],
        "skipped by the operator"
    );
    assert_eq!(
        finished(&records, "three")["outcome"],
        "run aborted by the operator"
    );
    assert!(
        !records.iter().any(|r| r["stage"] == "four"),
        "nothing runs after an abort"
    );
    // The run's last word (after it, only the runner's signature of its end).
    let last = records
        .iter()
        .rev()
        .find(|r| r["event"] != "signed")
        .unwrap();
    assert_eq!(
        (last["event"].as_str(), last["outcome"].as_str()),
        (Some("run-finished"), Some("aborted"))
    );
}

#[test]
fn without_a_terminal_interactive_commands_refuse_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("launch.toml");
    std::fs::write(&book, STEPS).unwrap();
    let ws = dir.path().join("ws");
    let out = command(&ws, &book, &["playbook", "interactive"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a terminal"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(local_runs(&ws.join("runs")).is_empty(), "nothing ran");
}

const UAT: &str = "[launch]\nname = \"x\"\nflag = \"STATUS_BOARD_V2_ENABLED\"\n\
[environments.staging]\ntarget = \"embedded\"\n\
[[stage]]\nname = \"uat-init\"\naction = \"uat-init\"\nplugin = \"uat-signoff\"\nenvironment = \"staging\"\n\
[[stage]]\nname = \"uat\"\ntitle = \"UAT gate\"\nplugin = \"uat-signoff\"\nenvironment = \"staging\"\n";

fn run(c: &mut Command) -> std::process::Output {
    c.stdin(std::process::Stdio::null()).output().unwrap()
}

#[test]
fn a_uat_test_on_a_terminal_and_two_approvals_pass_the_uat_gate() {
    stock_plugin("uat-signoff");
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("launch.toml");
    std::fs::write(&book, UAT).unwrap();
    let ws = dir.path().join("ws");
    let out = run(&mut command(&ws, &book, &["uat", "init", "--yes"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let status = run(&mut command(
        &ws,
        &book,
        &["uat", "status", "--output", "json"],
    ));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let untested: Vec<String> = status["untested"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(untested.len() >= 2, "{status}");

    // The first untested item, walked through on a terminal.
    let first = untested[0].clone();
    let code = on_pty(command(&ws, &book, &["uat", "test", &first]), |p| {
        p.expect("expected:").unwrap();
        p.expect("result? [p]ass / [f]ail / [b]locked / [s]kip")
            .unwrap();
        p.send_line("p").unwrap();
        p.expect("notes:").unwrap();
        p.send_line("checked on staging").unwrap();
    });
    assert_eq!(code, 0);
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.join("uat/results.json")).unwrap()).unwrap();
    let recorded = results
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == first.as_str())
        .expect("the result is recorded");
    assert_eq!(recorded["outcome"], "pass");
    assert_eq!(recorded["notes"], "checked on staging");
    assert_eq!(recorded["tester"], "tess");

    // The rest by flags, as a tester without a terminal would.
    for id in &untested[1..] {
        let out = run(&mut command(
            &ws,
            &book,
            &["uat", "test", id, "--result", "pass", "--notes", "ok"],
        ));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Without sign-offs the gate fails.
    let gate = run(&mut command(&ws, &book, &["uat", "report", "--yes"]));
    assert_eq!(
        gate.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&gate.stderr)
    );
    assert!(String::from_utf8_lossy(&gate.stderr).contains("approval"));

    for (role, name, note) in [
        ("qa_lead", "Jane Smith", "All tests pass"),
        ("product_owner", "Pat Doe", "Ship it"),
    ] {
        let out = run(&mut command(
            &ws,
            &book,
            &["uat", "approve", role, name, "approved", note],
        ));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let signoffs = run(&mut command(
        &ws,
        &book,
        &["uat", "signoffs", "--output", "json"],
    ));
    let signoffs: serde_json::Value = serde_json::from_slice(&signoffs.stdout).unwrap();
    assert_eq!(signoffs.as_array().unwrap().len(), 2, "{signoffs}");
    assert_eq!(signoffs[1]["note"], "Ship it");
    assert!(signoffs[1]["at_ms"].as_u64().unwrap() > 1_700_000_000_000);

    let gate = run(&mut command(&ws, &book, &["uat", "report", "--yes"]));
    assert_eq!(
        gate.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&gate.stderr)
    );
    let records = journal(&ws);
    assert_eq!(finished(&records, "uat")["verdict"]["kind"], "pass");
}

const UAT_PLAYBOOK: &str = "[launch]\nname = \"x\"\nflag = \"STATUS_BOARD_V2_ENABLED\"\n\
[environments.staging]\ntarget = \"embedded\"\n\
[[stage]]\nname = \"uat-init\"\ntitle = \"UAT initialization\"\naction = \"uat-init\"\nplugin = \"uat-signoff\"\nenvironment = \"staging\"\n\
[[stage]]\nname = \"uat\"\ntitle = \"UAT execution\"\nplugin = \"uat-signoff\"\nenvironment = \"staging\"\n\
signoffs = [{ role = \"qa_lead\", name = \"Jane Smith\", decision = \"approved\" }, { role = \"product_owner\", name = \"Pat Doe\", decision = \"approved\" }]\n";

#[test]
fn the_guided_playbook_walks_testers_through_uat_unless_skipped() {
    stock_plugin("uat-signoff");
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("launch.toml");
    std::fs::write(&book, UAT_PLAYBOOK).unwrap();

    let ws = dir.path().join("walked");
    let mut walked = 0;
    let code = on_pty(command(&ws, &book, &["playbook", "interactive"]), |p| {
        p.expect("run \"UAT initialization\"?").unwrap();
        p.send_line("p").unwrap();
        p.expect("run \"UAT execution\"?").unwrap();
        p.send_line("p").unwrap();
        // Every item the automated probes could not check is walked through.
        while p
            .expect("result? [p]ass / [f]ail / [b]locked / [s]kip")
            .is_ok()
        {
            p.send_line("p").unwrap();
            p.expect("notes:").unwrap();
            p.send_line("seen on staging").unwrap();
            walked += 1;
            if walked == 8 {
                break;
            }
        }
    });
    assert_eq!(
        code, 0,
        "every item tested and two approvals: the gate passes"
    );
    assert_eq!(walked, 8, "the eight items without an automated probe");
    let records = journal(&ws);
    assert_eq!(finished(&records, "uat")["verdict"]["kind"], "pass");

    // SKIP_UAT_INTERACTIVE: nobody is asked, so the untested items leave the gate without data.
    let ws = dir.path().join("skipped");
    let mut c = command(&ws, &book, &["playbook", "interactive"]);
    c.env("SKIP_UAT_INTERACTIVE", "true");
    let code = on_pty(c, |p| {
        p.expect("run \"UAT initialization\"?").unwrap();
        p.send_line("p").unwrap();
        p.expect("run \"UAT execution\"?").unwrap();
        p.send_line("p").unwrap();
        p.expect("not tested yet").unwrap();
    });
    assert_eq!(code, 1);
    assert_eq!(finished(&journal(&ws), "uat")["verdict"]["kind"], "no-data");
}
