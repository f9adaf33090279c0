//! A fleet of runners and standby agents sharing one S3 (moto on 127.0.0.1): a target that
//! follows the launch's flag in S3, the launch's runbook, agents and runners as real
//! processes, and what a takeover must leave behind. Used by the agent tests and the fleet
//! benchmark.

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::IntoResponse;

use super::{
    Moto, Server, launch_host_output, launch_host_with, local_runs, repo, s3_object, signal,
};

pub const FLAG: &str = "STATUS_BOARD_V2_ENABLED";

/// A service whose new version serves the share of requests the flag in S3 says — read every
/// 50 ms, as a static site's client would — answering `x-served-by: v2` or `v1`.
pub async fn flag_following_target(s3: aws_sdk_s3::Client) -> Server {
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
    target_following(percent).await
}

/// A service whose new version serves `percent` of requests (whoever keeps it current),
/// answering `x-served-by: v2` or `v1`.
pub async fn target_following(percent: Arc<AtomicU8>) -> Server {
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
pub fn runbook(dir: &std::path::Path, target: &Server, step_ms: u64) -> String {
    runbook_with_flags(dir, target, step_ms, "flags = \"s3://site/flags.json\"")
}

/// The fleet's launch with its flags kept as `flags` (the end of the environment's table).
pub fn runbook_with_flags(
    dir: &std::path::Path,
    target: &Server,
    step_ms: u64,
    flags: &str,
) -> String {
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
{flags}

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

/// The plugins the fleet's launch uses — `canary-steps` alone. A runner compiles every plugin
/// in its folder it has not compiled before; the stock folder's Python and JavaScript
/// components, fresh from a clean build, would keep the first runner compiling for a minute.
pub fn plugins() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fleet-plugins");
        std::fs::create_dir_all(&dir).unwrap();
        // Copied then renamed: a test binary and a benchmark may do this at once.
        let copy = dir.join(format!(".canary-steps.{}", std::process::id()));
        std::fs::copy(repo().join("plugins/canary-steps.wasm"), &copy)
            .expect("plugins/canary-steps.wasm is built (just build-plugins)");
        std::fs::rename(&copy, dir.join("canary-steps.wasm")).unwrap();
        dir
    })
    .clone()
}

/// Moto with the bucket, the flag off, and the target following it.
pub async fn fleet() -> (Moto, aws_sdk_s3::Client, Server) {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    s3.create_bucket().bucket("site").send().await.unwrap();
    set_flag(&s3, 0).await;
    let target = flag_following_target(moto.s3().await).await;
    (moto, s3, target)
}

pub async fn set_flag(s3: &aws_sdk_s3::Client, percent: u8) {
    s3.put_object()
        .bucket("site")
        .key("flags.json")
        .body(format!("{{\"{FLAG}\": {percent}}}").into_bytes().into())
        .send()
        .await
        .unwrap();
}

pub async fn flag(s3: &aws_sdk_s3::Client) -> u64 {
    let bytes = s3_object(s3, "site", "flags.json").await.unwrap();
    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()[FLAG]
        .as_u64()
        .unwrap()
}

/// An agent process; what it says goes to `<workspace>.log`.
pub struct Agent {
    pub child: Child,
    pub log: std::path::PathBuf,
}

pub fn agent(env: &[(&str, String)], workspace: &std::path::Path) -> Agent {
    let log = workspace.with_extension("log");
    let out = std::fs::File::create(&log).unwrap();
    let child = launch_host_with(env)
        .args(["agent", "--state", "s3://site/state", "--poll", "250ms"])
        .arg("--plugins")
        .arg(plugins())
        .arg("--workspace")
        .arg(workspace)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    Agent { child, log }
}

impl Agent {
    pub fn said(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A runner process; what it says goes to `<runs>.log`.
pub struct Runner {
    pub child: Child,
    pub log: std::path::PathBuf,
}

/// A process whose words a failure shows.
pub trait Log {
    fn log(&self) -> &std::path::Path;
}

impl Log for Agent {
    fn log(&self) -> &std::path::Path {
        &self.log
    }
}

impl Log for Runner {
    fn log(&self) -> &std::path::Path {
        &self.log
    }
}

/// What the processes said so far, for a failure's message.
pub fn said(processes: &[&dyn Log]) -> String {
    processes
        .iter()
        .map(|p| {
            let words = std::fs::read_to_string(p.log()).unwrap_or_default();
            format!("--- {}\n{words}", p.log().display())
        })
        .collect()
}

/// A runner on this machine, or — `Some(host)` — on another one: a UTS namespace of its own
/// gives it another host name, so no agent can see its process and only its lease's silence
/// tells it is gone, as across machines.
pub fn runner(
    env: &[(&str, String)],
    book: &str,
    runs: &std::path::Path,
    host: Option<&str>,
) -> Runner {
    let launch_host = env!("CARGO_BIN_EXE_launch-host");
    let mut command = match host {
        None => launch_host_with(env),
        Some(host) => {
            let c = launch_host_with(env);
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
    let log = runs.with_extension("log");
    let out = std::fs::File::create(&log).unwrap();
    command
        .args(["run", "--yes", "--plugins"])
        .arg(plugins())
        .args(["--runbook", book, "--runs-dir"])
        .arg(runs)
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    let child = command
        .spawn()
        .expect("a runner (`unshare --uts` needs root for one on another host)");
    Runner { child, log }
}

/// The run's journal as mirrored in S3.
pub async fn mirrored(s3: &aws_sdk_s3::Client, run_id: &str) -> Vec<serde_json::Value> {
    String::from_utf8(
        super::mirrored_journal(s3, "site", "state/", run_id)
            .await
            .unwrap_or_default(),
    )
    .unwrap()
    .lines()
    .filter_map(|l| serde_json::from_str(l).ok())
    .collect()
}

/// Whether the run ended and its copy is complete: its last word is in the shared journal, and
/// its lease — given up after the last upload — is gone.
pub async fn ended(s3: &aws_sdk_s3::Client, run_id: &str) -> bool {
    let lease = format!("state/launch/leases/{run_id}.json");
    mirrored(s3, run_id)
        .await
        .iter()
        .any(|r| r["event"] == "run-finished")
        && s3_object(s3, "site", &lease).await.is_none()
}

/// Waits for `what` within `limit`, checking every 25 ms; when it held. A failure shows what
/// the processes said.
pub async fn until<F, Fut>(
    what: &str,
    processes: &[&dyn Log],
    limit: Duration,
    mut check: F,
) -> Instant
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
            said(processes)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The run started in `runs` (its one folder).
pub fn run_id(runs: &std::path::Path) -> Option<String> {
    local_runs(runs)
        .pop()
        .map(|r| r.file_name().unwrap().to_string_lossy().into_owned())
}

pub fn stop(mut a: Agent) -> String {
    signal(a.child.id(), "-TERM");
    a.child.wait().unwrap();
    a.said()
}

/// `verify` of the run's S3 copy alone (fetched into a folder with no local copy).
pub fn verify_mirrored(
    env: &[(&str, String)],
    run_id: &str,
    dir: &std::path::Path,
) -> (Option<i32>, String) {
    let runs = dir.join(format!("verify-{run_id}"));
    launch_host_output(
        env,
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

/// One kill: a runner (on this host, or `elsewhere` on another) killed with SIGKILL at a
/// moment in its canary set by `trial`, with `agents` standing by. Checks what must hold —
/// exactly one taker, the canary rolled back, no effect done twice, the journal verifies —
/// and gives the time from the kill to the flag at 0.
pub async fn kill_trial(
    env: &[(&str, String)],
    s3: &aws_sdk_s3::Client,
    book: &str,
    dir: &std::path::Path,
    trial: u64,
    elsewhere: bool,
    agents: &[&Agent],
) -> Duration {
    set_flag(s3, 0).await;
    let runs = dir.join(format!("runner-{trial}"));
    let mut run = runner(env, book, &runs, elsewhere.then_some("runner-b"));
    until(
        "the canary on",
        &[&run],
        Duration::from_secs(60),
        || async { flag(s3).await >= 10 },
    )
    .await;
    // A random moment in the canary: 0 to 2 s after its first step.
    let pause = (trial * 7919 + 13) % 2000;
    tokio::time::sleep(Duration::from_millis(pause)).await;
    run.child.kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    run.child.wait().unwrap();
    let mut logs: Vec<&dyn Log> = agents.iter().map(|a| *a as &dyn Log).collect();
    logs.push(&run);
    let safe = until(
        "the flag back at 0",
        &logs,
        Duration::from_secs(30),
        || async { flag(s3).await == 0 },
    )
    .await;
    let id = run_id(&runs).expect("the runner's run folder");
    until(
        "the taken-over run's end",
        &logs,
        Duration::from_secs(30),
        || async { ended(s3, &id).await },
    )
    .await;
    let journal = mirrored(s3, &id).await;
    let takeovers: Vec<_> = journal
        .iter()
        .filter(|r| r["event"] == "taken-over")
        .collect();
    assert_eq!(takeovers.len(), 1, "exactly one taker: {takeovers:?}");
    assert_eq!(takeovers[0]["action"], "rollback", "a canary's default");
    let takers = agents
        .iter()
        .filter(|a| a.said().contains(&format!("took run {id}")))
        .count();
    assert_eq!(takers, 1, "one agent took run {id}:\n{}", said(&logs));
    let mut done = std::collections::HashSet::new();
    for r in journal.iter().filter(|r| r["event"] == "effect-done") {
        let key = format!("{}/{}", r["stage"], r["key"]);
        assert!(done.insert(key.clone()), "effect {key} done twice");
    }
    assert_eq!(super::last_word(&journal)["outcome"], "rolled-back");
    let (code, said) = verify_mirrored(env, &id, dir);
    assert_eq!(code, Some(0), "the taken-over journal verifies: {said}");
    safe - killed
}
