//! HTTP executed natively with reqwest: one pooled client for the whole process (connection
//! reuse across plugin calls), redirects followed here so every hop passes the caller's gate,
//! a deadline per request and a cap on the body read into memory.

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::{Method, Url};

/// One request, in the host's words.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
    pub follow_redirects: bool,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub body_truncated: bool,
    pub final_url: String,
    pub elapsed: Duration,
    pub time_to_first_byte: Duration,
}

/// Why a request produced no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("denied: {0}")]
    Denied(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Limits applied to every request of one caller.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub max_body_bytes: usize,
    pub max_redirects: usize,
}

/// Decides whether a URL may be contacted; called before the first hop and before every
/// redirect. Returns the reason when the answer is no.
pub type Gate<'a> = &'a (dyn Fn(&Url) -> Result<(), String> + Send + Sync);

#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    pub fn new() -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            // Redirects are followed in `send` so that each hop passes the gate.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("launch-host/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()?;
        Ok(HttpClient { client })
    }

    /// Sends one request, following redirects, all within `req.timeout`.
    pub async fn send(
        &self,
        req: Request,
        caps: Caps,
        gate: Gate<'_>,
    ) -> Result<Response, Failure> {
        let timeout = req.timeout;
        match tokio::time::timeout(timeout, self.send_following(req, caps, gate)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout(format!(
                "no complete response within {} ms",
                timeout.as_millis()
            ))),
        }
    }

    /// Sends every request with at most `concurrency` in flight; results keep the input order.
    pub async fn send_batch(
        &self,
        requests: Vec<Request>,
        concurrency: usize,
        caps: Caps,
        gate: Gate<'_>,
    ) -> Vec<Result<Response, Failure>> {
        futures::stream::iter(requests.into_iter().map(|r| self.send(r, caps, gate)))
            .buffered(concurrency.max(1))
            .collect()
            .await
    }

    async fn send_following(
        &self,
        req: Request,
        caps: Caps,
        gate: Gate<'_>,
    ) -> Result<Response, Failure> {
        let mut url = Url::parse(&req.url)
            .map_err(|e| Failure::InvalidRequest(format!("`{}`: {e}", req.url)))?;
        let mut method = req.method.clone();
        let mut body = req.body.clone();
        let started = Instant::now();
        for _hop in 0..=caps.max_redirects {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(Failure::InvalidRequest(format!(
                    "`{url}`: only http and https are supported"
                )));
            }
            gate(&url).map_err(Failure::Denied)?;
            let mut builder = self.client.request(method.clone(), url.clone());
            for (name, value) in &req.headers {
                builder = builder.header(name, value);
            }
            if !body.is_empty() {
                builder = builder.body(body.clone());
            }
            let resp = builder.send().await.map_err(|e| classify(&url, &e))?;
            let ttfb = started.elapsed();
            let status = resp.status();
            if req.follow_redirects
                && status.is_redirection()
                && let Some(location) = resp.headers().get(reqwest::header::LOCATION)
            {
                let location = location
                    .to_str()
                    .map_err(|_| Failure::Protocol("non-text Location header".into()))?;
                url = url
                    .join(location)
                    .map_err(|e| Failure::Protocol(format!("bad Location `{location}`: {e}")))?;
                // 303 (and, as browsers do, 301/302 after POST) turn into a GET without body.
                if status == 303 || ((status == 301 || status == 302) && method == Method::POST) {
                    method = Method::GET;
                    body.clear();
                }
                continue;
            }
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let final_url = resp.url().to_string();
            let (body, body_truncated) = read_capped(resp, caps.max_body_bytes)
                .await
                .map_err(|e| classify(&url, &e))?;
            return Ok(Response {
                status: status.as_u16(),
                headers,
                body,
                body_truncated,
                final_url,
                elapsed: started.elapsed(),
                time_to_first_byte: ttfb,
            });
        }
        Err(Failure::Protocol(format!(
            "more than {} redirects",
            caps.max_redirects
        )))
    }
}

/// Reads at most `cap` bytes of the body; the rest is not read into memory.
async fn read_capped(
    resp: reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

fn classify(url: &Url, e: &reqwest::Error) -> Failure {
    let mut msg = format!("{url}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    if e.is_timeout() {
        Failure::Timeout(msg)
    } else if e.is_connect() {
        Failure::Connect(msg)
    } else if e.is_builder() || e.is_request() && !e.is_body() {
        Failure::InvalidRequest(msg)
    } else {
        Failure::Protocol(msg)
    }
}
