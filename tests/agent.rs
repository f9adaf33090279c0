//! A launch outlives its runner: real `launch-host agent` processes stand by while real
//! runners are killed (`kill -9`) or frozen (`SIGSTOP`) mid-canary, with S3 (moto on
//! 127.0.0.1) the only thing they share — the run's lease, its journal and the flags. A target
//! on loopback follows the flag in S3, so the canary measures real traffic split by it.

mod support;

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::IntoResponse;
use support::*;

const FLAG: &str = "STATUS_BOARD_V2_ENABLED";

/// A service whose new version serves the share of requests the flag in S3 says — read every
/// 50 ms, as a static site's client would — answering `x-served-by: v2` or `v1`.
async fn flag_following_target(s3: aws_sdk_s3::Client) -> Server {
    let percent = Arc::new(AtomicU8::new(0));
    let seen = percent.clone();
    tokio::spawn(async move {
        loop {
            if let Some(bytes) = s3_object(&s3, "site", "flags.json").await
                && let Ok(flags) = serde_json::from_slice::<serde_json::Value>(&bytes)
            {
                seen.store(flags[FLAG].as_u64().unwrap_or(0) as u8, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let counter = Arc::new(AtomicU64::new(0));
    let app = Router::new().fallback(move || {
        let (percent, counter) = (percent.clone(), counter.clone());
        async move {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let v2 = (n % 100) < u64::from(percent.load(Ordering::SeqCst));
            ([("x-served-by", if v2 { "v2" } else { "v1" })], "ok").into_response()
        }
    });
    Server::start(app).await
}

/// The fleet's launch: a canary on production whose flags live in S3, mirrored with a 3 s
/// lease.
fn runbook(dir: &std::path::Path, target: &Server, step_ms: u64) -> String {
    let path = dir.join("launch.toml");
    std::fs::write(
        &path,
        format!(
            r#"[launch]
name = "fleet"
flag = "{FLAG}"
state = "s3://site/state"
lease-ttl = "3s"

[environments.production]
url = "{url}"
api-url = "{url}"
flags = "s3://site/flags.json"

[defaults]
probe-rate = 200

[[stage]]
name = "canary"
plugin = "canary-steps"
environment = "production"
interval = "250ms"
duration = "60s"
on-fail = "rollback"
config = {{ steps = [10, 30, 50, 100], step-duration-ms = {step_ms}, min-requests = 3 }}
"#,
            url = target.url("")
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Moto with the bucket, the flag off, and the target following it.
async fn fleet() -> (Moto, aws_sdk_s3::Client, Server) {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    s3.create_bucket().bucket("site").send().await.unwrap();
    set_flag(&s3, 0).await;
    let target = flag_following_target(moto.s3().await).await;
    (moto, s3, target)
}

async fn set_flag(s3: &aws_sdk_s3::Client, percent: u8) {
    s3.put_object()
        .bucket("site")
        .key("flags.json")
        .body(format!("{{\"{FLAG}\": {percent}}}").into_bytes().into())
        .send()
        .await
        .unwrap();
}

async fn flag(s3: &aws_sdk_s3::Client) -> u64 {
    let bytes = s3_object(s3, "site", "flags.json").await.unwrap();
    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()[FLAG]
        .as_u64()
        .unwrap()
}

/// An agent process; what it says goes to `<workspace>.log`.
struct Agent {
    child: Child,
    log: std::path::PathBuf,
}

fn agent(moto: &Moto, workspace: &std::path::Path) -> Agent {
    let log = workspace.with_extension("log");
    let out = std::fs::File::create(&log).unwrap();
    let child = launch_host_with(&moto.env())
        .args(["agent", "--state", "s3://site/state", "--poll", "250ms"])
        .arg("--plugins")
        .arg(repo().join("plugins"))
        .arg("--workspace")
        .arg(workspace)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    Agent { child, log }
}

impl Agent {
    fn said(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// What the agents said so far, for a failure's message.
fn said(agents: &[&Agent]) -> String {
    agents
        .iter()
        .map(|a| format!("--- {}\n{}", a.log.display(), a.said()))
        .collect()
}

/// A runner on this machine, or — `Some(host)` — on another one: a UTS namespace of its own
/// gives it another host name, so no agent can see its process and only its lease's silence
/// tells it is gone, as across machines.
fn runner(moto: &Moto, book: &str, runs: &std::path::Path, host: Option<&str>) -> Child {
    let launch_host = env!("CARGO_BIN_EXE_launch-host");
    let mut command = match host {
        None => launch_host_with(&moto.env()),
        Some(host) => {
            let c = launch_host_with(&moto.env());
            let mut unshared = std::process::Command::new("unshare");
            unshared
                .args([
                    "--uts",
                    "sh",
                    "-c",
                    r#"hostname "$1" && shift && exec "$@""#,
                    "sh",
                    host,
                ])
                .arg(launch_host)
                .envs(c.get_envs().filter_map(|(k, v)| Some((k, v?))))
                .stdin(Stdio::null());
            unshared
        }
    };
    command
        .args(["run", "--yes", "--plugins"])
        .arg(repo().join("plugins"))
        .args(["--runbook", book, "--runs-dir"])
        .arg(runs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("a runner (`unshare --uts` needs root for one on another host)")
}

/// The run's journal as mirrored in S3.
async fn mirrored(s3: &aws_sdk_s3::Client, run_id: &str) -> Vec<serde_json::Value> {
    let key = format!("state/launch/runs/{run_id}/journal.jsonl");
    String::from_utf8(s3_object(s3, "site", &key).await.unwrap_or_default())
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Whether the run ended and its copy is complete: its last word is in the shared journal, and
/// its lease — given up after the last upload — is gone.
async fn ended(s3: &aws_sdk_s3::Client, run_id: &str) -> bool {
    let lease = format!("state/launch/leases/{run_id}.json");
    mirrored(s3, run_id)
        .await
        .iter()
        .any(|r| r["event"] == "run-finished")
        && s3_object(s3, "site", &lease).await.is_none()
}

/// Waits for `what` within `limit`, checking every 25 ms; when it held. A failure shows what
/// the agents said.
async fn until<F, Fut>(what: &str, agents: &[&Agent], limit: Duration, mut check: F) -> Instant
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return Instant::now();
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not within {limit:?}\n{}",
            said(agents)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The run started in `runs` (its one folder).
fn run_id(runs: &std::path::Path) -> Option<String> {
    local_runs(runs)
        .pop()
        .map(|r| r.file_name().unwrap().to_string_lossy().into_owned())
}

fn stop(mut a: Agent) -> String {
    signal(a.child.id(), "-TERM");
    a.child.wait().unwrap();
    a.said()
}

/// `verify` of the run's S3 copy alone (fetched into a folder with no local copy).
fn verify_mirrored(moto: &Moto, run_id: &str, dir: &std::path::Path) -> (Option<i32>, String) {
    let runs = dir.join(format!("verify-{run_id}"));
    launch_host_output(
        &moto.env(),
        &[
            "verify",
            run_id,
            "--state",
            "s3://site/state",
            "--runs-dir",
            runs.to_str().unwrap(),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_mid_canary_is_taken_over_by_exactly_one_of_two_agents() {
    let (moto, s3, target) = fleet().await;
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path(), &target, 1500);
    let agents = [
        agent(&moto, &dir.path().join("agent-1")),
        agent(&moto, &dir.path().join("agent-2")),
    ];
    let watching = [&agents[0], &agents[1]];
    let trials: u64 = std::env::var("LAUNCH_HOST_TAKEOVER_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(6);
    // Odd trials: the runner on another host, found gone by its lease's silence alone.
    let (mut here, mut away) = (Vec::new(), Vec::new());
    for trial in 0..trials {
        set_flag(&s3, 0).await;
        let runs = dir.path().join(format!("runner-{trial}"));
        let elsewhere = trial % 2 == 1;
        let mut run = runner(&moto, &book, &runs, elsewhere.then_some("runner-b"));
        until("the canary on", &[], Duration::from_secs(60), || async {
            flag(&s3).await >= 10
        })
        .await;
        // A random moment in the canary: 0 to 2 s after its first step.
        let pause = (trial * 7919 + 13) % 2000;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        run.kill().unwrap(); // SIGKILL
        let killed = Instant::now();
        run.wait().unwrap();
        let safe = until(
            "the flag back at 0",
            &watching,
            Duration::from_secs(30),
            || async { flag(&s3).await == 0 },
        )
        .await;
        match elsewhere {
            true => away.push(safe - killed),
            false => here.push(safe - killed),
        }
        let id = run_id(&runs).expect("the runner's run folder");
        until(
            "the taken-over run's end",
            &watching,
            Duration::from_secs(30),
            || async { ended(&s3, &id).await },
        )
        .await;
        let journal = mirrored(&s3, &id).await;
        let takeovers: Vec<_> = journal
            .iter()
            .filter(|r| r["event"] == "taken-over")
            .collect();
        assert_eq!(takeovers.len(), 1, "exactly one taker: {takeovers:?}");
        assert_eq!(takeovers[0]["action"], "rollback", "a canary's default");
        let takers = watching
            .iter()
            .filter(|a| a.said().contains(&format!("took run {id}")))
            .count();
        assert_eq!(takers, 1, "one agent took run {id}:\n{}", said(&watching));
        let mut done = std::collections::HashSet::new();
        for r in journal.iter().filter(|r| r["event"] == "effect-done") {
            let key = format!("{}/{}", r["stage"], r["key"]);
            assert!(done.insert(key.clone()), "effect {key} done twice");
        }
        assert_eq!(last_word(&journal)["outcome"], "rolled-back");
        let (code, said) = verify_mirrored(&moto, &id, dir.path());
        assert_eq!(code, Some(0), "the taken-over journal verifies: {said}");
    }
    for agent in agents {
        stop(agent);
    }
    for (times, whose) in [(&mut here, "this host's"), (&mut away, "another host's")] {
        if times.is_empty() {
            continue;
        }
        times.sort();
        println!(
            "{} kills of {whose} runner → flag at 0: median {:?}, max {:?} (TTL 3 s, poll 250 ms)",
            times.len(),
            times[times.len() / 2],
            times[times.len() - 1]
        );
        assert!(
            *times.last().unwrap() <= Duration::from_secs(5),
            "within TTL + one interval: {times:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_frozen_past_its_lease_is_taken_over_and_makes_no_effect_when_it_wakes() {
    let (moto, s3, target) = fleet().await;
    let dir = tempfile::tempdir().unwrap();
    // Long steps: awake, the runner would promote soon after.
    let book = runbook(dir.path(), &target, 2000);
    let watcher = agent(&moto, &dir.path().join("agent"));
    let runs = dir.path().join("runner");
    let run = runner(&moto, &book, &runs, Some("runner-b"));
    until("the canary on", &[], Duration::from_secs(60), || async {
        flag(&s3).await >= 10
    })
    .await;
    signal(run.id(), "-STOP"); // a paused VM: alive, silent
    let frozen = Instant::now();
    let safe = until(
        "the agent's rollback",
        &[&watcher],
        Duration::from_secs(20),
        || async { flag(&s3).await == 0 },
    )
    .await;
    let taken = safe - frozen;
    assert!(
        taken >= Duration::from_secs(3),
        "a live owner's lease is taken only after its TTL: {taken:?}"
    );
    let id = run_id(&runs).unwrap();
    until(
        "the agent's end of the run",
        &[&watcher],
        Duration::from_secs(20),
        || async { ended(&s3, &id).await },
    )
    .await;
    let before = mirrored(&s3, &id).await;
    signal(run.id(), "-CONT");
    let out = run.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "the zombie stops as a host failure"
    );
    // It made no effect: the flag stays where the taker left it, its writes were fenced, the
    // shared journal is the taker's, and its own journal shows nothing done after waking.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(flag(&s3).await, 0);
    let after = mirrored(&s3, &id).await;
    assert_eq!(
        after.len(),
        before.len(),
        "the zombie wrote nothing into the shared journal"
    );
    let local = journal_of(&runs.join(&id));
    let woke = local
        .iter()
        .position(|r| r["event"] == "flag-restored" || r["event"] == "stage-finished")
        .expect("the zombie's last words");
    assert!(
        !local[woke..].iter().any(|r| r["event"] == "effect-done"),
        "no effect after waking: {:#?}",
        &local[woke..]
    );
    let finished = local
        .iter()
        .rev()
        .find(|r| r["event"] == "stage-finished")
        .unwrap();
    assert!(
        finished["summary"]
            .as_str()
            .unwrap()
            .contains("no longer holds the run's lease"),
        "{finished}"
    );
    let log = stop(watcher);
    assert!(log.contains(&format!("took run {id}")), "{log}");
    // The takeover is shown wherever the run is: the fleet view, `status`, the reports.
    let ws = dir.path().join("reader");
    let state = [
        "--state",
        "s3://site/state",
        "--workspace",
        ws.to_str().unwrap(),
    ];
    let (code, fleet) = launch_host_output(
        &moto.env(),
        &[&["status", "--output", "json"][..], &state].concat(),
    );
    assert_eq!(code, Some(0), "{fleet}");
    let rows: serde_json::Value = serde_json::from_str(&fleet).unwrap();
    assert_eq!(rows[0]["run_id"], id.as_str());
    assert_eq!(rows[0]["outcome"], "rolled-back", "{rows:#}");
    assert!(
        rows[0]["takeovers"][0]["from"]
            .as_str()
            .unwrap()
            .contains(" on runner-b "),
        "{rows:#}"
    );
    let (code, status) = launch_host_output(&moto.env(), &[&["status", &id][..], &state].concat());
    assert_eq!(code, Some(0), "{status}");
    assert!(status.contains("taken over by pid "), "{status}");
    assert!(
        status.contains("it rolled the stage in progress back"),
        "{status}"
    );
    let report = s3_object(&s3, "site", &format!("state/launch/runs/{id}/report.md"))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&report).contains("## Taken over"));
    println!("frozen runner → flag at 0 by the agent after {taken:?} (TTL 3 s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombies_flag_write_after_a_takeover_is_refused_by_the_fence_and_journaled() {
    let (moto, s3, target) = fleet().await;
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path(), &target, 1500);
    let watcher = agent(&moto, &dir.path().join("agent"));
    let runs = dir.path().join("runner");
    // The worst moment to freeze: after the lease was confirmed in S3 and the effect announced,
    // before the flag write itself (a debug build's fault point stops the renewals and sleeps
    // 2 × TTL + 1 s there). Every check said yes; only the store's fence is left to refuse.
    let zombie = launch_host_with(&moto.env())
        .env("LAUNCH_HOST_FAULT", "freeze-before-effect")
        .args(["run", "--yes", "--plugins"])
        .arg(repo().join("plugins"))
        .args(["--runbook", &book, "--runs-dir"])
        .arg(&runs)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    until(
        "the run folder",
        &[&watcher],
        Duration::from_secs(30),
        || async { run_id(&runs).is_some() },
    )
    .await;
    let id = run_id(&runs).unwrap();
    until(
        "the agent's end of the run",
        &[&watcher],
        Duration::from_secs(30),
        || async { ended(&s3, &id).await },
    )
    .await;
    let out = zombie.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{said}");
    // Its write of 10 % came after the agent's rollback and was refused by the fence.
    assert_eq!(
        flag(&s3).await,
        0,
        "the zombie's late write moved the flag: {said}"
    );
    let local = journal_of(&runs.join(&id));
    let started = local
        .iter()
        .filter(|r| r["event"] == "effect-started")
        .count();
    assert_eq!(started, 1, "the zombie tried one write: {local:#?}");
    assert!(
        !local.iter().any(|r| r["event"] == "effect-done"),
        "{local:#?}"
    );
    let finished = local
        .iter()
        .rev()
        .find(|r| r["event"] == "stage-finished")
        .unwrap();
    let why = finished["summary"].as_str().unwrap();
    assert!(
        why.contains("fenced:") && why.contains("generation 2"),
        "{why}"
    );
    assert!(said.contains("fenced:"), "the operator is told: {said}");
    stop(watcher);
}
