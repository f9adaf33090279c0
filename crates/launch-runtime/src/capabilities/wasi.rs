//! WASI 0.2 with an empty context, so components from ordinary toolchains (componentize-py,
//! componentize-js, Rust wasip2) instantiate while seeing nothing of the host: no preopened
//! directories, no environment, no arguments, no sockets, no name lookup. Stdout and stderr are
//! captured into the call's log. `wasi:http/outgoing-handler` goes through the stage's
//! allow-list, like the `http` capability.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};
use wasmtime_wasi_http::{RequestOptions, WasiHttpHooks};

use super::grants::Grants;

/// A stdout/stderr that keeps the first and the last `capacity / 2` bytes and silently
/// discards the middle, so a chatty plugin cannot exhaust host memory and never sees a write
/// error (Rust's `println!` panics on one), while the end — where an exception's message is —
/// always survives.
#[derive(Clone)]
pub struct CapturedOutput {
    buffer: Arc<Mutex<Captured>>,
    capacity: usize,
}

#[derive(Default)]
struct Captured {
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    cut: usize,
}

impl CapturedOutput {
    pub fn new(capacity: usize) -> Self {
        CapturedOutput {
            buffer: Arc::default(),
            capacity,
        }
    }

    pub fn take(&self) -> Vec<u8> {
        let c = std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|e| e.into_inner()));
        let mut out = c.head;
        if c.cut > 0 {
            out.extend_from_slice(format!("\n[{} bytes of output cut]\n", c.cut).as_bytes());
        }
        out.extend(c.tail);
        out
    }

    fn write(&self, buf: &[u8]) {
        let mut c = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        let half = self.capacity / 2;
        let room = half.saturating_sub(c.head.len());
        let (first, rest) = buf.split_at(buf.len().min(room));
        c.head.extend_from_slice(first);
        // Only the last `half` bytes of the rest can survive; count the others as cut.
        let skip = rest.len().saturating_sub(half);
        c.cut += skip;
        c.tail.extend(&rest[skip..]);
        let over = c.tail.len().saturating_sub(half);
        c.tail.drain(..over);
        c.cut += over;
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The sandboxed WASI context of one plugin call.
pub fn empty_context(stdout: &CapturedOutput, stderr: &CapturedOutput) -> WasiCtx {
    let mut b = WasiCtxBuilder::new();
    b.stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    b.build()
}

/// `wasi:http` hooks that apply the stage's allow-list before anything leaves the process.
pub struct OutgoingHttpGate {
    pub grants: Arc<Grants>,
    /// Why the last request was refused, for the call's log.
    pub denied: Vec<String>,
}

impl WasiHttpHooks for OutgoingHttpGate {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        let uri = request.uri();
        let host = uri
            .host()
            .unwrap_or("")
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            _ => Some(80),
        });
        if let Err(why) = self.grants.allow_hosts.check_host(&host, port) {
            self.denied
                .push(format!("wasi:http request to {uri} denied: {why}"));
            drop(fut);
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let timeout = self.grants.http_timeout;
        Box::new(async move {
            use http_body_util::BodyExt;
            // The stage's timeout is the ceiling, whatever the guest asks.
            let cap = |t: Option<std::time::Duration>| Some(t.map_or(timeout, |t| t.min(timeout)));
            let o = options.unwrap_or_default();
            let options = Some(RequestOptions {
                connect_timeout: cap(o.connect_timeout),
                first_byte_timeout: cap(o.first_byte_timeout),
                between_bytes_timeout: cap(o.between_bytes_timeout),
            });
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io)
                    as Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::CapturedOutput;

    #[test]
    fn the_head_and_the_tail_survive_and_the_cut_is_said() {
        let out = CapturedOutput::new(8);
        out.write(b"abc");
        out.write(b"defghij");
        out.write(b"KLM");
        let text = String::from_utf8(out.take()).unwrap();
        assert_eq!(text, "abcd\n[5 bytes of output cut]\njKLM");
        out.write(b"xy");
        assert_eq!(out.take(), b"xy", "take empties the buffer");
    }
}
