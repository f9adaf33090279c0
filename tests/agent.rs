//! A launch outlives its runner: real `launch-host agent` processes stand by while real
//! runners are killed (`kill -9`) or frozen (`SIGSTOP`) mid-canary, with S3 (moto on
//! 127.0.0.1) the only thing they share — the run's lease, its journal and the flags. A target
//! on loopback follows the flag in S3, so the canary measures real traffic split by it.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::fleet::*;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_mid_canary_is_taken_over_by_exactly_one_of_two_agents() {
    let (moto, s3, target) = fleet().await;
    let env = moto.env();
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path(), &target, 1500);
    let agents = [
        agent(&env, &dir.path().join("agent-1")),
        agent(&env, &dir.path().join("agent-2")),
    ];
    let watching = [&agents[0], &agents[1]];
    let trials: u64 = std::env::var("LAUNCH_HOST_TAKEOVER_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(6);
    // Odd trials: the runner on another host, found gone by its lease's silence alone.
    let (mut here, mut away) = (Vec::new(), Vec::new());
    for trial in 0..trials {
        let elsewhere = trial % 2 == 1;
        let took = kill_trial(&env, &s3, &book, dir.path(), trial, elsewhere, &watching).await;
        match elsewhere {
            true => away.push(took),
            false => here.push(took),
        }
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
    let env = moto.env();
    let dir = tempfile::tempdir().unwrap();
    // Long steps: awake, the runner would promote soon after.
    let book = runbook(dir.path(), &target, 2000);
    let watcher = agent(&env, &dir.path().join("agent"));
    let runs = dir.path().join("runner");
    let run = runner(&env, &book, &runs, Some("runner-b"));
    until(
        "the canary on",
        &[&run],
        Duration::from_secs(60),
        || async { flag(&s3).await >= 10 },
    )
    .await;
    signal(run.child.id(), "-STOP"); // a paused VM: alive, silent
    let frozen = Instant::now();
    let safe = until(
        "the agent's rollback",
        &[&watcher],
        Duration::from_secs(20),
        || async { flag(&s3).await == 0 },
    )
    .await;
    let taken = safe - frozen;
    // The lease is taken a whole TTL (3 s) after its last renewal was seen, and that renewal
    // may precede the freeze by up to TTL/3 (the renewal period): never sooner than 2 s after
    // it. CI once saw 2.99 s against a bound of 3 s that ignored the renewal period.
    assert!(
        taken >= Duration::from_secs(2),
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
    signal(run.child.id(), "-CONT");
    let mut run = run;
    let status = run.child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(4),
        "the zombie stops as a host failure: {}",
        said(&[&run])
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
    zombie_write_is_fenced(Store::Percentages).await;
}

/// The same zombie, its flag a flagd definition in S3 (what flagd syncs): the fence lives in
/// the object's metadata just as for the plain map.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombies_write_to_a_flagd_object_is_refused_by_the_fence() {
    zombie_write_is_fenced(Store::Flagd).await;
}

/// Where the fleet's flag is kept.
#[derive(Clone, Copy)]
enum Store {
    /// `s3://site/flags.json`, a map of percentages.
    Percentages,
    /// `s3://site/flagd.json`, a flagd definition.
    Flagd,
}

impl Store {
    fn runbook_lines(self) -> &'static str {
        match self {
            Store::Percentages => "flags = \"s3://site/flags.json\"",
            Store::Flagd => {
                "flags = \"flagd\"\n[environments.production.flagd]\nobject = \"s3://site/flagd.json\""
            }
        }
    }

    /// The flag's percentage as its readers see it.
    async fn read(self, s3: &aws_sdk_s3::Client) -> u64 {
        match self {
            Store::Percentages => flag(s3).await,
            Store::Flagd => {
                let bytes = s3_object(s3, "site", "flagd.json")
                    .await
                    .expect("the definition");
                let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let rule = &doc["flags"][FLAG]["targeting"]["fractional"];
                assert_eq!(rule[0][0], "on", "{doc}");
                rule[0][1].as_u64().unwrap()
            }
        }
    }
}

async fn zombie_write_is_fenced(store: Store) {
    let (moto, s3, target) = fleet().await;
    let env = moto.env();
    let dir = tempfile::tempdir().unwrap();
    let book = runbook_with_flags(dir.path(), &target, 1500, store.runbook_lines());
    let watcher = agent(&env, &dir.path().join("agent"));
    let runs = dir.path().join("runner");
    // The worst moment to freeze: after the lease was confirmed in S3 and the effect announced,
    // before the flag write itself (a debug build's fault point stops the renewals and sleeps
    // 2 × TTL + 1 s there). Every check said yes; only the store's fence is left to refuse.
    let log = runs.with_extension("log");
    let words = std::fs::File::create(&log).unwrap();
    let child = launch_host_with(&moto.env())
        .env("LAUNCH_HOST_FAULT", "freeze-before-effect")
        .args(["run", "--yes", "--plugins"])
        .arg(plugins())
        .args(["--runbook", &book, "--runs-dir"])
        .arg(&runs)
        .stdout(Stdio::null())
        .stderr(words)
        .spawn()
        .unwrap();
    let mut zombie = Runner { child, log };
    until(
        "the run folder",
        &[&watcher, &zombie],
        Duration::from_secs(30),
        || async { run_id(&runs).is_some() },
    )
    .await;
    let id = run_id(&runs).unwrap();
    until(
        "the agent's end of the run",
        &[&watcher, &zombie],
        Duration::from_secs(30),
        || async { ended(&s3, &id).await },
    )
    .await;
    let status = zombie.child.wait().unwrap();
    let said = said(&[&zombie]);
    assert_eq!(status.code(), Some(4), "{said}");
    // Its write of 10 % came after the agent's rollback and was refused by the fence.
    assert_eq!(
        store.read(&s3).await,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_flags_live_on_its_runners_machine_is_left_to_it() {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    s3.create_bucket().bucket("site").send().await.unwrap();
    let env = moto.env();
    let target = plain_server().await;
    let dir = tempfile::tempdir().unwrap();
    // Mirrored, but its flags are a file in the runner's workspace: no agent can reach them.
    let book = dir.path().join("launch.toml");
    std::fs::write(
        &book,
        format!(
            r#"[launch]
name = "local-flags"
flag = "{FLAG}"
state = "s3://site/state"
lease-ttl = "1s"

[environments.production]
url = "{url}"
api-url = "{url}"

[[stage]]
name = "bake"
action = "wait"
environment = "production"
duration = "60s"
"#,
            url = target.url("")
        ),
    )
    .unwrap();
    let watcher = agent(&env, &dir.path().join("agent"));
    let runs = dir.path().join("runner");
    let mut run = runner(&env, book.to_str().unwrap(), &runs, None);
    let lease = || async {
        let id = run_id(&runs)?;
        let bytes = s3_object(&s3, "site", &format!("state/launch/leases/{id}.json")).await?;
        serde_json::from_slice::<serde_json::Value>(&bytes).ok()
    };
    until(
        "the run's lease",
        &[&watcher, &run],
        Duration::from_secs(30),
        || async { lease().await.is_some() },
    )
    .await;
    run.child.kill().unwrap(); // its process gone: an agent of this machine would take it at once
    run.child.wait().unwrap();
    // Several TTLs and polls later, the lease is still the dead runner's.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = lease().await.expect("the lease stays");
    assert_eq!(held["generation"], 1, "{held}");
    assert_eq!(
        held["stays"],
        "environment `production`: its flags are a file in the runner's workspace"
    );
    let log = stop(watcher);
    let said = "cannot be taken over from another machine (environment `production`: its flags are a file in the runner's workspace); resume it where it started";
    assert_eq!(log.matches(said).count(), 1, "said once: {log}");
    assert!(!log.contains("took run"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_leaves_the_fleet_snapshot_so_no_operator_reads_every_summary() {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    s3.create_bucket().bucket("site").send().await.unwrap();
    for i in 0..20 {
        let id = format!("20261203T1200{i:02}000Z-{i:04x}");
        let summary = serde_json::json!({
            "run_id": id, "launch": "fleet", "environments": ["production"],
            "runbook": "launch.toml → `run`", "started_ms": 1, "outcome": "passed",
            "summary": "all 1 stages passed", "stages_finished": 1, "stages_planned": 1,
            "resumes": 0, "records": 9
        });
        s3.put_object()
            .bucket("site")
            .key(format!("state/launch/index/{id}.json"))
            .body(summary.to_string().into_bytes().into())
            .send()
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let watcher = agent(&moto.env(), &dir.path().join("agent"));
    until(
        "the fleet snapshot",
        &[&watcher],
        Duration::from_secs(20),
        || async {
            s3_object(&s3, "site", "state/launch/fleet.json")
                .await
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|s| s["entries"].as_object().map(|e| e.len()) == Some(20))
        },
    )
    .await;
    stop(watcher);
}
