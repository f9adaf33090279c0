//! A real browser and `launch-host serve` for the web tests: Debian's Chromium, headless,
//! driven over WebDriver (chromedriver) by fantoccini, and the server on an ephemeral loopback
//! port with actions allowed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use super::{free_port, launch_host_with, repo};

/// A canary that takes about ten seconds on the embedded target: long enough to watch and act.
pub fn runbook(dir: &Path) -> PathBuf {
    canary_runbook(&dir.join("launch.toml"), "web", 2000)
}

/// A canary of launch `launch` in five steps of `step_ms` on the embedded target, at `path`.
pub fn canary_runbook(path: &Path, launch: &str, step_ms: u64) -> PathBuf {
    std::fs::write(
        path,
        format!(
            r#"[launch]
name = "{launch}"
flag = "STATUS_BOARD_V2_ENABLED"

[environments.staging]
target = "embedded"

[defaults]
probe-rate = 100

[[stage]]
name = "canary"
title = "Canary on staging"
plugin = "canary-steps"
environment = "staging"
interval = "250ms"
config = {{ steps = [10, 20, 30, 40, 100], step-duration-ms = {step_ms}, min-requests = 3 }}
"#
        ),
    )
    .unwrap();
    path.to_path_buf()
}

/// `launch-host serve` on an ephemeral loopback port, with actions; stopped when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    pub token: String,
}

impl Server {
    pub fn start(workspace: &Path, book: &Path) -> Server {
        Server::start_with(workspace, book, &[], &[])
    }

    pub fn start_with(
        workspace: &Path,
        book: &Path,
        env: &[(&str, String)],
        extra: &[&str],
    ) -> Server {
        let mut child = launch_host_with(env)
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--allow-actions",
                "--workspace",
            ])
            .arg(workspace)
            .arg("--runbook")
            .arg(book)
            .arg("--plugins")
            .arg(repo().join("plugins"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        let token = line.trim().rsplit(' ').next().unwrap().to_string();
        assert_eq!(token.len(), 64, "{line}");
        Server { child, url, token }
    }
}

impl Server {
    /// Posts the action form of run `id` as a browser would, without following the redirect.
    pub async fn post_action(&self, id: &str, form: &str) -> reqwest::Response {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/runs/{id}/actions", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string())
            .send()
            .await
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium driven by chromedriver; both stopped when dropped.
pub struct Browser {
    driver: Child,
    client: Option<Client>,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Browser {
        Browser::start_in(false).await
    }

    /// A browser whose pages prefer a dark colour scheme, when `dark`.
    pub async fn start_in(dark: bool) -> Browser {
        Browser::start_sized(dark, 1280, 1800).await
    }

    /// A browser whose window is `width`×`height` (headless: the viewport).
    pub async fn start_sized(dark: bool, width: u32, height: u32) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver (Debian's chromium-driver, installed by scripts/setup.sh --tests)",
            );
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                    format!("--blink-settings=preferredColorScheme={}", if dark { 0 } else { 1 }),
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let started = Instant::now();
        let client = loop {
            match ClientBuilder::new(connector.clone())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => break c,
                Err(e) if started.elapsed() < Duration::from_secs(20) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session: {e}"),
            }
        };
        // The window's size includes the browser's own bars: grown by their size, the page
        // itself is `width`×`height`.
        let inner = client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .unwrap();
        let inner = |i: usize| inner[i].as_u64().unwrap() as u32;
        let (dw, dh) = (
            width.saturating_sub(inner(0)),
            height.saturating_sub(inner(1)),
        );
        if dw + dh > 0 {
            client
                .set_window_size(width + dw, height + dh)
                .await
                .unwrap();
        }
        Browser {
            driver,
            client: Some(client),
            _profile: profile,
        }
    }

    pub fn page(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// The text of the first element `css` selects, read in one step: the live page replaces
    /// its body as the journal grows, so a found element may be gone a moment later.
    pub async fn text(&self, css: &str) -> String {
        let text = self
            .page()
            .execute(
                "var e = document.querySelector(arguments[0]); return e ? (e.innerText === undefined ? e.textContent : e.innerText) : null;",
                vec![serde_json::json!(css)],
            )
            .await
            .unwrap();
        text.as_str()
            .unwrap_or_else(|| panic!("nothing matches {css}"))
            .to_string()
    }

    /// Fills the page's action form with `fields` and presses the `action` button.
    pub async fn act(&self, action: &str, fields: &[(&str, &str)]) {
        let form = self
            .page()
            .form(Locator::Css("section.actions form"))
            .await
            .unwrap();
        for (name, value) in fields {
            form.set_by_name(name, value).await.unwrap();
        }
        self.page()
            .find(Locator::Css(&format!("button[value={action}]")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Writes a screenshot where the tests keep their output; checks it is a real page's.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.page().screenshot().await.unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert!(width >= 1000 && height >= 700, "{name}: {width}×{height}");
        // A blank or error page compresses to a few KiB; a page with tables and charts does not.
        assert!(png.len() > 40 << 10, "{name}: only {} bytes", png.len());
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Browser {
    /// Ends the session, and with it Chromium.
    pub async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

pub fn start_run(workspace: &Path, book: &Path, inject: Option<&str>) -> Child {
    let mut c = launch_host_with(&[]);
    c.args(["run", "--yes", "--runbook"])
        .arg(book)
        .arg("--plugins")
        .arg(repo().join("plugins"))
        .arg("--runs-dir")
        .arg(workspace.join("runs"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(fault) = inject {
        c.args(["--inject", fault]);
    }
    c.spawn().unwrap()
}

/// The run folder once the run has journaled its first record.
pub fn wait_for_run(runs: &Path) -> PathBuf {
    let started = Instant::now();
    loop {
        if let Some(run) = super::local_runs(runs).pop() {
            return run;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no run started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn journal(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
