//! Shared test fixtures: where the built plugins are, a runtime sharing the test artifact cache,
//! and small real HTTP servers on 127.0.0.1 that count their hits.
#![allow(dead_code)]

pub mod flag_services;
pub mod fleet;
pub mod registry;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use launch_runtime::capabilities::{AllowList, Grants};
use launch_runtime::{Limits, Plugin, Runtime, Sandbox};

pub fn repo() -> PathBuf {
    // At run time: a test binary built in another clone (one shared target folder) must
    // still find this one.
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .parent()
    .expect("host/ has a parent")
    .to_path_buf()
}

pub fn stock_plugin(name: &str) -> PathBuf {
    built(
        repo().join("plugins").join(format!("{name}.wasm")),
        "just build-plugins",
    )
}

pub fn test_plugin(name: &str) -> PathBuf {
    built(
        repo()
            .join("tests/plugins/out")
            .join(format!("{name}.wasm")),
        "just build-test-plugins",
    )
}

fn built(path: PathBuf, how: &str) -> PathBuf {
    assert!(
        path.is_file(),
        "{} is missing: run `{how}` first (or `just test`, which does)",
        path.display()
    );
    path
}

/// The test-run artifact cache: each plugin compiles once per machine, not once per test.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("LAUNCH_HOST_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("launch-host-test-compiled"))
}

pub fn runtime() -> Runtime {
    Runtime::new(Some(cache_dir())).expect("runtime starts")
}

pub async fn load(rt: &Runtime, path: PathBuf) -> Plugin {
    rt.load(&path)
        .await
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

pub fn sandbox(hosts: &[String]) -> Sandbox {
    Sandbox {
        limits: Limits::default(),
        grants: Arc::new(
            Grants::default().with_hosts(AllowList::parse(hosts).expect("valid host patterns")),
        ),
        http: Default::default(),
    }
}

/// A real HTTP server on an ephemeral loopback port, counting every request it receives.
pub struct Server {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Server {
    pub async fn start(app: Router) -> Server {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = app.layer(axum::middleware::from_fn(
            move |req, next: axum::middleware::Next| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { next.run(req).await }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Server { addr, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `127.0.0.1:PORT`, as an allow-list entry.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A server answering `ok` on every path.
pub async fn plain_server() -> Server {
    Server::start(Router::new().fallback(|| async { "ok" })).await
}

/// A moto server (the AWS stand-in) on an ephemeral loopback port, stopped when dropped.
pub struct Moto {
    pub endpoint: String,
    child: std::process::Child,
}

impl Moto {
    /// Started on a port free a moment ago. Until moto binds it, another process may take it
    /// (a run's embedded target binding port 0 gets the same kind of port), and a connect
    /// would reach that one: moto is ready when *its* process listens there, and a moto that
    /// lost its port is started again on another.
    pub fn start() -> Moto {
        for _ in 0..3 {
            let port = free_port();
            let mut child = std::process::Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect(
                    "moto_server is installed (scripts/setup.sh --tests installs moto[server])",
                );
            let started = std::time::Instant::now();
            loop {
                if listens(child.id(), port) {
                    let endpoint = format!("http://127.0.0.1:{port}");
                    return Moto { endpoint, child };
                }
                if child.try_wait().ok().flatten().is_some() {
                    break; // it lost the port: another try
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(20),
                    "moto did not start on port {port}"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        panic!("moto lost its port three times in a row")
    }

    /// Environment for the SDK (in the binary or in a test) to talk to this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let creds = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "moto");
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run folders (those with a journal) under `runs`.
pub fn local_runs(runs: &std::path::Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("journal.jsonl").is_file())
        .collect();
    // By start time: run ids sort by the second only.
    dirs.sort_by_key(|d| {
        let started = std::fs::metadata(d.join("runbook.toml"))
            .and_then(|m| m.modified())
            .ok();
        (started, d.clone())
    });
    dirs
}

/// The binary, with the test compile cache, no stdin, and `env` added.
pub fn launch_host_with(env: &[(&str, String)]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_launch-host"));
    c.env("LAUNCH_HOST_CACHE_DIR", cache_dir())
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// An object's bytes read back through the SDK, or `None` when it does not exist.
pub async fn s3_object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let o = s3.get_object().bucket(bucket).key(key).send().await.ok()?;
    Some(o.body.collect().await.unwrap().into_bytes().to_vec())
}

/// A run's journal as mirrored under `state` (the key prefix of the runbook's `state`
/// location) in `bucket`, read the way docs/operations.md lays it out: the base
/// `launch/runs/<id>/journal.jsonl`, then from segment `segments-from` (its metadata) on, at
/// each segment the largest `launch/journal-segments/<id>/L<k>/<seq>` that starts there
/// (`L<k>` holds segments seq .. seq + 16^k). `None` when there is no base.
pub async fn mirrored_journal(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    state: &str,
    run_id: &str,
) -> Option<Vec<u8>> {
    let base = s3
        .get_object()
        .bucket(bucket)
        .key(format!("{state}launch/runs/{run_id}/journal.jsonl"))
        .send()
        .await
        .ok()?;
    let from = base
        .metadata()
        .and_then(|m| m.get("segments-from"))
        .cloned();
    let mut bytes = base.body.collect().await.unwrap().into_bytes().to_vec();
    // A base without it was written before segments, and is continued from segment 0.
    let mut seq = from.map_or(0, |f| f.parse::<u64>().unwrap());
    'next: loop {
        for level in (0..=4u32).rev() {
            let span = 16u64.pow(level);
            if seq % span != 0 {
                continue;
            }
            let key = format!("{state}launch/journal-segments/{run_id}/L{level}/{seq:010}");
            if let Some(segment) = s3_object(s3, bucket, &key).await {
                bytes.extend(segment);
                seq += span;
                continue 'next;
            }
        }
        return Some(bytes);
    }
}

/// Every recorded call's inputs of a run, with the path of the file they are in (`None`: in
/// the journal: a `call` record's, or a canary decision's `call`).
pub fn recorded_inputs(run: &std::path::Path) -> Vec<(Option<PathBuf>, serde_json::Value)> {
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    let mut inlined = launch_engine::lab::record::Inlined::default();
    journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "call" || r["call"].is_object())
        .map(|r| {
            let (stage, plugin) = (
                r["stage"].as_str().unwrap_or_default(),
                r["plugin"].as_str().unwrap_or_default(),
            );
            if r["event"] == "decision" {
                // Its call: the canary's state, the config when it changed.
                let call = &r["call"];
                let config = inlined.config(stage, call["config"].as_object());
                let input = serde_json::json!({
                    "plugin": plugin,
                    "config": config,
                    "canary": {
                        "percent": r["percent"],
                        "step-index": call["step_index"],
                        "step-elapsed-ms": call["step_elapsed_ms"],
                        "total-elapsed-ms": call["total_elapsed_ms"],
                    },
                });
                return (None, input);
            }
            match r["inputs"].is_object() {
                // Inline inputs leave out what the record or an earlier one says: read as
                // replay reads them.
                true => (None, inlined.restore(stage, plugin, r["inputs"].clone())),
                false => {
                    let file = run.join(r["input"].as_str().unwrap());
                    let value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
                    (Some(file), value)
                }
            }
        })
        .collect()
}

/// Whether process `pid` holds a TCP socket listening on `port` (Linux: the socket's inode
/// in /proc/net/tcp among the process's file descriptors).
pub fn listens(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit(':').next()?;
            // State 0A is LISTEN.
            let listening = u16::from_str_radix(local_port, 16).ok()? == port && *f.get(3)? == "0A";
            listening.then(|| format!("socket:[{}]", f.get(9).unwrap_or(&"")))
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| inodes.iter().any(|i| target.to_string_lossy() == *i))
}

/// A loopback port free right now (the OS picked it; a race with another process is unlikely).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real Prometheus server (Debian's `prometheus`, installed by scripts/setup.sh --tests) on an
/// ephemeral loopback port, scraping `targets` every second; stopped when dropped.
pub struct PrometheusServer {
    pub url: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    pub fn start(targets: &[String]) -> PrometheusServer {
        let dir = tempfile::tempdir().unwrap();
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: launch\n    static_configs:\n      - targets: [{}]\n",
                list.join(", ")
            ),
        )
        .unwrap();
        let port = free_port();
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect(
                "prometheus is installed (scripts/setup.sh --tests installs Debian's prometheus)",
            );
        let url = format!("http://127.0.0.1:{port}");
        let started = std::time::Instant::now();
        let ready = || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            s.write_all(b"GET /-/ready HTTP/1.0\r\n\r\n").ok()?;
            let mut answer = String::new();
            s.read_to_string(&mut answer).ok()?;
            answer.starts_with("HTTP/1.0 200").then_some(())
        };
        while ready().is_none() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "prometheus did not become ready on port {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        PrometheusServer {
            url,
            child,
            _dir: dir,
        }
    }
}

impl PrometheusServer {
    /// Freezes the server (SIGSTOP): it keeps its port and never answers. Returns when, in
    /// milliseconds since the epoch.
    pub fn pause(&self) -> u64 {
        signal(self.child.id(), "-STOP");
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        signal(self.child.id(), "-CONT");
    }
}

/// Sends `sig` (e.g. `-STOP`) to `pid` with kill(1).
pub fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary with `env` added, run to its end: its exit code and everything it printed.
pub fn launch_host_output(env: &[(&str, String)], args: &[&str]) -> (Option<i32>, String) {
    let out = launch_host_with(env).args(args).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// `launch-host run --yes` of the runbook `book` with the plugins in `plugins`, its run
/// folders under `runs`, and `extra` arguments.
pub fn run_book(
    env: &[(&str, String)],
    plugins: &std::path::Path,
    book: &std::path::Path,
    runs: &std::path::Path,
    extra: &[&str],
) -> (Option<i32>, String) {
    let (p, b, r) = (
        plugins.to_str().unwrap(),
        book.to_str().unwrap(),
        runs.to_str().unwrap(),
    );
    let mut args = vec![
        "run",
        "--yes",
        "--plugins",
        p,
        "--runbook",
        b,
        "--runs-dir",
        r,
    ];
    args.extend_from_slice(extra);
    launch_host_output(env, &args)
}

/// A run's journal records, as JSON (a line that does not parse — a torn tail — is skipped).
pub fn journal_of(run: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A run's last word: its last record before the runner's signature of it.
pub fn last_word(records: &[serde_json::Value]) -> &serde_json::Value {
    records
        .iter()
        .rev()
        .find(|r| r["event"] != "signed")
        .expect("a record")
}

/// Rewrites a file, each `(from, to)` replaced; every `from` must be there.
pub fn rewrite(file: &std::path::Path, edits: &[(&str, &str)]) {
    let mut text = std::fs::read_to_string(file).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{from:?} not in {}", file.display());
        text = text.replace(from, to);
    }
    std::fs::write(file, text).unwrap();
}
