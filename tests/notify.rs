//! Notifications: the guide's channels and escalation levels, delivered by the real binary to
//! loopback webhook receivers — one healthy, one that answers 500 before 200, one that hangs.
//! A notification never delays a rollback, and a webhook's URL never reaches a file or the
//! console.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::post;
use support::{Server, launch_host_with, local_runs, repo};

/// The secret part of every webhook URL: must never be written anywhere.
const TOKEN: &str = "T0SECRET-B0HOOK-xyzzy";

#[derive(Default)]
struct Received {
    /// Channel → JSON bodies, in arrival order.
    bodies: BTreeMap<String, Vec<serde_json::Value>>,
    /// Channel → attempts, answered or not.
    attempts: BTreeMap<String, usize>,
    per_message: BTreeMap<String, usize>,
}

type Inbox = Arc<Mutex<Received>>;

async fn receive(
    State(inbox): State<Inbox>,
    UrlPath((channel, token)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> StatusCode {
    assert_eq!(token, TOKEN);
    let json: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
    // Attempts per message (messages to one channel are sent concurrently).
    let attempt = {
        let mut r = inbox.lock().unwrap();
        *r.attempts.entry(channel.clone()).or_default() += 1;
        let n = r.per_message.entry(json.to_string()).or_default();
        *n += 1;
        *n
    };
    match channel.as_str() {
        // Flaky: the first attempt of every message fails.
        "alerts" if attempt == 1 => return StatusCode::INTERNAL_SERVER_ERROR,
        // Dead: never answers.
        "emergency" => tokio::time::sleep(Duration::from_secs(120)).await,
        _ => {}
    }
    inbox
        .lock()
        .unwrap()
        .bodies
        .entry(channel)
        .or_default()
        .push(json);
    StatusCode::OK
}

async fn receiver() -> (Server, Inbox) {
    let inbox = Inbox::default();
    let app = Router::new()
        .route("/hooks/{channel}/{token}", post(receive))
        .with_state(inbox.clone());
    (Server::start(app).await, inbox)
}

fn runbook(dir: &Path, stages: &str) -> PathBuf {
    let path = dir.join("launch.toml");
    std::fs::write(
        &path,
        format!(
            r#"[launch]
name = "StatusBoardV2"
flag = "STATUS_BOARD_V2_ENABLED"

[environments.staging]
target = "embedded"

[environments.production]
target = "embedded"

[defaults]
probe-rate = 100

[notify]
on-call = "@oncall-frontend"
leadership = "@eng-leads"
retries = 3
deadline = "2s"

[notify.channels.releases]
slack = "${{SLACK_RELEASES_WEBHOOK}}"

[notify.channels.alerts]
slack = "${{SLACK_ALERTS_WEBHOOK}}"

[notify.channels.statusboard-emergency]
webhook = "${{EMERGENCY_WEBHOOK}}"

{stages}
"#
        ),
    )
    .unwrap();
    path
}

/// Runs the binary off the async runtime (the receiver keeps serving); returns the exit code
/// and everything it printed.
async fn launch(server: &Server, ws: &Path, book: &Path, args: &[&str]) -> (Option<i32>, String) {
    let hook = |c: &str| server.url(&format!("/hooks/{c}/{TOKEN}"));
    let mut cmd = launch_host_with(&[
        ("SLACK_RELEASES_WEBHOOK", hook("releases")),
        ("SLACK_ALERTS_WEBHOOK", hook("alerts")),
        ("EMERGENCY_WEBHOOK", hook("emergency")),
        (
            "LAUNCH_HOST_PLUGINS",
            repo().join("plugins").display().to_string(),
        ),
        ("LAUNCH_HOST_RUNBOOK", book.display().to_string()),
        ("LAUNCH_HOST_WORKSPACE", ws.display().to_string()),
    ]);
    cmd.args(args).arg("--yes");
    if args[0] == "run" {
        cmd.arg("--runs-dir").arg(ws.join("runs"));
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

fn everything_written(ws: &Path) -> String {
    let mut all = String::new();
    for run in local_runs(&ws.join("runs")) {
        for entry in std::fs::read_dir(&run).unwrap().flatten() {
            if entry.path().is_file() {
                all.push_str(&String::from_utf8_lossy(
                    &std::fs::read(entry.path()).unwrap(),
                ));
            }
        }
    }
    all
}

fn notified(ws: &Path) -> Vec<serde_json::Value> {
    let run = local_runs(&ws.join("runs")).pop().unwrap();
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "notified")
        .collect()
}

fn texts(inbox: &Inbox, channel: &str) -> Vec<String> {
    inbox
        .lock()
        .unwrap()
        .bodies
        .get(channel)
        .into_iter()
        .flatten()
        .map(|b| b["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_hear_every_verdict_and_alerts_hear_an_auto_rollback_through_a_flaky_webhook() {
    let (server, inbox) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let book = runbook(
        dir.path(),
        r#"[[stage]]
name = "staging-deploy"
action = "deploy"
environment = "staging"
site = "statusboard-v2"

[[stage]]
name = "staging-canary"
plugin = "canary-steps"
environment = "staging"
interval = "200ms"
on-fail = "rollback"
config = { steps = [10, 100], step-duration-ms = 200, min-requests = 3 }
"#,
    );
    let (code, out) = launch(&server, &ws, &book, &["run"]).await;
    assert_eq!(code, Some(0), "{out}");
    let releases = texts(&inbox, "releases");
    assert_eq!(
        releases.len(),
        4,
        "started, two verdicts, complete: {releases:?}"
    );
    assert!(
        releases[0].contains("run ") && releases[0].contains("started"),
        "{releases:?}"
    );
    assert!(
        releases[1].contains("`staging-deploy`: PASS"),
        "{releases:?}"
    );
    assert!(releases[3].contains("launch complete"), "{releases:?}");
    assert!(
        texts(&inbox, "alerts").is_empty(),
        "a healthy launch alerts no one"
    );

    // The same canary with V2 failing: an automatic rollback, level 1, with rule and numbers.
    let (code, out) = launch(&server, &ws, &book, &["run", "--inject", "v2-errors=100%"]).await;
    assert_eq!(code, Some(3), "{out}");
    let alerts = texts(&inbox, "alerts");
    let rollback = alerts
        .iter()
        .find(|t| t.contains("L1"))
        .expect("an auto-rollback alert");
    assert!(
        rollback.contains("auto-rollback")
            && rollback.contains("error-rate")
            && rollback.contains("exceeds 1 %"),
        "{rollback}"
    );
    assert!(
        alerts
            .iter()
            .any(|t| t.contains("gate `staging-canary` FAIL")),
        "{alerts:?}"
    );
    // Every alert was refused once (500) and delivered on the retry; the journal says so.
    let journaled: Vec<_> = notified(&ws)
        .into_iter()
        .filter(|n| n["channel"] == "alerts")
        .collect();
    assert_eq!(journaled.len(), alerts.len());
    assert!(
        journaled
            .iter()
            .all(|n| n["delivered"] == true && n["attempts"] == 2),
        "{journaled:?}"
    );
    assert!(
        texts(&inbox, "releases")
            .iter()
            .any(|t| t.contains("ROLLED-BACK"))
    );

    let written = everything_written(&ws);
    assert!(!written.contains(TOKEN), "a webhook URL reached a run file");
    assert!(!out.contains(TOKEN), "a webhook URL reached the console");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_webhook_never_delays_a_rollback_and_both_environments_escalate_to_level_3() {
    let (server, inbox) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    // A gate with no environment and no data, rolled back on failure: both environments.
    let book = runbook(
        dir.path(),
        r#"[[stage]]
name = "slo-gate"
plugin = "slo-thresholds"
on-fail = "rollback"
"#,
    );
    let started = Instant::now();
    let (code, out) = launch(
        &server,
        &ws,
        &book,
        &[
            "rollback",
            "emergency",
            "--env",
            "production",
            "--reason",
            "SLO breach detected",
        ],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(code, Some(0), "{out}");
    // The flag moved before any webhook was waited for: its effect is journaled at once.
    let run = local_runs(&ws.join("runs")).pop().unwrap();
    let records: Vec<serde_json::Value> = std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        records
            .iter()
            .find(|r| pred(r))
            .map(|r| r["at"].as_u64().unwrap())
            .unwrap()
    };
    let begun = at(&|r| r["event"] == "run-started");
    let flag_at_0 = at(&|r| {
        r["event"] == "effect-done"
            && r["key"]
                .as_str()
                .unwrap()
                .starts_with("rollback:emergency:")
    });
    assert!(
        flag_at_0 - begun < 1_000,
        "the rollback took {} ms",
        flag_at_0 - begun
    );
    // The dead webhook got its 2 s and was journaled as undelivered; the command still ended.
    assert!(took < Duration::from_secs(15), "{took:?}");
    let dead: Vec<_> = notified(&ws)
        .into_iter()
        .filter(|n| n["channel"] == "statusboard-emergency")
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["delivered"], false);
    assert_eq!(dead[0]["level"], 2);
    assert!(
        dead[0]["error"]
            .as_str()
            .unwrap()
            .contains("gave up after 2s"),
        "{dead:?}"
    );
    assert!(inbox.lock().unwrap().attempts["emergency"] >= 1);

    // The gate without an environment fails and rolls back both: level 3, leadership mentioned.
    let (code, out) = launch(&server, &ws, &book, &["run"]).await;
    assert_eq!(code, Some(3), "{out}");
    let n = notified(&ws);
    let l3: Vec<_> = n.iter().filter(|n| n["level"] == 3).collect();
    assert_eq!(l3.len(), 1, "{n:?}");
    assert_eq!(l3[0]["what"], "both-environments");
    assert_eq!(l3[0]["channel"], "statusboard-emergency");
    let l1 = n
        .iter()
        .filter(|n| n["level"] == 1 && n["what"] == "auto-rollback")
        .count();
    assert_eq!(l1, 2, "one automatic rollback per environment: {n:?}");
    assert!(!everything_written(&ws).contains(TOKEN));
}

/// Runs the binary with every channel's webhook pointing at `hooks(channel)`, reading its
/// stderr as it comes: each line with when it came, then the exit code.
fn launch_watching(
    hooks: &dyn Fn(&str) -> String,
    ws: &Path,
    book: &Path,
    args: &[&str],
    mut on_line: impl FnMut(&str),
) -> (Option<i32>, Vec<(Duration, String)>) {
    use std::io::BufRead;
    let mut cmd = launch_host_with(&[
        ("SLACK_RELEASES_WEBHOOK", hooks("releases")),
        ("SLACK_ALERTS_WEBHOOK", hooks("alerts")),
        ("EMERGENCY_WEBHOOK", hooks("emergency")),
        ("LAUNCH_HOST_RUNBOOK", book.display().to_string()),
        ("LAUNCH_HOST_WORKSPACE", ws.display().to_string()),
    ]);
    cmd.args(args)
        .arg("--yes")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        on_line(&line);
        lines.push((started.elapsed(), line));
    }
    (child.wait().unwrap().code(), lines)
}

const DEPLOYS: &str = r#"[[stage]]
name = "staging-deploy"
action = "deploy"
environment = "staging"
site = "statusboard-v2"

[[stage]]
name = "production-deploy"
action = "deploy"
environment = "production"
site = "statusboard-v2"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_rollback_says_the_flag_is_at_0_at_once_and_what_it_still_waits_for() {
    let (server, inbox) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let book = runbook(dir.path(), DEPLOYS);
    let url = server.url("");
    let hook = move |c: &str| format!("{url}/hooks/{c}/{TOKEN}");
    let (b, w) = (book.clone(), ws.clone());
    let (code, lines) = tokio::task::spawn_blocking(move || {
        launch_watching(
            &hook,
            &w,
            &b,
            &[
                "rollback",
                "emergency",
                "--env",
                "production",
                "--reason",
                "pager",
            ],
            |_| {},
        )
    })
    .await
    .unwrap();
    let said = lines
        .iter()
        .map(|(_, l)| l.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(code, Some(0), "{said}");
    let at = |needle: &str| {
        lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
            .unwrap_or_else(|| panic!("no line with {needle:?}: {said}"))
    };
    // The flag at 0 is said the moment it is, not after the dead webhook's deadline (2 s).
    let flag_said = at("STATUS_BOARD_V2_ENABLED on production is at 0%");
    let waiting = at("waiting up to 2s for");
    let last = lines.last().unwrap().0;
    println!(
        "flag at 0 said after {flag_said:?}; what it waits for said after {waiting:?}; command ended after {last:?}"
    );
    assert!(
        flag_said < Duration::from_millis(1500),
        "{flag_said:?}\n{said}"
    );
    assert!(waiting < Duration::from_millis(1500), "{waiting:?}\n{said}");
    assert!(
        last >= Duration::from_secs(2),
        "the webhook got its deadline"
    );
    assert!(
        said.contains("#statusboard-emergency (manual-rollback)"),
        "{said}"
    );
    assert!(
        said.contains("notification `manual-rollback` to #statusboard-emergency was NOT delivered"),
        "{said}"
    );
    // A rollback is not a launch; and people's channels hear environments, not paths.
    let releases = texts(&inbox, "releases");
    let end = releases.last().unwrap();
    assert!(
        end.contains("rolled back in production") && !end.contains("launch complete"),
        "{releases:?}"
    );
    let everything: Vec<String> = ["releases", "alerts", "emergency"]
        .iter()
        .flat_map(|c| texts(&inbox, c))
        .collect();
    let ws_path = ws.display().to_string();
    assert!(
        everything
            .iter()
            .all(|t| !t.contains(&ws_path) && !t.contains("flags.json")),
        "{everything:?}"
    );
    // The undelivered page is in every report, not only in the journal.
    let run = local_runs(&ws.join("runs")).pop().unwrap();
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("## Notifications not delivered")
            && md.contains("#statusboard-emergency: `manual-rollback` (L2)"),
        "{md}"
    );
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("Notifications not delivered"), "report.html");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["undelivered"][0]["what"], "manual-rollback", "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_environment_stays_locked_while_only_notifications_are_pending() {
    let (server, _inbox) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let book = runbook(dir.path(), DEPLOYS);
    // Every channel is the one that never answers.
    let url = server.url("");
    let dead = move |_: &str| format!("{url}/hooks/emergency/{TOKEN}");
    let (b, w) = (book.clone(), ws.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let first = tokio::task::spawn_blocking(move || {
        launch_watching(&dead, &w, &b, &["deploy", "staging"], |line| {
            if line.contains("waiting up to") {
                let _ = tx.send(());
            }
        })
    });
    tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    // The first deploy is only waiting for its webhooks: a second one takes the environment.
    let url = server.url("");
    let dead = move |_: &str| format!("{url}/hooks/emergency/{TOKEN}");
    let (b, w) = (book.clone(), ws.clone());
    let (code, lines) = tokio::task::spawn_blocking(move || {
        launch_watching(&dead, &w, &b, &["deploy", "staging"], |_| {})
    })
    .await
    .unwrap();
    let said: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(code, Some(0), "not refused with exit 5: {said:?}");
    assert_eq!(first.await.unwrap().0, Some(0));
}

#[test]
fn notify_limits_are_refused_at_their_own_line() {
    let dir = tempfile::tempdir().unwrap();
    for (edit, line, what) in [
        (
            "retries = 3",
            "retries = 11",
            "notify.retries `11` is out of range",
        ),
        (
            "deadline = \"2s\"",
            "deadline = \"7d\"",
            "notify.deadline `7d` is out of range",
        ),
    ] {
        let book = runbook(
            dir.path(),
            "[[stage]]\nname = \"d\"\naction = \"deploy\"\nenvironment = \"staging\"\n",
        );
        let text = std::fs::read_to_string(&book).unwrap().replace(edit, line);
        std::fs::write(&book, &text).unwrap();
        let expected_line = text.lines().position(|l| l == line).unwrap() + 1;
        let hook = ("https://hooks.example.com/x".to_string(),);
        let env = [
            ("SLACK_RELEASES_WEBHOOK", hook.0.clone()),
            ("SLACK_ALERTS_WEBHOOK", hook.0.clone()),
            ("EMERGENCY_WEBHOOK", hook.0.clone()),
        ];
        let (code, said) = support::launch_host_output(
            &env,
            &[
                "validate",
                "--plugins",
                repo().join("plugins").to_str().unwrap(),
                "--runbook",
                book.to_str().unwrap(),
            ],
        );
        assert_eq!(code, Some(2), "{said}");
        assert!(
            said.contains(&format!("launch.toml:{expected_line}: {what}")),
            "{said}"
        );
    }
}
