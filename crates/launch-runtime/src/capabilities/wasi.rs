//! WASI 0.2 with an empty context, so components from ordinary toolchains (componentize-py,
//! componentize-js, Rust wasip2) instantiate while seeing nothing of the host: no environment,
//! no arguments, no sockets, no name lookup, and no directory but the read-only ones a stage
//! grants. Stdout and stderr are
//! captured into the call's log. `wasi:http/outgoing-handler` is gated in `wasi_http`.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

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

/// The sandboxed WASI context of one plugin call, with `dirs` preopened read-only.
pub fn empty_context(
    stdout: &CapturedOutput,
    stderr: &CapturedOutput,
    dirs: &[super::grants::ReadOnlyDir],
) -> Result<WasiCtx, String> {
    let mut b = WasiCtxBuilder::new();
    b.stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    for dir in dirs {
        b.preopened_dir(&dir.host, &dir.guest, wasmtime_wasi::FsPerms::ReadOnly)
            .map_err(|e| {
                format!(
                    "the granted folder {} cannot be opened: {e}",
                    dir.host.display()
                )
            })?;
    }
    Ok(b.build())
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
