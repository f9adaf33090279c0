//! HTTP exchanges as recorded and as canned: every request a plugin makes (through `http` or
//! `wasi:http`) is recorded with its answer, so a call can be replayed with the network answered
//! from the recording — by `replay`, by a fixture's `[[http]]` table, and for smoke shadows from
//! the live call's exchanges. Secrets are masked before an exchange leaves this module.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::http_client::{Failure, Response};

/// One request and what answered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Exchange {
    /// `GET`, `POST`... (upper case).
    #[serde(default = "get")]
    pub method: String,
    pub url: String,
    /// The request's headers, sensitive values masked.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_headers: BTreeMap<String, String>,
    /// The response's status; absent when the request failed (`error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Response headers (names lower case, repeated ones joined by `, `), sensitive ones masked.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body as text, when it is UTF-8.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// The body in base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
    /// Where redirects ended; the request's URL when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
    #[serde(default)]
    pub elapsed_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<f64>,
    /// Why no response came: `denied`, `timeout`, `connect`, `invalid-request`, `protocol`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ExchangeError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ExchangeError {
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

fn get() -> String {
    "GET".into()
}

/// Headers whose values are credentials: masked in every recording.
pub fn sensitive_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || [
        "token", "secret", "api-key", "apikey", "password", "session",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// `name → value` with sensitive values masked; repeated names joined by `, `.
pub fn masked<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let value = if sensitive_header(&name) {
            "***"
        } else {
            value
        };
        out.entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.to_string());
    }
    out
}

/// A URL with any `user:password@` masked.
pub fn masked_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("***");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_string(),
    }
}

impl Exchange {
    pub fn new(method: &str, url: &str, request_headers: BTreeMap<String, String>) -> Exchange {
        Exchange {
            method: method.to_ascii_uppercase(),
            url: masked_url(url),
            request_headers,
            status: None,
            headers: BTreeMap::new(),
            body: String::new(),
            body_base64: None,
            body_truncated: false,
            final_url: None,
            elapsed_ms: 0.0,
            ttfb_ms: None,
            error: None,
        }
    }

    /// Fills in the answer.
    pub fn answered(mut self, result: &Result<Response, Failure>) -> Exchange {
        match result {
            Ok(r) => {
                self.status = Some(r.status);
                self.headers = masked(r.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                self.set_body(&r.body);
                self.body_truncated = r.body_truncated;
                let final_url = masked_url(&r.final_url);
                self.final_url = (final_url != self.url).then_some(final_url);
                self.elapsed_ms = r.elapsed.as_secs_f64() * 1e3;
                self.ttfb_ms = Some(r.time_to_first_byte.as_secs_f64() * 1e3);
            }
            Err(f) => {
                let (kind, message) = match f {
                    Failure::Denied(m) => ("denied", m),
                    Failure::Timeout(m) => ("timeout", m),
                    Failure::Connect(m) => ("connect", m),
                    Failure::InvalidRequest(m) => ("invalid-request", m),
                    Failure::Protocol(m) => ("protocol", m),
                };
                self.error = Some(ExchangeError {
                    kind: kind.into(),
                    message: message.clone(),
                });
            }
        }
        self
    }

    pub fn set_body(&mut self, body: &[u8]) {
        match std::str::from_utf8(body) {
            Ok(text) => {
                self.body = text.to_string();
                self.body_base64 = None;
            }
            Err(_) => {
                self.body.clear();
                self.body_base64 = Some(base64::engine::general_purpose::STANDARD.encode(body));
            }
        }
    }

    pub fn body_bytes(&self) -> Vec<u8> {
        self.body_base64
            .as_ref()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .unwrap_or_else(|| self.body.as_bytes().to_vec())
    }

    /// The recorded answer, as the HTTP client would have given it.
    pub fn result(&self) -> Result<Response, Failure> {
        if let Some(e) = &self.error {
            let m = e.message.clone();
            return Err(match e.kind.as_str() {
                "denied" => Failure::Denied(m),
                "timeout" => Failure::Timeout(m),
                "connect" => Failure::Connect(m),
                "invalid-request" => Failure::InvalidRequest(m),
                _ => Failure::Protocol(m),
            });
        }
        let ms = |v: f64| Duration::try_from_secs_f64(v / 1e3).unwrap_or_default();
        Ok(Response {
            status: self.status.unwrap_or(200),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            body: self.body_bytes(),
            body_truncated: self.body_truncated,
            final_url: self.final_url.clone().unwrap_or_else(|| self.url.clone()),
            elapsed: ms(self.elapsed_ms),
            time_to_first_byte: ms(self.ttfb_ms.unwrap_or(self.elapsed_ms)),
        })
    }

    /// Whether this exchange answers `method url` (URLs compared once normalised).
    fn answers(&self, method: &str, url: &str) -> bool {
        let norm = |u: &str| reqwest::Url::parse(u).map_or_else(|_| u.to_string(), String::from);
        self.method.eq_ignore_ascii_case(method) && norm(&self.url) == norm(url)
    }
}

/// Where one call's HTTP answers come from.
#[derive(Debug, Clone, Default)]
pub enum HttpSource {
    /// The network, under the stage's grants.
    #[default]
    Live,
    /// Only these exchanges, each answering once, in order; the network is never reached.
    Canned(Arc<[Exchange]>),
}

/// One call's exchanges: what it recorded, and (when canned) which answers are used up. Shared
/// by the `http` capability and the `wasi:http` hooks of the same call.
#[derive(Clone, Default)]
pub struct Exchanges {
    inner: Arc<Mutex<Book>>,
}

#[derive(Default)]
struct Book {
    canned: Option<(Arc<[Exchange]>, Vec<bool>)>,
    recorded: Vec<Exchange>,
}

impl Exchanges {
    pub fn new(source: &HttpSource) -> Exchanges {
        let book = Book {
            canned: match source {
                HttpSource::Live => None,
                HttpSource::Canned(list) => Some((list.clone(), vec![false; list.len()])),
            },
            recorded: Vec::new(),
        };
        Exchanges {
            inner: Arc::new(Mutex::new(book)),
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_canned(&self) -> bool {
        self.book().canned.is_some()
    }

    /// Answers `asked` from the canned exchanges and records the exchange as it was answered
    /// (the canned one, with the request's headers), or the failure when none answers.
    pub fn replay(&self, asked: Exchange) -> Result<Exchange, Failure> {
        match self.answer(&asked.method, &asked.url) {
            Ok(mut x) => {
                x.request_headers = asked.request_headers;
                self.record(x.clone());
                Ok(x)
            }
            Err(f) => {
                self.record(asked.answered(&Err(f.clone())));
                Err(f)
            }
        }
    }

    /// The first unused canned exchange for `method url`; a failure saying so when there is
    /// none, since a canned call must never reach the network.
    fn answer(&self, method: &str, url: &str) -> Result<Exchange, Failure> {
        let mut book = self.book();
        let Some((list, used)) = book.canned.as_mut() else {
            return Err(Failure::Connect("no canned exchanges".into()));
        };
        let found = (0..list.len()).find(|&i| !used[i] && list[i].answers(method, url));
        match found {
            Some(i) => {
                used[i] = true;
                Ok(list[i].clone())
            }
            None => Err(Failure::Connect(format!(
                "no recorded answer for {method} {} (a replayed or canned call never reaches the network)",
                masked_url(url)
            ))),
        }
    }

    pub fn record(&self, exchange: Exchange) {
        self.book().recorded.push(exchange);
    }

    pub fn take(&self) -> Vec<Exchange> {
        std::mem::take(&mut self.book().recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked_in_urls_and_headers() {
        let h = masked([
            ("Authorization", "Bearer abc"),
            ("X-Api-Key", "k"),
            ("Accept", "a"),
            ("accept", "b"),
        ]);
        assert_eq!(h["authorization"], "***");
        assert_eq!(h["x-api-key"], "***");
        assert_eq!(h["accept"], "a, b");
        let u = masked_url("https://bob:hunter22@example.com/x");
        assert!(!u.contains("hunter22") && !u.contains("bob"), "{u}");
    }

    #[test]
    fn canned_answers_are_used_once_in_order_and_never_invented() {
        let mut a = Exchange::new("GET", "http://h/a", BTreeMap::new());
        a.status = Some(200);
        let mut b = a.clone();
        b.status = Some(503);
        let ex = Exchanges::new(&HttpSource::Canned(vec![a, b].into()));
        let ask = || Exchange::new("get", "http://h/a", BTreeMap::new());
        assert_eq!(ex.replay(ask()).unwrap().status, Some(200));
        assert_eq!(ex.replay(ask()).unwrap().status, Some(503));
        let third = ex.replay(ask()).unwrap_err();
        assert!(third.to_string().contains("no recorded answer"), "{third}");
        assert_eq!(
            ex.take().len(),
            3,
            "answered and unanswered requests are recorded"
        );
    }

    #[test]
    fn binary_bodies_round_trip() {
        let mut e = Exchange::new("GET", "http://h/", BTreeMap::new());
        e.set_body(&[0xff, 0, 1]);
        assert!(e.body.is_empty());
        assert_eq!(e.body_bytes(), vec![0xff, 0, 1]);
        e.set_body(b"{\"ok\":true}");
        assert_eq!(e.body, "{\"ok\":true}");
    }
}
