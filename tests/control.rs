//! Canary control from another terminal: `canary pause|resume|abort|promote --full` act on a
//! canary running in another process of the real binary, within one check interval, and are
//! journaled with the operator and the reason.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{launch_host_with, local_runs, repo};

/// A canary that would promote every second (10 → 50 → 100), checked every 200 ms.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("launch.toml");
    std::fs::write(
        &book,
        r#"[launch]
name = "control"
flag = "STATUS_BOARD_V2_ENABLED"

[environments.staging]
target = "embedded"

[defaults]
probe-rate = 100

[[stage]]
name = "canary"
plugin = "canary-steps"
environment = "staging"
interval = "200ms"
duration = "60s"
on-fail = "rollback"
config = { steps = [10, 50, 100], step-duration-ms = 1000, min-requests = 3 }
"#,
    )
    .unwrap();
    (dir, book)
}

fn host(ws: &Path, book: &Path) -> Command {
    let mut c = launch_host_with(&[("LAUNCH_HOST_OPERATOR", "alice".into())]);
    c.env("LAUNCH_HOST_PLUGINS", repo().join("plugins"))
        .env("LAUNCH_HOST_RUNBOOK", book)
        .env("LAUNCH_HOST_WORKSPACE", ws);
    c
}

fn start(ws: &Path, book: &Path) -> Child {
    host(ws, book)
        .args(["canary", "start", "--env", "staging", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn control(ws: &Path, book: &Path, args: &[&str]) -> String {
    let out = host(ws, book).arg("canary").args(args).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "canary {args:?}: {text}");
    text
}

fn status(ws: &Path, book: &Path) -> serde_json::Value {
    let out = host(ws, book)
        .args(["canary", "status", "--env", "staging", "--output", "json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn wait_for(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < within, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn journal(ws: &Path) -> Vec<serde_json::Value> {
    let run = local_runs(&ws.join("runs")).pop().unwrap();
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn pause_holds_the_step_while_decisions_go_on_and_abort_rolls_back_with_who_and_why() {
    let (dir, book) = workspace();
    let ws = dir.path().join("ws");
    let mut canary = start(&ws, &book);
    wait_for("the canary at 10%", Duration::from_secs(60), || {
        status(&ws, &book)["percent"] == 10
    });
    let said = control(
        &ws,
        &book,
        &[
            "pause",
            "--env",
            "staging",
            "--reason",
            "waiting for support",
        ],
    );
    assert!(said.contains("to pause (as alice)"), "{said}");
    wait_for("the pause to show", Duration::from_secs(5), || {
        status(&ws, &book)["canary"]["paused_by"] == "alice"
    });
    // Two steps' worth of time: unpaused, the policy would have promoted twice.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        status(&ws, &book)["percent"],
        10,
        "paused: nothing promotes"
    );
    let records = journal(&ws);
    let held: Vec<_> = records
        .iter()
        .filter(|r| {
            r["event"] == "decision"
                && r["summary"]
                    .as_str()
                    .unwrap()
                    .contains("(paused by alice: not acted on)")
        })
        .collect();
    assert!(
        !held.is_empty(),
        "the policy is still asked, its promotions recorded and not obeyed"
    );
    assert!(
        held.iter()
            .all(|r| r["action"] == "promote 50%" && r["percent"] == 10),
        "{held:?}"
    );

    control(&ws, &book, &["resume", "--env", "staging"]);
    wait_for(
        "a promotion after the resume",
        Duration::from_secs(5),
        || status(&ws, &book)["percent"] == 50,
    );
    let asked = Instant::now();
    control(
        &ws,
        &book,
        &[
            "abort",
            "--env",
            "staging",
            "--reason",
            "support tickets rising",
        ],
    );
    let code = canary.wait().unwrap().code();
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "acted within an interval or so: {:?}",
        asked.elapsed()
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(canary.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(code, Some(3), "rolled back: {stderr}");
    let s = status(&ws, &book);
    assert_eq!(s["percent"], 0);
    // The canary's progress says how it ended and who ended it, not its last decision (on
    // 8fddcc8: "finished at 10%, last decision hold").
    assert_eq!(s["canary"]["percent"], 0, "{s}");
    assert_eq!(s["canary"]["last_action"], "rollback", "{s}");
    assert!(
        s["canary"]["last_summary"]
            .as_str()
            .unwrap()
            .contains("aborted by alice: support tickets rising"),
        "{s}"
    );
    let records = journal(&ws);
    let controls: Vec<_> = records
        .iter()
        .filter(|r| r["event"] == "control")
        .map(|r| {
            (
                r["command"].as_str().unwrap(),
                r["operator"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        controls,
        [("pause", "alice"), ("resume", "alice"), ("abort", "alice")]
    );
    let finished = records
        .iter()
        .find(|r| r["event"] == "stage-finished")
        .unwrap();
    assert!(
        finished["summary"]
            .as_str()
            .unwrap()
            .contains("aborted by alice: support tickets rising"),
        "{finished}"
    );
    let report = std::fs::read_to_string(
        local_runs(&ws.join("runs"))
            .pop()
            .unwrap()
            .join("report.md"),
    )
    .unwrap();
    assert!(report.contains("aborted by alice"), "{report}");
}

#[test]
fn promote_full_ends_a_running_canary_at_100_and_no_canary_means_a_clear_refusal() {
    let (dir, book) = workspace();
    let ws = dir.path().join("ws");
    let out = host(&ws, &book)
        .args(["canary", "pause", "--env", "staging"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no canary is running on `staging`"),
        "{stderr}"
    );

    let mut canary = start(&ws, &book);
    wait_for("the canary at 10%", Duration::from_secs(60), || {
        status(&ws, &book)["percent"] == 10
    });
    control(
        &ws,
        &book,
        &[
            "promote",
            "--full",
            "--env",
            "staging",
            "--reason",
            "metrics look great",
        ],
    );
    assert_eq!(canary.wait().unwrap().code(), Some(0));
    let s = status(&ws, &book);
    assert_eq!(s["percent"], 100);
    // On 8fddcc8 the canary's progress said "finished at 50%" with the flag at 100.
    assert_eq!(s["canary"]["percent"], 100, "{s}");
    assert_eq!(s["canary"]["last_action"], "promote --full", "{s}");
    assert!(
        s["canary"]["last_summary"]
            .as_str()
            .unwrap()
            .contains("promoted by"),
        "{s}"
    );
    let records = journal(&ws);
    assert!(
        records
            .iter()
            .any(|r| r["event"] == "effect-done" && r["key"] == "promote-full:100")
    );
}

/// From another machine: the canary's run is mirrored to S3 (moto), and an operator with
/// only the shared state pauses and aborts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_is_paused_and_aborted_from_another_machine_through_the_s3_state() {
    let moto = support::Moto::start();
    moto.s3()
        .await
        .create_bucket()
        .bucket("runs")
        .send()
        .await
        .unwrap();
    let (dir, book) = workspace();
    let text = std::fs::read_to_string(&book).unwrap().replace(
        "[environments.staging]",
        "state = \"s3://runs/launch\"\n\n[environments.staging]",
    );
    std::fs::write(&book, text).unwrap();
    let here = dir.path().join("here");
    let elsewhere = dir.path().join("elsewhere");
    let with_moto = |ws: &Path| {
        let mut c = host(ws, &book);
        for (k, v) in moto.env() {
            c.env(k, v);
        }
        c
    };
    let mut canary = with_moto(&here)
        .args(["canary", "start", "--env", "staging", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (h, b) = (here.clone(), book.clone());
    tokio::task::spawn_blocking(move || {
        wait_for("the canary at 10%", Duration::from_secs(60), || {
            status(&h, &b)["percent"] == 10
        })
    })
    .await
    .unwrap();
    let remote = |args: &[&str]| {
        let mut c = with_moto(&elsewhere);
        c.arg("canary").args(args).args([
            "--env",
            "staging",
            "--state",
            "s3://runs/launch",
            "--operator",
            "bob",
        ]);
        c
    };
    succeeds(remote(&["pause", "--reason", "checking a ticket"])).await;
    let (h, b) = (here.clone(), book.clone());
    tokio::task::spawn_blocking(move || {
        wait_for("the pause from elsewhere", Duration::from_secs(10), || {
            status(&h, &b)["canary"]["paused_by"] == "bob"
        })
    })
    .await
    .unwrap();
    succeeds(remote(&["abort", "--reason", "called off"])).await;
    let code = tokio::task::spawn_blocking(move || canary.wait().unwrap().code())
        .await
        .unwrap();
    assert_eq!(code, Some(3), "rolled back");
    assert_eq!(status(&here, &book)["percent"], 0);
    let controls: Vec<_> = journal(&here)
        .into_iter()
        .filter(|r| r["event"] == "control")
        .map(|r| {
            (
                r["command"].as_str().unwrap().to_string(),
                r["operator"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        controls,
        [
            ("pause".to_string(), "bob".to_string()),
            ("abort".to_string(), "bob".to_string())
        ]
    );
}

/// Runs `c` off the async runtime; it must exit 0.
async fn succeeds(mut c: Command) {
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
