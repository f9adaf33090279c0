//! `wasi:http/outgoing-handler` (e.g. JavaScript `fetch`) under the stage's grants, like the
//! `http` capability: the allow-list before anything leaves the process, the stage's timeout
//! as the ceiling, and every exchange recorded — the response body is copied (up to the body
//! cap) as the guest reads it — or answered from the canned exchanges when the call is replayed.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::exchange::{Exchange, ExchangeError, Exchanges, masked};
use super::grants::Grants;
use super::http_client::Failure;

type Sent = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

/// The `wasi:http` hooks of one call.
pub struct OutgoingHttpGate {
    pub grants: Arc<Grants>,
    pub exchanges: Exchanges,
    /// Why requests were refused, for the call's log.
    pub denied: Vec<String>,
}

impl WasiHttpHooks for OutgoingHttpGate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let uri = request.uri().clone();
        let host = uri
            .host()
            .unwrap_or("")
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            _ => Some(80),
        });
        let asked = Exchange::new(
            request.method().as_str(),
            &uri.to_string(),
            masked(
                request
                    .headers()
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("(not text)"))),
            ),
        );
        if let Err(why) = self.grants.allow_hosts.check_host(&host, port) {
            self.denied
                .push(format!("wasi:http request to {uri} denied: {why}"));
            self.exchanges
                .record(asked.answered(&Err(Failure::Denied(why.clone()))));
            drop(fut);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        if self.exchanges.is_canned() {
            let answer = self.exchanges.replay(asked);
            return Box::new(async move { canned(answer) });
        }
        let timeout = self.grants.http_timeout;
        let recorder = Recorder {
            exchange: Some(asked),
            exchanges: self.exchanges.clone(),
            body: Vec::new(),
            cap: self.grants.http_max_body_bytes,
            truncated: false,
            started: Instant::now(),
        };
        Box::new(async move {
            // The stage's timeout is the ceiling, whatever the guest asks.
            let cap = |t: Option<Duration>| Some(t.map_or(timeout, |t| t.min(timeout)));
            let o = options.unwrap_or_default();
            let options = Some(RequestOptions {
                connect_timeout: cap(o.connect_timeout),
                first_byte_timeout: cap(o.first_byte_timeout),
                between_bytes_timeout: cap(o.between_bytes_timeout),
            });
            match wasmtime_wasi_http::default_send_request(request, options).await {
                Ok((res, io)) => {
                    let mut recorder = recorder;
                    if let Some(e) = recorder.exchange.as_mut() {
                        e.status = Some(res.status().as_u16());
                        e.headers = masked(
                            res.headers()
                                .iter()
                                .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("(not text)"))),
                        );
                        e.ttfb_ms = Some(recorder.started.elapsed().as_secs_f64() * 1e3);
                    }
                    let res = res.map(|b| {
                        RecordingBody {
                            inner: b.boxed_unsync(),
                            recorder,
                        }
                        .boxed_unsync()
                    });
                    Ok((res, Box::new(io) as Box<dyn Future<Output = _> + Send>))
                }
                Err(e) => {
                    if let Some(x) = recorder.exchange {
                        let failed = x.answered(&Err(Failure::Connect(e.to_string())));
                        recorder.exchanges.record(failed);
                    }
                    Err(e)
                }
            }
        })
    }
}

/// A canned answer (already recorded) as a `wasi:http` response.
fn canned(answer: Result<Exchange, Failure>) -> Sent {
    let (x, r) = match answer.and_then(|x| x.result().map(|r| (x, r))) {
        Ok(a) => a,
        Err(Failure::Denied(_)) => return Err(Error::HttpRequestDenied),
        Err(Failure::Timeout(_)) => return Err(Error::ConnectionReadTimeout),
        Err(_) => return Err(Error::ConnectionRefused),
    };
    let mut builder = http::Response::builder().status(r.status);
    for (name, value) in &x.headers {
        builder = builder.header(name, value);
    }
    let body = http_body_util::Full::new(Bytes::from(r.body))
        .map_err(|never| match never {})
        .boxed_unsync();
    let res = builder.body(body).map_err(|_| Error::HttpProtocolError)?;
    Ok((res, Box::new(async { Ok(()) })))
}

/// The exchange of one live `wasi:http` request, finished when its body has been read (or
/// dropped).
struct Recorder {
    exchange: Option<Exchange>,
    exchanges: Exchanges,
    body: Vec<u8>,
    cap: usize,
    truncated: bool,
    started: Instant,
}

impl Recorder {
    fn keep(&mut self, data: &[u8]) {
        let room = self.cap.saturating_sub(self.body.len());
        self.truncated |= data.len() > room;
        self.body.extend_from_slice(&data[..data.len().min(room)]);
    }

    fn finish(&mut self, error: Option<String>) {
        if let Some(mut e) = self.exchange.take() {
            e.set_body(&self.body);
            e.body_truncated = self.truncated;
            e.elapsed_ms = self.started.elapsed().as_secs_f64() * 1e3;
            if let Some(m) = error {
                e.error = Some(ExchangeError {
                    kind: "protocol".into(),
                    message: m,
                });
            }
            self.exchanges.record(e);
        }
    }
}

/// The response body as the guest reads it, copied into the recording on the way.
struct RecordingBody {
    inner: WasiBody,
    recorder: Recorder,
}

impl Drop for RecordingBody {
    fn drop(&mut self) {
        // Dropped before its end was read: the guest stopped reading, and what it read is
        // what it saw (a body read to its last byte is complete even if its end was not
        // polled).
        self.recorder.truncated |= !self.inner.is_end_stream();
        self.recorder.finish(None);
    }
}

impl Body for RecordingBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.recorder.keep(data);
                }
            }
            Poll::Ready(Some(Err(e))) => this.recorder.finish(Some(e.to_string())),
            Poll::Ready(None) => this.recorder.finish(None),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
