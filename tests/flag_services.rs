//! The flag services teams already run, as real parts on 127.0.0.1: a canary moves an
//! Unleash feature's gradual rollout (PostgreSQL + unleash-server) and a flagd definition's
//! `fractional` split (a file, and an S3 object on moto), and what users see is asked of the
//! services' own SDKs — the Unleash Node SDK, flagd's evaluator — not of launch-host.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use support::flag_services::{
    Postgres, UNLEASH_ADMIN_TOKEN, UNLEASH_CLIENT_TOKEN, Unleash, flagd_share,
};
use support::fleet::{FLAG, plugins, target_following};
use support::*;

/// Users asked of each SDK: at 20 000, a share's standard error is under 0.4 points.
const USERS: u32 = 20_000;

/// `share` of `USERS` is `percent`% within 2.5 points (six standard errors at 50%).
fn near(share: u32, percent: u32) -> bool {
    let got = f64::from(share) * 100.0 / f64::from(USERS);
    (got - f64::from(percent)).abs() <= 2.5
}

/// A canary 10% → 40% → 100% on `production` (5 s a step), whose flags are `flags_table`.
fn canary_runbook(dir: &std::path::Path, target: &Server, flags_table: &str) -> String {
    let path = dir.join("launch.toml");
    std::fs::write(
        &path,
        format!(
            r#"[launch]
name = "StatusBoardV2"
flag = "{FLAG}"

[environments.production]
url = "{url}"
api-url = "{url}"
{flags_table}

[[stage]]
name = "canary"
plugin = "canary-steps"
environment = "production"
interval = "250ms"
duration = "30s"
on-fail = "rollback"
config = {{ steps = [10, 40, 100], step-duration-ms = 5000, min-requests = 3 }}
"#,
            url = target.url("")
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// `launch-host validate` of `book` with the stock plugins the canary uses.
fn validate(env: &[(&str, String)], book: &str) -> (Option<i32>, String) {
    let plugins = plugins();
    launch_host_output(
        env,
        &[
            "validate",
            "--plugins",
            plugins.to_str().unwrap(),
            "--runbook",
            book,
        ],
    )
}

fn run(env: &[(&str, String)], book: &str, ws: &std::path::Path) -> (Option<i32>, String) {
    finish(start_run(env, book, ws))
}

/// `launch-host run`, started: its output is read when it is finished.
fn start_run(env: &[(&str, String)], book: &str, ws: &std::path::Path) -> std::process::Child {
    launch_host_with(env)
        .args(["run", "--yes", "--plugins"])
        .arg(plugins())
        .args(["--runbook", book, "--runs-dir"])
        .arg(ws.join("runs"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: std::process::Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// Waits (at most 30 s) until `now()` is `want`.
async fn until<F, Fut>(what: &str, want: &str, now: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let started = std::time::Instant::now();
    loop {
        let seen = now().await;
        if seen == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} never reached {want} (last {seen})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn emergency(env: &[(&str, String)], book: &str, ws: &std::path::Path) -> (Option<i32>, String) {
    let plugins = plugins();
    launch_host_output(
        env,
        &[
            "rollback",
            "emergency",
            "--reason",
            "checkout errors",
            "--plugins",
            plugins.to_str().unwrap(),
            "--runbook",
            book,
            "--workspace",
            ws.to_str().unwrap(),
        ],
    )
}

/// Every file under `dir`, as text.
fn all_text(dir: &std::path::Path) -> String {
    let mut text = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if let Ok(bytes) = std::fs::read(e.path()) {
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    text
}

/// The rollout Unleash serves SDKs (the client API, with the SDK's token): what an app
/// reading Unleash would follow, every 50 ms.
fn follow_unleash(url: String) -> Arc<AtomicU8> {
    let percent = Arc::new(AtomicU8::new(0));
    let seen = percent.clone();
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        loop {
            let answer = client
                .get(format!("{url}/api/client/features/{FLAG}"))
                .header("authorization", UNLEASH_CLIENT_TOKEN)
                .send()
                .await;
            if let Ok(r) = answer
                && let Ok(f) = r.json::<serde_json::Value>().await
            {
                let rollout = f["strategies"][0]["parameters"]["rollout"]
                    .as_str()
                    .and_then(|r| r.parse::<u8>().ok())
                    .unwrap_or(0);
                let on = f["enabled"].as_bool().unwrap_or(false);
                seen.store(if on { rollout } else { 0 }, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    percent
}

fn unleash_table(url: &str, on_rollback: &str) -> String {
    format!(
        "flags = \"unleash\"\n\n[environments.production.unleash]\nurl = \"{url}\"\ntoken = \"${{UNLEASH_ADMIN_TOKEN}}\"\non-rollback = \"{on_rollback}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unleash_canary_moves_the_rollout_users_see_and_a_rollback_disables_it() {
    let pg = Postgres::start();
    let unleash = Unleash::start(&pg);
    // The team's feature, made in Unleash as they would; off in production.
    unleash
        .admin(
            Method::POST,
            "/api/admin/projects/default/features",
            Some(json!({"name": FLAG})),
        )
        .await;
    assert_eq!(unleash.share(FLAG, USERS), 0, "off before the launch");
    let target = target_following(follow_unleash(unleash.url.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let env = [("UNLEASH_ADMIN_TOKEN", UNLEASH_ADMIN_TOKEN.to_string())];

    // A token written in the runbook is refused at its line, before anything runs.
    let literal = canary_runbook(
        dir.path(),
        &target,
        &unleash_table(&unleash.url, "disable").replace("${UNLEASH_ADMIN_TOKEN}", "plain-token"),
    );
    let (code, out) = validate(&[], &literal);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("launch.toml:")
            && out.contains("UNLEASH_ADMIN_TOKEN")
            && out.contains("secret"),
        "names the file:line and the fix: {out}"
    );

    // The canary: 10%, 40%, 100%, through the Admin API; the target follows what Unleash
    // serves its SDKs. At 40%, the Node SDK is asked what share of users sees the feature.
    let book = canary_runbook(dir.path(), &target, &unleash_table(&unleash.url, "disable"));
    let running = start_run(&env, &book, &ws);
    let rollout = || async {
        let p = unleash.environment(FLAG, "production").await;
        p["strategies"][0]["parameters"]["rollout"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    until("the rollout", "40", rollout).await;
    let production = unleash.environment(FLAG, "production").await;
    assert_eq!(production["enabled"], true, "{production}");
    let strategies = production["strategies"].as_array().unwrap();
    assert_eq!(strategies.len(), 1, "{production}");
    assert_eq!(strategies[0]["name"], "flexibleRollout");
    assert_eq!(strategies[0]["title"], "launch-host");
    let share = unleash.share_once(FLAG, USERS, |s| near(s, 40));
    eprintln!("unleash at 40%: the Node SDK sees {share} of {USERS} users");
    assert!(
        near(share, 40),
        "the Node SDK sees {share} of {USERS} users on at 40%"
    );
    let (code, out) = finish(running);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(rollout().await, "100");
    assert_eq!(
        unleash.share_once(FLAG, USERS, |s| s == USERS),
        USERS,
        "everyone at 100%"
    );
    let development = unleash.environment(FLAG, "development").await;
    assert_eq!(
        development["enabled"], false,
        "another environment untouched"
    );
    let run_dir = local_runs(&ws.join("runs")).pop().unwrap();
    let journal = std::fs::read_to_string(run_dir.join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("10% → 40%") && journal.contains("40% → 100%"),
        "the journal has each move: {journal}"
    );
    assert!(
        !all_text(&ws).contains(UNLEASH_ADMIN_TOKEN) && !out.contains(UNLEASH_ADMIN_TOKEN),
        "the admin token reaches no file and no console"
    );

    // The emergency rollback disables the feature first (Unleash's kill switch), then sets
    // the rollout to 0.
    let (code, out) = emergency(&env, &book, &ws);
    assert_eq!(code, Some(0), "{out}");
    let production = unleash.environment(FLAG, "production").await;
    assert_eq!(production["enabled"], false, "{production}");
    assert_eq!(production["strategies"][0]["parameters"]["rollout"], "0");
    assert_eq!(
        unleash.share_once(FLAG, USERS, |s| s == 0),
        0,
        "nobody sees it after the rollback"
    );
    let rollback = local_runs(&ws.join("runs")).pop().unwrap();
    let journal = std::fs::read_to_string(rollback.join("journal.jsonl")).unwrap();
    let provider = format!(
        "via unleash:{} (project default, environment production)",
        unleash.url
    );
    assert!(
        journal.contains(&provider),
        "the rollback names where it moved the flag: {journal}"
    );

    // on-rollback = "zero": the canary again (the feature enabled again from 0), then a
    // rollback leaves the feature enabled at 0%.
    let zero = canary_runbook(dir.path(), &target, &unleash_table(&unleash.url, "zero"));
    let (code, out) = run(&env, &zero, &ws);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(unleash.share_once(FLAG, USERS, |s| s == USERS), USERS);
    let (code, out) = emergency(&env, &zero, &ws);
    assert_eq!(code, Some(0), "{out}");
    let production = unleash.environment(FLAG, "production").await;
    assert_eq!(production["enabled"], true, "{production}");
    assert_eq!(production["strategies"][0]["parameters"]["rollout"], "0");
    assert_eq!(unleash.share_once(FLAG, USERS, |s| s == 0), 0);

    // Another active strategy would let users in whatever the rollout says: the run is
    // refused before it writes, and says which strategy.
    unleash
        .admin(
            Method::POST,
            &format!("/api/admin/projects/default/features/{FLAG}/environments/production/strategies"),
            Some(json!({"name": "default", "title": "everyone", "constraints": [], "parameters": {}})),
        )
        .await;
    let (code, out) = run(&env, &book, &ws);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("other active strategies") && out.contains("everyone"),
        "{out}"
    );
    let production = unleash.environment(FLAG, "production").await;
    assert_eq!(
        production["strategies"][0]["parameters"]["rollout"], "0",
        "nothing moved"
    );
}

fn flagd_table(place: &str) -> String {
    format!("flags = \"flagd\"\n\n[environments.production.flagd]\n{place}\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flagd_canary_writes_a_fractional_split_flagd_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    // The team's definition: their flag, with its own variant names, and another flag.
    let file = dir.path().join("flagd/flags.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let theirs = json!({
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": {
            FLAG: {"state": "ENABLED", "variants": {"new": true, "old": false}, "defaultVariant": "old"},
            "HEADER_COLOR": {"state": "ENABLED", "variants": {"red": "#c00", "blue": "#00c"}, "defaultVariant": "red"}
        }
    });
    std::fs::write(&file, serde_json::to_vec_pretty(&theirs).unwrap()).unwrap();
    assert_eq!(flagd_share(&file, FLAG, USERS), 0);

    // flagd's own evaluator follows the file, as a flagd daemon syncing it would.
    let percent = Arc::new(AtomicU8::new(0));
    let target = target_following(percent.clone()).await;
    let watched = file.clone();
    std::thread::spawn(move || {
        loop {
            let share = flagd_share(&watched, FLAG, 1000);
            percent.store((share / 10) as u8, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
        }
    });

    // A relative path is refused at its line.
    let relative = canary_runbook(
        dir.path(),
        &target,
        &flagd_table("file = \"flagd/flags.json\""),
    );
    let (code, out) = validate(&[], &relative);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("launch.toml:") && out.contains("not an absolute path"),
        "{out}"
    );

    let book = canary_runbook(
        dir.path(),
        &target,
        &flagd_table(&format!("file = \"{}\"", file.display())),
    );
    let running = start_run(&[], &book, &ws);
    let split = || async {
        let now: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        now["flags"][FLAG]["targeting"]["fractional"][0].to_string()
    };
    until("the split", r#"["new",40]"#, split).await;
    let share = flagd_share(&file, FLAG, USERS);
    eprintln!("flagd file at 40%: flagd-core serves {share} of {USERS} users");
    assert!(
        near(share, 40),
        "flagd serves {share} of {USERS} users the new variant at 40%"
    );
    let now: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        now["flags"][FLAG]["targeting"],
        json!({"fractional": [["new", 40], ["old", 60]]}),
        "their variant names, the true one first"
    );
    let (code, out) = finish(running);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(flagd_share(&file, FLAG, USERS), USERS, "everyone at 100%");
    assert_eq!(
        now["flags"]["HEADER_COLOR"],
        theirs["flags"]["HEADER_COLOR"]
    );

    let (code, out) = emergency(&[], &book, &ws);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        flagd_share(&file, FLAG, USERS),
        0,
        "nobody after the rollback"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flagd_definition_in_s3_is_written_for_flagd_to_sync() {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    s3.create_bucket().bucket("flagd").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let book = dir.path().join("launch.toml");
    std::fs::write(
        &book,
        format!(
            r#"[launch]
name = "StatusBoardV2"
flag = "{FLAG}"

[environments.production]
url = "http://127.0.0.1:9"
api-url = "http://127.0.0.1:9"
{table}

[[stage]]
name = "to-30"
action = "flag"
environment = "production"
percent = 30
"#,
            table = flagd_table("object = \"s3://flagd/sync/flags.json\"")
        ),
    )
    .unwrap();
    let book = book.display().to_string();
    // No definition yet: launch-host writes a new one, valid for flagd.
    let (code, out) = run(&moto.env(), &book, &ws);
    assert_eq!(code, Some(0), "{out}");
    let synced = dir.path().join("synced.json");
    let fetch = || async {
        let bytes = s3_object(&s3, "flagd", "sync/flags.json").await.unwrap();
        std::fs::write(&synced, &bytes).unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    };
    let definition = fetch().await;
    assert_eq!(
        definition["flags"][FLAG]["targeting"],
        json!({"fractional": [["on", 30], ["off", 70]]})
    );
    let share = flagd_share(&synced, FLAG, USERS);
    eprintln!("flagd object at 30%: flagd-core serves {share} of {USERS} users");
    assert!(
        near(share, 30),
        "flagd serves {share} of {USERS} users at 30%"
    );
    let head = s3
        .head_object()
        .bucket("flagd")
        .key("sync/flags.json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.cache_control(),
        Some("no-cache"),
        "never served stale to flagd"
    );
    assert_eq!(head.content_type(), Some("application/json"));

    let (code, out) = emergency(&moto.env(), &book, &ws);
    assert_eq!(code, Some(0), "{out}");
    fetch().await;
    assert_eq!(
        flagd_share(&synced, FLAG, USERS),
        0,
        "nobody after the rollback"
    );
}

#[test]
fn a_flag_provider_written_wrong_is_refused_at_its_line() {
    let token = "token = \"${UNLEASH_ADMIN_TOKEN}\"";
    let cases = [
        ("", "flags = \"unleash\"", 8, "needs its server and token"),
        (
            "",
            &format!(
                "flags = \"file\"\n[environments.production.unleash]\nurl = \"http://127.0.0.1:1\"\n{token}"
            ),
            9,
            "a [unleash] table is set but flags is not \"unleash\"",
        ),
        (
            "",
            &format!(
                "flags = \"unleash\"\n[environments.production.unleash]\nurl = \"ftp://127.0.0.1\"\n{token}"
            ),
            10,
            "is not an http(s) URL",
        ),
        (
            "",
            "flags = \"flagd\"\n[environments.production.flagd]\nfile = \"/tmp/f.json\"\nobject = \"s3://b/f.json\"",
            9,
            "exactly one place",
        ),
        (
            "",
            "flags = \"flagd\"\n[environments.production.flagd]\nobject = \"/tmp/f.json\"",
            10,
            "is not an s3:// URL",
        ),
        (
            "target = \"embedded\"\n",
            &format!(
                "flags = \"unleash\"\n[environments.production.unleash]\nurl = \"http://127.0.0.1:1\"\n{token}"
            ),
            7,
            "an embedded target follows its own flag file",
        ),
    ];
    let plugins = plugins();
    for (target, flags, line, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let book = dir.path().join("launch.toml");
        let address = if target.is_empty() {
            "url = \"http://127.0.0.1:9\"\napi-url = \"http://127.0.0.1:9\"\n"
        } else {
            target
        };
        std::fs::write(
            &book,
            format!(
                "[launch]\nname = \"x\"\nflag = \"{FLAG}\"\n\n[environments.production]\n{address}{flags}\n\n[[stage]]\nname = \"on\"\naction = \"flag\"\nenvironment = \"production\"\npercent = 10\n"
            ),
        )
        .unwrap();
        let book = book.display().to_string();
        let env = [("UNLEASH_ADMIN_TOKEN", UNLEASH_ADMIN_TOKEN.to_string())];
        let args = ["--plugins", plugins.to_str().unwrap(), "--runbook", &book];
        let (code, out) = validate(&env, &book);
        assert_ne!(code, Some(0), "{flags}: {out}");
        assert!(
            out.contains(&format!("launch.toml:{line}:")) && out.contains(expect),
            "{flags}: expected `{expect}` at line {line}: {out}"
        );
        let runs = dir.path().join("runs");
        let (code, out) = launch_host_output(
            &env,
            &[
                &["run", "--yes", "--runs-dir", runs.to_str().unwrap()][..],
                &args,
            ]
            .concat(),
        );
        assert_eq!(code, Some(2), "run refuses it as validate does: {out}");
        assert!(!runs.exists(), "a refused run leaves no folder behind");
    }
}
