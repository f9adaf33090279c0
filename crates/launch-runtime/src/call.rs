//! One sandboxed call: a fresh store with the call's capability state, a memory ceiling, an
//! epoch deadline plus a host-side timeout; whatever goes wrong becomes a `CallFailure` that
//! names the plugin and the function, with what it logged.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Store;

use crate::Runtime;
use crate::capabilities::Grants;
use crate::capabilities::exchange::{Exchange, Exchanges, HttpSource};
use crate::capabilities::log::{LogLine, LogSink, Source};
use crate::capabilities::wasi::CapturedOutput;
use crate::engine::deadline_ticks;
use crate::error::{CallFailure, FailureKind};
use crate::limits::{Limits, MemoryLimitExceeded};
use crate::state::PluginState;

/// What the operator allows one call: limits enforced by the runtime, grants by capabilities.
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    pub limits: Limits,
    pub grants: Arc<Grants>,
    /// The network, or the exchanges a replayed call is answered from.
    pub http: HttpSource,
}

/// A successful call's value, with what the plugin logged and how long it took.
#[derive(Debug)]
pub struct Called<T> {
    pub value: T,
    pub logs: Vec<LogLine>,
    pub elapsed: Duration,
    /// Requests the plugin made through the `http` capability.
    pub http_requests: usize,
    /// Every HTTP exchange of the call (`http` and `wasi:http`), in order, secrets masked.
    pub exchanges: Vec<Exchange>,
}

/// Who a call is into: the plugin, its function, and whether the plugin imports WASI.
#[derive(Clone, Copy)]
pub(crate) struct Callee<'a> {
    pub(crate) plugin: &'a str,
    pub(crate) function: &'a str,
    pub(crate) wasi: bool,
}

/// A fresh store for one call under a sandbox, with the handles its outcome is read from.
pub(crate) struct Prepared {
    pub(crate) store: Store<PluginState>,
    stdout: CapturedOutput,
    stderr: CapturedOutput,
    exchanges: Exchanges,
}

impl Prepared {
    /// `wasi`: whether the plugin imports WASI.
    pub(crate) fn new(
        runtime: &Runtime,
        sandbox: &Sandbox,
        wasi: bool,
    ) -> Result<Prepared, String> {
        let limits = sandbox.limits.bounded();
        let exchanges = Exchanges::new(&sandbox.http);
        let state = PluginState::new(
            sandbox.grants.clone(),
            runtime.inner.http.clone(),
            exchanges.clone(),
            limits.memory_bytes,
            wasi,
        )?;
        let (stdout, stderr) = (state.stdout.clone(), state.stderr.clone());
        let mut store = Store::new(&runtime.inner.engine, state);
        store.limiter(|s| &mut s.memory);
        // Instantiation runs guest code too (start functions): it has the call's deadline.
        store.set_epoch_deadline(deadline_ticks(limits.deadline));
        store.epoch_deadline_trap();
        Ok(Prepared {
            store,
            stdout,
            stderr,
            exchanges,
        })
    }
}

/// Runs one call under `sandbox` in `prepared` (a spare made ahead for it) or else a fresh
/// store, turning every way it can go wrong into a `CallFailure` that names the plugin and
/// function. `body` gives the store back with its outcome, so a call that failed still has
/// what it logged (a panic's message, from a plugin built without WASI). A call that answered
/// hands its store to `done`, to be torn down.
pub(crate) async fn call<T, F, Fut>(
    runtime: &Runtime,
    callee: Callee<'_>,
    sandbox: &Sandbox,
    prepared: Option<Prepared>,
    body: F,
    done: impl FnOnce(Store<PluginState>),
) -> Result<Called<T>, CallFailure>
where
    F: FnOnce(Store<PluginState>) -> Fut,
    Fut: Future<Output = (wasmtime::Result<T>, Store<PluginState>)>,
{
    let Callee {
        plugin, function, ..
    } = callee;
    let started = Instant::now();
    let limits = sandbox.limits.bounded();
    let prepared = match prepared {
        Some(p) => p,
        None => Prepared::new(runtime, sandbox, callee.wasi).map_err(|why| CallFailure {
            plugin: plugin.to_string(),
            function: function.to_string(),
            kind: FailureKind::Instantiate(why),
            logs: Vec::new(),
        })?,
    };
    let Prepared {
        mut store,
        stdout,
        stderr,
        exchanges,
    } = prepared;
    // The deadline counts from here, for a spare made earlier too.
    store.set_epoch_deadline(deadline_ticks(limits.deadline));

    // The epoch deadline stops guest code; this timeout also covers time spent awaiting host
    // calls (a slow HTTP request), with a little slack so the epoch trap wins when both apply.
    let hard = limits.deadline + Duration::from_millis(250);
    let outcome = tokio::time::timeout(hard, body(store)).await;

    let collect_logs = |state: Option<&mut PluginState>| {
        let (mut sink, denied) = match state {
            Some(s) => (
                std::mem::replace(&mut s.log, LogSink::new(0, 0)),
                std::mem::take(&mut s.http_gate.denied),
            ),
            None => (
                LogSink::new(
                    sandbox.grants.log_max_lines,
                    sandbox.grants.log_max_line_bytes,
                ),
                Vec::new(),
            ),
        };
        for d in denied {
            sink.push(crate::capabilities::log::Level::Warn, Source::Log, &d);
        }
        sink.push_captured(Source::Stdout, &stdout.take());
        sink.push_captured(Source::Stderr, &stderr.take());
        sink.finish()
    };
    let failure = |kind: FailureKind, logs: Vec<LogLine>| CallFailure {
        plugin: plugin.to_string(),
        function: function.to_string(),
        kind,
        logs,
    };
    match outcome {
        Ok((Ok(value), mut store)) => {
            let state = store.data_mut();
            let http_requests = state.http.requests;
            let logs = collect_logs(Some(state));
            let elapsed = started.elapsed();
            done(store);
            Ok(Called {
                value,
                logs,
                elapsed,
                http_requests,
                exchanges: exchanges.take(),
            })
        }
        Ok((Err(error), mut store)) => {
            let logs = collect_logs(Some(store.data_mut()));
            Err(failure(classify_error(&error, sandbox), logs))
        }
        Err(_) => Err(failure(
            FailureKind::Deadline(limits.deadline),
            collect_logs(None),
        )),
    }
}

fn classify_error(error: &wasmtime::Error, sandbox: &Sandbox) -> FailureKind {
    if let Some(m) = error.downcast_ref::<MemoryLimitExceeded>() {
        return FailureKind::MemoryLimit {
            limit: m.limit,
            requested: m.requested,
        };
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => FailureKind::Deadline(sandbox.limits.bounded().deadline),
        Some(trap) => FailureKind::Trap(trap.to_string()),
        None => {
            let text = format!("{error:#}");
            // Pool exhaustion or a failing start function surfaces before any guest code runs.
            if text.contains("instantiat") || text.contains("pooling") {
                FailureKind::Instantiate(text)
            } else {
                FailureKind::Trap(text)
            }
        }
    }
}
