//! The `http` capability: the plugin's requests, executed by the host's HTTP provider under the
//! stage's grants (allow-list, timeout, body cap, concurrency and request budget).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;

use super::bindings::http;
use super::exchange::{Exchange, Exchanges, masked};
use super::grants::Grants;
use crate::capabilities::http_client::{Caps, Failure, HttpClient, Request, Response};

/// Per-call state of the `http` capability.
pub struct HttpState {
    client: HttpClient,
    grants: Arc<Grants>,
    /// Requests sent so far in this call (denied ones included).
    pub requests: usize,
    /// What the call's requests got, and the canned answers when the call is replayed.
    pub exchanges: Exchanges,
}

impl HttpState {
    pub fn new(client: HttpClient, grants: Arc<Grants>, exchanges: Exchanges) -> Self {
        HttpState {
            client,
            grants,
            requests: 0,
            exchanges,
        }
    }

    /// Sends admitted requests (at most `concurrency` at a time), live or from the canned
    /// exchanges, and records each exchange; results keep the input order.
    async fn send_all(
        &self,
        requests: Vec<Request>,
        concurrency: usize,
    ) -> Vec<Result<Response, Failure>> {
        let grants = self.grants.clone();
        let gate = move |url: &reqwest::Url| grants.allow_hosts.check(url);
        let asked: Vec<Exchange> = requests
            .iter()
            .map(|r| {
                let headers = masked(r.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                Exchange::new(r.method.as_str(), &r.url, headers)
            })
            .collect();
        if self.exchanges.is_canned() {
            // The allow-list applies to a canned answer as it would to the network.
            return requests
                .iter()
                .zip(asked)
                .map(|(r, asked)| {
                    let url = reqwest::Url::parse(&r.url)
                        .map_err(|e| Failure::InvalidRequest(format!("`{}`: {e}", r.url)))
                        .and_then(|url| gate(&url).map_err(Failure::Denied));
                    match url {
                        Ok(()) => self.exchanges.replay(asked)?.result(),
                        Err(f) => {
                            self.exchanges.record(asked.answered(&Err(f.clone())));
                            Err(f)
                        }
                    }
                })
                .collect();
        }
        let results = self
            .client
            .send_batch(requests, concurrency, self.caps(), &gate)
            .await;
        for (exchange, result) in asked.into_iter().zip(&results) {
            self.exchanges.record(exchange.answered(result));
        }
        results
    }

    fn caps(&self) -> Caps {
        Caps {
            max_body_bytes: self.grants.http_max_body_bytes,
            max_redirects: 10,
        }
    }

    /// Converts and budgets one request; `Err` is answered to the plugin without any I/O.
    fn admit(&mut self, req: http::Request) -> Result<Request, http::Error> {
        self.requests += 1;
        if self.requests > self.grants.http_max_requests {
            return Err(http::Error::Denied(format!(
                "request budget of {} per call exhausted",
                self.grants.http_max_requests
            )));
        }
        let method = match req.method {
            http::Method::Get => Method::GET,
            http::Method::Head => Method::HEAD,
            http::Method::Post => Method::POST,
            http::Method::Put => Method::PUT,
            http::Method::Patch => Method::PATCH,
            http::Method::Delete => Method::DELETE,
            http::Method::Options => Method::OPTIONS,
        };
        let asked = req.timeout_ms.map(|ms| Duration::from_millis(ms.into()));
        Ok(Request {
            method,
            url: req.url,
            headers: req.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: req.body,
            timeout: asked.map_or(self.grants.http_timeout, |t| {
                t.min(self.grants.http_timeout)
            }),
            follow_redirects: req.follow_redirects.unwrap_or(true),
        })
    }
}

impl http::Host for HttpState {
    async fn send(&mut self, req: http::Request) -> Result<http::Response, http::Error> {
        let req = self.admit(req)?;
        let result = self.send_all(vec![req], 1).await.pop();
        result
            .unwrap_or_else(|| Err(Failure::Protocol("no answer".into())))
            .map(to_wit)
            .map_err(error_to_wit)
    }

    async fn send_batch(
        &mut self,
        requests: Vec<http::Request>,
        concurrency: u32,
    ) -> Vec<Result<http::Response, http::Error>> {
        let admitted: Vec<Result<Request, http::Error>> =
            requests.into_iter().map(|r| self.admit(r)).collect();
        let to_send: Vec<Request> = admitted
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        let concurrency = (concurrency as usize).clamp(1, self.grants.http_max_concurrency);
        let mut sent = self.send_all(to_send, concurrency).await.into_iter();
        admitted
            .into_iter()
            .map(|a| match a {
                Ok(_) => sent
                    .next()
                    .unwrap_or_else(|| Err(Failure::Protocol("no answer".into())))
                    .map(to_wit)
                    .map_err(error_to_wit),
                Err(e) => Err(e),
            })
            .collect()
    }
}

fn to_wit(r: Response) -> http::Response {
    http::Response {
        status: r.status,
        headers: r
            .headers
            .into_iter()
            .map(|(name, value)| http::Header { name, value })
            .collect(),
        body: r.body,
        body_truncated: r.body_truncated,
        final_url: r.final_url,
        elapsed_us: r.elapsed.as_micros() as u64,
        time_to_first_byte_us: r.time_to_first_byte.as_micros() as u64,
    }
}

fn error_to_wit(f: Failure) -> http::Error {
    match f {
        Failure::Denied(m) => http::Error::Denied(m),
        Failure::Timeout(m) => http::Error::Timeout(m),
        Failure::Connect(m) => http::Error::Connect(m),
        Failure::InvalidRequest(m) => http::Error::InvalidRequest(m),
        Failure::Protocol(m) => http::Error::Protocol(m),
    }
}
