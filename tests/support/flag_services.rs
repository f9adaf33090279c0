//! The flag services teams run, started for real on 127.0.0.1: PostgreSQL (Debian's) and an
//! Unleash server on it (npm `unleash-server`), and the SDKs that say what users see — the
//! Unleash Node SDK and flagd's evaluator (`@openfeature/flagd-core`), which also validates a
//! definition against flagd's published schema. scripts/setup.sh --tests installs all of them
//! (tests/flag-services/package-lock.json pins the npm side).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, repo};

/// The admin token the test Unleash accepts, and the SDK's (`default:production`).
pub const UNLEASH_ADMIN_TOKEN: &str = "*:*.launch-host-test-admin-0f3c9a";
pub const UNLEASH_CLIENT_TOKEN: &str = "default:production.launch-host-test-sdk-77d1";

fn tools() -> PathBuf {
    let dir = repo().join("tests/flag-services");
    assert!(
        dir.join("node_modules/unleash-server").is_dir(),
        "tests/flag-services/node_modules is missing: run scripts/setup.sh --tests (npm ci there)"
    );
    dir
}

/// A throwaway PostgreSQL cluster on a free loopback port, trusting local connections; its
/// server stops when dropped. As root, it runs as Debian's `postgres` user (initdb refuses
/// root).
pub struct Postgres {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let command = |program: &str| {
            let path = bin.join(program);
            if as_root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(path);
                c
            } else {
                Command::new(path)
            }
        };
        if as_root {
            let ok = Command::new("chown")
                .args(["postgres:", dir.path().to_str().unwrap()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the cluster's folder to postgres");
        }
        let out = command("initdb")
            .args(["-A", "trust", "-U", "unleash", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let child = command("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "postgres did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Postgres {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // runuser passes SIGTERM on: postgres shuts down fast, then runuser exits.
        super::signal(self.child.id(), "-TERM");
        let _ = self.child.wait();
    }
}

/// Debian's server binaries (`/usr/lib/postgresql/<version>/bin`), the newest version.
fn postgres_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .expect("PostgreSQL's server is installed (scripts/setup.sh --tests installs Debian's postgresql)")
        .1
}

/// A real Unleash server on a free loopback port, on its own database in `pg`; stopped when
/// dropped.
pub struct Unleash {
    pub url: String,
    child: Child,
}

impl Unleash {
    pub fn start(pg: &Postgres) -> Unleash {
        let port = free_port();
        let mut child = Command::new("node")
            .arg(tools().join("unleash-server.js"))
            .args([&pg.port.to_string(), "postgres", &port.to_string()])
            .args([UNLEASH_ADMIN_TOKEN, UNLEASH_CLIENT_TOKEN])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node is installed (scripts/setup.sh --tests)");
        // First start runs Unleash's migrations: several seconds on two cores.
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == "ready" {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(180)).is_err() {
            let _ = child.kill();
            panic!("Unleash did not start on port {port} within 180 s");
        }
        Unleash {
            url: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    /// An Admin API request with the admin token; panics unless it succeeds.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut req = reqwest::Client::new()
            .request(method.clone(), format!("{}{path}", self.url))
            .header("authorization", UNLEASH_ADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    /// The feature's state in `environment`, as the Admin API says.
    pub async fn environment(&self, feature: &str, environment: &str) -> serde_json::Value {
        let f = self
            .admin(
                reqwest::Method::GET,
                &format!("/api/admin/projects/default/features/{feature}"),
                None,
            )
            .await;
        f["environments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == environment)
            .cloned()
            .unwrap()
    }

    /// How many of `n` users the Unleash Node SDK sees the feature on for, asked again (a new
    /// SDK each time) until `want` holds, for at most 20 s: Unleash serves SDKs from a cache
    /// it renews about every second, so a change reaches them a moment after the Admin API
    /// has it. The last share when `want` never held.
    pub fn share_once(&self, feature: &str, n: u32, want: impl Fn(u32) -> bool) -> u32 {
        let started = Instant::now();
        loop {
            let share = self.share(feature, n);
            if want(share) || started.elapsed() > Duration::from_secs(20) {
                return share;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// How many of `n` users the Unleash Node SDK (a `default:production` client) sees the
    /// feature on for.
    pub fn share(&self, feature: &str, n: u32) -> u32 {
        let out = node(
            "unleash-share.js",
            &[&self.url, UNLEASH_CLIENT_TOKEN, feature, &n.to_string()],
        );
        out["enabled"].as_u64().unwrap() as u32
    }
}

impl Drop for Unleash {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many of `n` users flagd's evaluator serves the flag's true variant, after validating
/// `file` against flagd's published schema and flagd-core's strict parse (a panic naming
/// what is wrong when either refuses it).
pub fn flagd_share(file: &Path, flag: &str, n: u32) -> u32 {
    let out = node(
        "flagd-share.js",
        &[file.to_str().unwrap(), flag, &n.to_string()],
    );
    out["on"].as_u64().unwrap() as u32
}

fn node(script: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new("node")
        .arg(tools().join(script))
        .args(args)
        .output()
        .expect("node is installed (scripts/setup.sh --tests)");
    assert!(
        out.status.success(),
        "{script} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
