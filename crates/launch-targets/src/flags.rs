//! Feature-flag back-ends: a flag is a rollout percentage (0 = off, 100 = everyone). The engine
//! talks to them through `FlagStore`; the local file backs the embedded default, the HTTP
//! provider speaks the guide's admin API (`/api/admin/feature-flags`).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;

use super::store::write_atomically;

pub type FlagFuture<'a, T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send + 'a>>;

pub trait FlagStore: Send + Sync {
    fn get<'a>(&'a self, name: &'a str) -> FlagFuture<'a, u8>;
    fn set<'a>(&'a self, name: &'a str, percent: u8) -> FlagFuture<'a, ()>;
    fn all(&self) -> FlagFuture<'_, BTreeMap<String, u8>>;
    fn describe(&self) -> String;

    /// `set`, carrying a fencing token: a store that can check it refuses the write when a
    /// newer holder of the same run has written the flag (a runner that lost its lease). The
    /// file and HTTP stores cannot check one, and write as `set` does (`fences` says which).
    fn set_fenced<'a>(
        &'a self,
        name: &'a str,
        percent: u8,
        fence: &'a Fence,
    ) -> FlagFuture<'a, ()> {
        let _ = fence;
        self.set(name, percent)
    }

    /// Whether `set_fenced` checks its token.
    fn fences(&self) -> bool {
        false
    }
}

/// Who writes, and as which holder of its run's lease: a write of generation 2 refuses to
/// be overwritten by generation 1 of the same run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fence {
    pub run_id: String,
    pub generation: u64,
}

/// A flag store whose every write carries `fence`: what a run holding a lease moves its flags
/// through, so a store that can check the token refuses a stale holder's write.
pub struct FencedFlags {
    inner: std::sync::Arc<dyn FlagStore>,
    fence: Fence,
}

impl FencedFlags {
    pub fn new(inner: std::sync::Arc<dyn FlagStore>, fence: Fence) -> FencedFlags {
        FencedFlags { inner, fence }
    }
}

impl FlagStore for FencedFlags {
    fn get<'a>(&'a self, name: &'a str) -> FlagFuture<'a, u8> {
        self.inner.get(name)
    }

    fn set<'a>(&'a self, name: &'a str, percent: u8) -> FlagFuture<'a, ()> {
        self.inner.set_fenced(name, percent, &self.fence)
    }

    fn all(&self) -> FlagFuture<'_, BTreeMap<String, u8>> {
        self.inner.all()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn fences(&self) -> bool {
        self.inner.fences()
    }
}

/// A fenced write refused: a newer holder of the run wrote the flag.
#[derive(Debug, thiserror::Error)]
#[error(
    "fenced: {flag} was written by generation {newer} of run {run_id}, and this writer holds generation {ours}: it lost its lease, and writes nothing more"
)]
pub struct Fenced {
    pub flag: String,
    pub run_id: String,
    pub ours: u64,
    pub newer: u64,
}

/// Flags in one JSON object on disk: `{"STATUS_BOARD_V2_ENABLED": 10, ...}`, replaced
/// atomically on every change.
pub struct LocalFlags {
    path: PathBuf,
}

impl LocalFlags {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LocalFlags { path: path.into() }
    }

    pub fn read(&self, name: &str) -> anyhow::Result<u8> {
        Ok(self.read_all()?.get(name).copied().unwrap_or(0))
    }

    pub fn read_all(&self) -> anyhow::Result<BTreeMap<String, u8>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a JSON object of percentages",
                    self.path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).with_context(|| format!("reading flags {}", self.path.display())),
        }
    }

    pub fn write(&self, name: &str, percent: u8) -> anyhow::Result<()> {
        anyhow::ensure!(
            percent <= 100,
            "flag {name}: {percent}% is not a percentage"
        );
        let mut flags = self.read_all()?;
        flags.insert(name.to_string(), percent);
        let json = serde_json::to_vec_pretty(&flags)?;
        write_atomically(&self.path, &json)
            .with_context(|| format!("writing flags {}", self.path.display()))
    }
}

impl FlagStore for LocalFlags {
    fn get<'a>(&'a self, name: &'a str) -> FlagFuture<'a, u8> {
        Box::pin(async move { self.read(name) })
    }

    fn set<'a>(&'a self, name: &'a str, percent: u8) -> FlagFuture<'a, ()> {
        Box::pin(async move { self.write(name, percent) })
    }

    fn all(&self) -> FlagFuture<'_, BTreeMap<String, u8>> {
        Box::pin(async move { self.read_all() })
    }

    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }
}

/// The guide's feature-flag admin API: `GET {url}` answers a JSON object of percentages,
/// `PUT {url}` with `{"name": ..., "percent": ...}` sets one. Failures are retried briefly,
/// then reported with the URL and status.
pub struct HttpFlags {
    url: String,
    client: reqwest::Client,
}

impl HttpFlags {
    /// `url` is the admin endpoint, e.g. `https://staging-api.example.com/api/admin/feature-flags`.
    pub fn new(url: impl Into<String>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(HttpFlags {
            url: url.into(),
            client,
        })
    }

    async fn with_retries<T, F, Fut>(&self, what: &str, attempt: F) -> anyhow::Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let mut last = None;
        for delay_ms in [0, 100, 400] {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .expect("at least one attempt")
            .context(format!("{what} via {} failed after 3 attempts", self.url)))
    }
}

impl FlagStore for HttpFlags {
    fn get<'a>(&'a self, name: &'a str) -> FlagFuture<'a, u8> {
        Box::pin(async move { Ok(self.all().await?.get(name).copied().unwrap_or(0)) })
    }

    fn set<'a>(&'a self, name: &'a str, percent: u8) -> FlagFuture<'a, ()> {
        Box::pin(async move {
            anyhow::ensure!(
                percent <= 100,
                "flag {name}: {percent}% is not a percentage"
            );
            self.with_retries(&format!("setting {name} to {percent}%"), || async {
                let resp = self
                    .client
                    .put(&self.url)
                    .json(&serde_json::json!({"name": name, "percent": percent}))
                    .send()
                    .await?;
                let status = resp.status();
                anyhow::ensure!(status.is_success(), "{} answered {status}", self.url);
                Ok(())
            })
            .await
        })
    }

    fn all(&self) -> FlagFuture<'_, BTreeMap<String, u8>> {
        Box::pin(async move {
            self.with_retries("reading flags", || async {
                let resp = self.client.get(&self.url).send().await?;
                let status = resp.status();
                anyhow::ensure!(status.is_success(), "{} answered {status}", self.url);
                resp.json::<BTreeMap<String, u8>>().await.with_context(|| {
                    format!("{} did not answer a JSON object of percentages", self.url)
                })
            })
            .await
        })
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}
