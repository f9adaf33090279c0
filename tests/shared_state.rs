//! State shared between machines through S3 (moto on 127.0.0.1): flags kept as a JSON object,
//! the run lock object written with `If-None-Match: *`, and runs mirrored so `status`,
//! `report` and `resume` work from another machine. "Another machine" is another process
//! with its own runs folder.

mod support;

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use support::*;

fn host(moto: &Moto) -> std::process::Command {
    launch_host_with(&moto.env())
}

fn plugins() -> String {
    repo().join("plugins").display().to_string()
}

fn write_runbook(dir: &std::path::Path, moto: &Moto, env_extra: &str, stages: &str) -> String {
    let text = format!(
        "[launch]\nname = \"x\"\nflag = \"STATUS_BOARD_V2_ENABLED\"\n\
         [environments.production]\nurl = \"{e}/site\"\napi-url = \"{e}/site\"\n{env_extra}\n{stages}",
        e = moto.endpoint
    );
    let path = dir.join("launch.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn wait_stage(name: &str, duration: &str) -> String {
    format!(
        "[[stage]]\nname = \"{name}\"\naction = \"wait\"\nenvironment = \"production\"\nduration = \"{duration}\"\n"
    )
}

fn start_run(moto: &Moto, book: &str, runs: &std::path::Path) -> Child {
    host(moto)
        .args(["run", "--yes", "--plugins", &plugins(), "--runbook", book])
        .args(["--runs-dir", runs.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Moto with a bucket `site`, and a runbook whose production store is in it with `stages`.
async fn site_with(stages: &str) -> (Moto, aws_sdk_s3::Client, tempfile::TempDir, String) {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    s3.create_bucket().bucket("site").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let book = write_runbook(dir.path(), &moto, "store = \"s3://site\"", stages);
    (moto, s3, dir, book)
}

async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    s3_object(s3, bucket, key).await
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &str) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .unwrap();
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn a_state_bucket_that_does_not_exist_is_a_configuration_error() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("launch.toml");
    std::fs::write(
        &book,
        format!(
            "[launch]\nname = \"x\"\nflag = \"F\"\nstate = \"s3://no-such-bucket/launch\"\n\
             [environments.production]\nurl = \"{e}/site\"\napi-url = \"{e}/site\"\n{}",
            wait_stage("pause", "10ms"),
            e = moto.endpoint
        ),
    )
    .unwrap();
    let runs = dir.path().join("runs");
    let out = host(&moto)
        .args(["run", "--yes", "--plugins", &plugins(), "--runbook"])
        .arg(&book)
        .args(["--runs-dir", runs.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-bucket"), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(&runs)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "a refused run leaves no run folder: {left:?}"
    );
}

#[tokio::test]
async fn emergency_rollback_through_s3_flags_keeps_the_other_flags() {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    s3.create_bucket().bucket("flags").send().await.unwrap();
    put(
        &s3,
        "flags",
        "config/flags.json",
        r#"{"STATUS_BOARD_V2_ENABLED": 50, "STATUS_BOARD_V2_DRAWER": 100}"#,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let book = write_runbook(
        dir.path(),
        &moto,
        "flags = \"s3://flags/config/flags.json\"",
        &wait_stage("idle", "10ms"),
    );
    let ws = dir.path().join("ws");
    let out = host(&moto)
        .args(["rollback", "emergency", "--reason", "SLO breach detected"])
        .args(["--plugins", &plugins(), "--runbook", &book])
        .args(["--workspace", ws.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let flags: serde_json::Value =
        serde_json::from_slice(&get(&s3, "flags", "config/flags.json").await.unwrap()).unwrap();
    assert_eq!(flags["STATUS_BOARD_V2_ENABLED"], 0, "{flags}");
    assert_eq!(
        flags["STATUS_BOARD_V2_DRAWER"], 100,
        "other flags kept: {flags}"
    );
    let head = s3
        .head_object()
        .bucket("flags")
        .key("config/flags.json")
        .send()
        .await
        .unwrap();
    assert_eq!(head.cache_control(), Some("no-cache"));
    let run = local_runs(&ws.join("runs"))
        .pop()
        .expect("the rollback is a run");
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("SLO breach detected") && journal.contains("s3://flags/config/flags.json"),
        "the reason and the flag store are journaled: {journal}"
    );
}

#[tokio::test]
async fn the_s3_lock_admits_exactly_one_of_three_machines() {
    let (moto, s3, dir, book) = site_with(&wait_stage("hold", "3s")).await;
    // Three machines: three runs folders, so only the S3 lock can exclude them.
    let children: Vec<Child> = (0..3)
        .map(|i| start_run(&moto, &book, &dir.path().join(format!("machine-{i}"))))
        .collect();
    let started = Instant::now();
    let mut lock_seen = None;
    while started.elapsed() < Duration::from_secs(20) {
        if let Some(b) = get(&s3, "site", "launch/lock").await {
            lock_seen = Some(String::from_utf8(b).unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let holder = lock_seen.expect("the lock object exists while a run holds it");
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == Some(5)).count(),
        2,
        "{codes:?}"
    );
    let holder: serde_json::Value = serde_json::from_str(&holder).unwrap();
    for o in outs.iter().filter(|o| o.status.code() == Some(5)) {
        let e = stderr(o);
        assert!(
            e.contains(&format!(
                "locked by run {}",
                holder["run_id"].as_str().unwrap()
            )) && e.contains("s3://site/launch/lock")
                && e.contains(" since "),
            "{e}"
        );
    }
    assert!(
        get(&s3, "site", "launch/lock").await.is_none(),
        "the lock is released when the run ends"
    );
}

#[tokio::test]
async fn an_expired_lock_is_taken_over() {
    let (moto, s3, dir, book) = site_with(&wait_stage("w", "10ms")).await;
    put(
        &s3,
        "site",
        "launch/lock",
        r#"{"run_id":"gone","pid":1,"host":"elsewhere","since_ms":1,"expires_ms":2}"#,
    )
    .await;
    let out = start_run(&moto, &book, &dir.path().join("runs"))
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[tokio::test]
async fn another_machine_reads_status_and_report_and_resumes_the_run() {
    let stages = format!(
        "{}{}{}",
        wait_stage("first", "10ms"),
        wait_stage("long", "3s"),
        wait_stage("last", "10ms")
    );
    let (moto, s3, dir, book) = site_with(&stages).await;
    let mut a = start_run(&moto, &book, &dir.path().join("machine-a"));

    // Wait until the mirrored journal shows the long stage started — and its summary, written
    // after each journal upload (so up to one upload behind), shows it too — then kill A.
    let run_id = mirrored_at(&s3, "long").await;
    let summary = format!("launch/index/{run_id}.json");
    let started = Instant::now();
    while !get(&s3, "site", &summary)
        .await
        .is_some_and(|b| String::from_utf8_lossy(&b).contains(r#""stage":"long""#))
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the summary never showed the long stage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.kill().unwrap();
    a.wait().unwrap();

    let state = ["--state", "s3://site"];
    let b_runs = dir.path().join("machine-b");
    // The fleet view lists it from its summary, still held by the dead runner's lease.
    let fleet = host(&moto)
        .args(["status", "--output", "json"])
        .args(state)
        .args(["--workspace", dir.path().join("ws-b").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(fleet.status.code(), Some(0), "{}", stderr(&fleet));
    let rows: serde_json::Value = serde_json::from_slice(&fleet.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows:#}");
    assert_eq!(rows[0]["run_id"], run_id.as_str());
    assert_eq!(rows[0]["outcome"], "running");
    assert_eq!(rows[0]["stages_finished"], 1, "{rows:#}");
    assert!(
        rows[0]["owner"].as_str().unwrap().starts_with("pid "),
        "{rows:#}"
    );
    let status = host(&moto)
        .args(["status", &run_id, "--output", "json"])
        .args(state)
        .args(["--runs-dir", b_runs.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["run_id"], run_id.as_str());
    assert_eq!(report["outcome"], "running", "{report:#}");
    assert_eq!(report["stages"][0]["verdict"]["kind"], "pass");
    assert_eq!(report["stages"][1]["name"], "long");

    let resumed = host(&moto)
        .args(["resume", &run_id, "--plugins", &plugins()])
        .args(state)
        .args(["--runs-dir", b_runs.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));

    // A third machine reads the finished run.
    let c_runs = dir.path().join("machine-c");
    let out = host(&moto)
        .args(["report", &run_id, "--output", "json"])
        .args(state)
        .args(["--runs-dir", c_runs.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "passed", "{report:#}");
    let names: Vec<&str> = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "long", "last"], "each stage once");
    assert!(c_runs.join(&run_id).join("report.html").is_file());
}

#[tokio::test]
async fn concurrent_flag_writers_lose_no_update() {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    s3.create_bucket().bucket("flags").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Six runs on six "machines", each moving its own flag in the same JSON object.
    let children: Vec<Child> = (1..=6)
        .map(|i| {
            let stage = format!(
                "[[stage]]\nname = \"set\"\naction = \"flag\"\nenvironment = \"production\"\nflag = \"F{i}\"\npercent = {i}\n"
            );
            let machine = dir.path().join(format!("m{i}"));
            std::fs::create_dir_all(&machine).unwrap();
            let book = write_runbook(
                &machine,
                &moto,
                "flags = \"s3://flags/flags.json\"",
                &stage,
            );
            start_run(&moto, &book, &machine.join("runs"))
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let flags: serde_json::Value =
        serde_json::from_slice(&get(&s3, "flags", "flags.json").await.unwrap()).unwrap();
    for i in 1..=6 {
        assert_eq!(flags[format!("F{i}")], i, "F{i} kept: {flags}");
    }
}

/// Every file under `dir`, as paths relative to it.
fn tree(dir: &std::path::Path) -> Vec<String> {
    launch_targets::store::files_under(dir, |_| true)
        .unwrap()
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

#[tokio::test]
async fn hostile_keys_in_a_mirrored_run_write_nothing_outside_the_workspace() {
    let (moto, s3, dir, book) = site_with(&wait_stage("only", "10ms")).await;
    let a = start_run(&moto, &book, &dir.path().join("machine-a"));
    let out = a.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run_id = std::fs::read_dir(dir.path().join("machine-a"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| !n.starts_with('.'))
        .unwrap();
    // Keys a hostile or broken writer of the bucket could plant.
    let abs = std::env::temp_dir().join(format!("launch-host-abs-escape-{run_id}"));
    let hostile = [
        format!("launch/runs/{run_id}/../../../escaped-dotdot.txt"),
        format!("launch/runs/{run_id}/uat/../../../../escaped-uat.txt"),
        format!("launch/runs/{run_id}/{}", abs.display()),
        "launch/runs/../escaped-run-id/journal.jsonl".to_string(),
    ];
    for key in &hostile {
        put(
            &s3,
            "site",
            key,
            "{\"at\":1,\"event\":\"resumed\",\"pid\":1}\n",
        )
        .await;
    }
    let listed = s3.list_objects_v2().bucket("site").send().await.unwrap();
    let listed: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    for key in &hostile {
        assert!(
            listed.contains(&key.as_str()),
            "{key} not planted: {listed:?}"
        );
    }
    // `ws/runs/<id>/../../../` is the test folder itself, so `tree` below sees any escape.
    let ws = dir.path().join("ws");
    let b_runs = ws.join("runs");
    for args in [
        vec!["status", "--output", "json"],
        vec!["status", &run_id, "--output", "json"],
        vec!["report", &run_id, "--output", "json"],
    ] {
        let out = host(&moto)
            .args(&args)
            .args(["--state", "s3://site", "--workspace", ws.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // `status --state` alone lists the fleet: the one run.
        let report = report
            .as_array()
            .map_or(report.clone(), |rows| rows[0].clone());
        assert_eq!(report["run_id"], run_id.as_str());
        assert_eq!(report["outcome"], "passed");
    }
    // An operator's run id that names a path is refused, not followed.
    let out = host(&moto)
        .args(["status", "../../escaped-operator", "--state", "s3://site"])
        .args(["--runs-dir", b_runs.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("is not a run id"), "{}", stderr(&out));

    // Only the run's own files were written, all inside its folder.
    for file in tree(dir.path()) {
        assert!(
            file.starts_with("machine-a/")
                || file == "launch.toml"
                || file.starts_with(&format!("ws/runs/{run_id}/"))
                || file.starts_with("ws/cache/runs/"),
            "written outside the run folder: {file}"
        );
        assert!(!file.contains("escaped"), "{file}");
    }
    assert!(!abs.exists(), "{} was written", abs.display());
}

#[tokio::test]
async fn another_machine_replays_a_run_mirrored_in_s3() {
    // An SLO gate with nothing measured answers no-data: a call recorded without any network.
    let gate =
        "[[stage]]\nname = \"gate\"\nplugin = \"slo-thresholds\"\nenvironment = \"production\"\n";
    let (moto, _s3, dir, book) = site_with(gate).await;
    let out = start_run(&moto, &book, &dir.path().join("machine-a"))
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let replayed = host(&moto)
        .args(["replay", "--output", "json", "--plugins", &plugins()])
        .args(["--state", "s3://site"])
        .args(["--runs-dir", dir.path().join("machine-b").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(replayed.status.code(), Some(0), "{}", stderr(&replayed));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&replayed.stdout).unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["stage"], "gate");
    assert_eq!(rows[0]["recorded"], "no-data");
    assert_eq!(rows[0]["same"], true);
}

#[tokio::test]
async fn a_backtest_reads_the_runs_mirrored_in_s3_once_each_beside_the_local_ones() {
    let gate =
        "[[stage]]\nname = \"gate\"\nplugin = \"slo-thresholds\"\nenvironment = \"production\"\n";
    let (moto, _s3, dir, book) = site_with(gate).await;
    let machine_a = dir.path().join("machine-a");
    for _ in 0..2 {
        let out = start_run(&moto, &book, &machine_a)
            .wait_with_output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    }
    let ids = launch_engine::workspace::runs(&machine_a);
    assert_eq!(ids.len(), 2);
    let policy = repo().join("plugins/slo-thresholds.wasm");
    let backtest = |runs_dir: &std::path::Path| {
        let out = host(&moto)
            .args(["backtest", policy.to_str().unwrap(), "--output", "json"])
            .args(["--state", "s3://site"])
            .args(["--runs-dir", runs_dir.to_str().unwrap()])
            .output()
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", stderr(&out)));
        let mut seen: Vec<String> = json["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run_id"].as_str().unwrap().to_string())
            .collect();
        seen.sort();
        (json, seen)
    };
    // Another machine, no runs of its own: both come from the mirror.
    let machine_b = dir.path().join("machine-b");
    let (json, seen) = backtest(&machine_b);
    assert_eq!(seen, ids, "{json:#}");
    assert!(
        json["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["calls"] == 1 && r["outcome"] == "gate-failed" && r["finding"] == "no-data"),
        "{json:#}"
    );
    assert!(!machine_b.exists(), "a backtest writes no run folder");
    // The runner's machine: its local runs, each once.
    let (json, seen) = backtest(&machine_a);
    assert_eq!(seen, ids, "{json:#}");
}

/// The mirrored run's id, once its journal in S3 shows stage `stage` started.
async fn mirrored_at(s3: &aws_sdk_s3::Client, stage: &str) -> String {
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no mirrored journal"
        );
        let keys = s3
            .list_objects_v2()
            .bucket("site")
            .prefix("launch/runs/")
            .send()
            .await
            .unwrap();
        let journal = keys
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .find(|k| k.ends_with("/journal.jsonl"))
            .map(String::from);
        if let Some(key) = journal
            && let id = key.split('/').nth(2).unwrap().to_string()
            && let Some(body) = mirrored_journal(s3, "site", "", &id).await
            && String::from_utf8_lossy(&body).contains(&format!(r#""stage":"{stage}""#))
        {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_mirrored_run_has_one_owner_across_machines_until_its_owner_object_goes_stale() {
    let (moto, s3, dir, book) = site_with(&wait_stage("long", "4s")).await;
    let mut a = start_run(&moto, &book, &dir.path().join("machine-a"));
    let run_id = mirrored_at(&s3, "long").await;
    let owner_key = format!("launch/leases/{run_id}.json");
    let owner: serde_json::Value =
        serde_json::from_slice(&get(&s3, "site", &owner_key).await.expect("a lease object"))
            .unwrap();
    assert_eq!(owner["pid"], a.id(), "{owner}");
    assert_eq!(owner["generation"], 1, "{owner}");
    let resume_on = |machine: &str| {
        host(&moto)
            .args(["resume", &run_id, "--yes", "--plugins", &plugins()])
            .args(["--state", "s3://site"])
            .args(["--runs-dir", dir.path().join(machine).to_str().unwrap()])
            .output()
            .unwrap()
    };
    // Machine B (its own runs folder: no local lock can stop it) while A lives: refused.
    let b = resume_on("machine-b");
    assert_eq!(b.status.code(), Some(5), "{}", stderr(&b));
    assert!(
        stderr(&b).contains(&format!("is being run by pid {}", a.id())),
        "{}",
        stderr(&b)
    );
    assert_eq!(a.wait().unwrap().code(), Some(0), "A finished undisturbed");
    assert!(
        get(&s3, "site", &owner_key).await.is_none(),
        "a finished run gives its lease up"
    );

    // An owner on another machine that renewed a moment ago is refused, one silent for longer
    // than its TTL and the clock-skew margin (30 s + 30 s) is taken over.
    let (moto2, s3b, dir2, book2) = site_with(&wait_stage("long", "3s")).await;
    let _ = (&moto, &s3);
    let mut a = host(&moto2)
        .args(["run", "--yes", "--plugins", &plugins(), "--runbook", &book2])
        .args([
            "--runs-dir",
            dir2.path().join("machine-a").to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run_id = mirrored_at(&s3b, "long").await;
    a.kill().unwrap();
    a.wait().unwrap();
    let owner_key = format!("launch/leases/{run_id}.json");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let elsewhere = |renewed: u64| {
        format!(
            r#"{{"run_id":"{run_id}","host":"another-machine","pid":4242,"process_start":1,"boot_id":"b","command":"run","since_ms":{renewed},"renewed_ms":{renewed},"generation":1,"ttl_ms":30000}}"#
        )
    };
    put(&s3b, "site", &owner_key, &elsewhere(now)).await;
    let resume = |machine: &str| {
        host(&moto2)
            .args(["resume", &run_id, "--yes", "--plugins", &plugins()])
            .args(["--state", "s3://site"])
            .args(["--runs-dir", dir2.path().join(machine).to_str().unwrap()])
            .output()
            .unwrap()
    };
    let b = resume("machine-b");
    assert_eq!(b.status.code(), Some(5), "{}", stderr(&b));
    assert!(
        stderr(&b).contains("owned by pid 4242 on another-machine")
            && stderr(&b).contains("on another machine"),
        "{}",
        stderr(&b)
    );
    put(&s3b, "site", &owner_key, &elsewhere(now - 120_000)).await;
    let c = resume("machine-c");
    assert_eq!(
        c.status.code(),
        Some(0),
        "a stale owner is taken over: {}",
        stderr(&c)
    );
}

/// The shared snapshot of the fleet (`launch/fleet.json`) spares a new reader a read per run,
/// yet never shows a summary the listing does not vouch for: an entry is used only at the
/// ETag its summary object has now.
#[tokio::test]
async fn the_fleet_snapshot_spares_reads_but_never_shows_an_old_summary() {
    let (moto, s3, dir, book) = site_with(&wait_stage("only", "10ms")).await;
    for machine in ["machine-a", "machine-b"] {
        let out = start_run(&moto, &book, &dir.path().join(machine))
            .wait_with_output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let fleet = |ws: &str| {
        let out = host(&moto)
            .args(["status", "--state", "s3://site", "--output", "json"])
            .arg("--workspace")
            .arg(dir.path().join(ws))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let rows = fleet("reader-1");
    let ids: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{rows:#}");
    // The first reader wrote the snapshot: both summaries, each with its ETag.
    let snapshot = get(&s3, "site", "launch/fleet.json")
        .await
        .expect("the first reader writes the snapshot");
    let mut snapshot: serde_json::Value = serde_json::from_slice(&snapshot).unwrap();
    assert_eq!(snapshot["entries"].as_object().unwrap().len(), 2);
    // Mark one entry, so a reader that used it shows it; change the other run's summary
    // object, so its entry is for a version that is no longer there.
    let (a, b) = (&ids[0], &ids[1]);
    snapshot["entries"][format!("launch/index/{b}.json")]["summary"]["summary"] =
        "from the snapshot".into();
    put(&s3, "site", "launch/fleet.json", &snapshot.to_string()).await;
    let key = format!("launch/index/{a}.json");
    let mut summary: serde_json::Value =
        serde_json::from_slice(&get(&s3, "site", &key).await.unwrap()).unwrap();
    summary["summary"] = "written after the snapshot".into();
    put(&s3, "site", &key, &summary.to_string()).await;

    let rows = fleet("reader-2");
    let said = |id: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["run_id"] == id)
            .map(|r| r["summary"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(said(b), "from the snapshot", "an entry at its ETag is used");
    assert_eq!(
        said(a),
        "written after the snapshot",
        "an entry for an older version is not"
    );
}

/// Every segment of a run's mirrored journal, level `level`, in order: (seq, bytes).
async fn segments(s3: &aws_sdk_s3::Client, run_id: &str, level: u32) -> Vec<(u64, Vec<u8>)> {
    let prefix = format!("launch/journal-segments/{run_id}/L{level}/");
    let listed = s3
        .list_objects_v2()
        .bucket("site")
        .prefix(&prefix)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for key in listed.contents().iter().filter_map(|o| o.key()) {
        let seq = key[prefix.len()..].parse::<u64>().unwrap();
        out.push((seq, get(s3, "site", key).await.unwrap()));
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_mirrored_journal_is_uploaded_in_segments_of_what_is_new_and_read_back_whole() {
    // Forty short stages: every stage's records are an upload of their own.
    let stages: String = (0..40)
        .map(|i| wait_stage(&format!("s{i}"), "40ms"))
        .collect();
    let (moto, s3, dir, book) = site_with(&stages).await;
    let out = start_run(&moto, &book, &dir.path().join("machine-a"))
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run = local_runs(&dir.path().join("machine-a")).pop().unwrap();
    let id = run.file_name().unwrap().to_str().unwrap().to_string();
    let journal = std::fs::read(run.join("journal.jsonl")).unwrap();

    // Level 0: each upload sent only what the journal gained, in order, ending where the
    // journal ends: together they are its tail, with nothing sent twice.
    let level0 = segments(&s3, &id, 0).await;
    assert!(level0.len() >= 16, "{} uploads", level0.len());
    let seqs: Vec<u64> = level0.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (0..level0.len() as u64).collect::<Vec<_>>());
    let tail: Vec<u8> = level0.iter().flat_map(|(_, b)| b.clone()).collect();
    assert!(
        journal.ends_with(&tail),
        "{} segments of {} bytes, journal {} bytes; the tail is at {:?}",
        level0.len(),
        tail.len(),
        journal.len(),
        journal
            .windows(tail.len().min(journal.len()))
            .position(|w| w == tail.as_slice())
    );
    // Level 1: each 16 of them in one object, so a reader needs a sixteenth of the requests.
    let level1 = segments(&s3, &id, 1).await;
    assert_eq!(level1.len(), level0.len() / 16);
    for (seq, bytes) in &level1 {
        let merged: Vec<u8> = level0[*seq as usize..*seq as usize + 16]
            .iter()
            .flat_map(|(_, b)| b.clone())
            .collect();
        assert_eq!(&merged, bytes, "L1/{seq}");
    }
    // The run is over: the base is the whole journal, and says no segment continues it.
    let base = s3
        .get_object()
        .bucket("site")
        .key(format!("launch/runs/{id}/journal.jsonl"))
        .send()
        .await
        .unwrap();
    let from = base.metadata().unwrap()["segments-from"].clone();
    assert_eq!(from, level0.len().to_string());
    assert_eq!(
        base.body.collect().await.unwrap().into_bytes().to_vec(),
        journal
    );

    // Mid-run, a reader follows the segments: with the base as first written (the run's
    // first upload, here before any record), the largest segment at each step gives back the whole journal.
    let head_len = journal.len() - tail.len();
    put_with_from(
        &s3,
        &format!("launch/runs/{id}/journal.jsonl"),
        &journal[..head_len],
    )
    .await;
    assert_eq!(
        mirrored_journal(&s3, "site", "", &id).await.unwrap(),
        journal
    );
    // Another machine reads it so too: every record, and the reports anchor its last line.
    let verified = host(&moto)
        .args(["verify", &id, "--state", "s3://site", "--runs-dir"])
        .arg(dir.path().join("machine-b"))
        .output()
        .unwrap();
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    let said = String::from_utf8_lossy(&verified.stdout);
    let records = journal.iter().filter(|b| **b == b'\n').count();
    assert!(
        said.contains(&format!("intact — {records} records")),
        "{said}"
    );
}

/// Puts the base back as a run's first upload left it: `bytes`, continued by segment 0.
async fn put_with_from(s3: &aws_sdk_s3::Client, key: &str, bytes: &[u8]) {
    s3.put_object()
        .bucket("site")
        .key(key)
        .metadata("segments-from", "0")
        .body(ByteStream::from(bytes.to_vec()))
        .send()
        .await
        .unwrap();
}
