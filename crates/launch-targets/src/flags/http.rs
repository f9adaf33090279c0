//! The guide's feature-flag admin API (the StatusBoard app's own `/api/admin/feature-flags`),
//! and what every HTTP provider shares: brief retries, and answers read under a size cap.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use anyhow::Context;

use super::{FlagFuture, FlagStore};

/// The most a flag service's answer may be: larger is refused, not read until memory runs out.
pub(super) const MAX_ANSWER_BYTES: usize = 4 << 20;

/// `GET {url}` answers a JSON object of percentages, `PUT {url}` with
/// `{"name": ..., "percent": ...}` sets one. Failures are retried briefly, then reported with
/// the URL and status.
pub struct HttpFlags {
    url: String,
    client: reqwest::Client,
}

impl HttpFlags {
    /// `url` is the admin endpoint, e.g. `https://staging-api.example.com/api/admin/feature-flags`.
    pub fn new(url: impl Into<String>) -> anyhow::Result<Self> {
        Ok(HttpFlags {
            url: url.into(),
            client: client()?,
        })
    }

    async fn all(&self) -> anyhow::Result<BTreeMap<String, u8>> {
        retried(&format!("reading flags via {}", self.url), || async {
            let resp = self.client.get(&self.url).send().await?;
            let status = resp.status();
            anyhow::ensure!(status.is_success(), "{} answered {status}", self.url);
            let body = body_capped(resp, &self.url).await?;
            serde_json::from_slice(&body).with_context(|| {
                format!("{} did not answer a JSON object of percentages", self.url)
            })
        })
        .await
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
            let what = format!("setting {name} to {percent}% via {}", self.url);
            retried(&what, || async {
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

    fn describe(&self) -> String {
        self.url.clone()
    }
}

/// A client whose every request gives up after 10 s: a hung flag service is an error, not a
/// stalled rollback.
pub(super) fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// `attempt`, tried three times over half a second; the last error says what was tried.
pub(super) async fn retried<T, F, Fut>(what: &str, attempt: F) -> anyhow::Result<T>
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
        .context(format!("{what} failed after 3 attempts")))
}

/// The answer's body, refused past `MAX_ANSWER_BYTES` as it arrives.
pub(super) async fn body_capped(mut resp: reqwest::Response, url: &str) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        anyhow::ensure!(
            body.len() + chunk.len() <= MAX_ANSWER_BYTES,
            "{url} answered more than {MAX_ANSWER_BYTES} bytes"
        );
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
