//! The store data of one plugin call: capability state, the empty WASI context and the limits.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::limits::MemoryGuard;
use crate::capabilities::exchange::Exchanges;
use crate::capabilities::http::HttpState;
use crate::capabilities::http_client::HttpClient;
use crate::capabilities::log::LogSink;
use crate::capabilities::wasi::{CapturedOutput, empty_context};
use crate::capabilities::wasi_http::OutgoingHttpGate;
use crate::capabilities::{CapabilityView, Grants};

/// Bytes of stdout (and of stderr) kept per call.
const CAPTURE_BYTES: usize = 64 << 10;

pub struct PluginState {
    table: ResourceTable,
    /// None for a plugin that imports no WASI (the stock policies): it can never call into
    /// it, and building the context took 0.4 of a call's 0.5 µs of host state.
    wasi: Option<WasiCtx>,
    wasi_http: WasiHttpCtx,
    pub(crate) http_gate: OutgoingHttpGate,
    pub(crate) log: LogSink,
    pub(crate) http: HttpState,
    pub(crate) memory: MemoryGuard,
    pub(crate) stdout: CapturedOutput,
    pub(crate) stderr: CapturedOutput,
}

impl PluginState {
    /// The state of a call under `grants`; `wasi`: whether the plugin imports WASI.
    pub fn new(
        grants: Arc<Grants>,
        client: HttpClient,
        exchanges: Exchanges,
        memory_bytes: usize,
        wasi: bool,
    ) -> Result<Self, String> {
        let stdout = CapturedOutput::new(CAPTURE_BYTES);
        let stderr = CapturedOutput::new(CAPTURE_BYTES);
        let wasi = wasi
            .then(|| empty_context(&stdout, &stderr, &grants.read_only_dirs))
            .transpose()?;
        Ok(PluginState {
            table: ResourceTable::new(),
            wasi,
            wasi_http: WasiHttpCtx::new(),
            http_gate: OutgoingHttpGate {
                grants: grants.clone(),
                exchanges: exchanges.clone(),
                denied: Vec::new(),
            },
            log: LogSink::new(grants.log_max_lines, grants.log_max_line_bytes),
            http: HttpState::new(client, grants, exchanges),
            memory: MemoryGuard::new(memory_bytes),
            stdout,
            stderr,
        })
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        // Only a plugin that imports WASI reaches this, and it has its context. Should another
        // ever do, it gets one that grants nothing: no folder, so building it cannot fail.
        let (stdout, stderr) = (&self.stdout, &self.stderr);
        let ctx = self.wasi.get_or_insert_with(|| {
            empty_context(stdout, stderr, &[]).expect("a context without folders opens nothing")
        });
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.wasi_http,
            table: &mut self.table,
            hooks: &mut self.http_gate,
        }
    }
}

impl CapabilityView for PluginState {
    fn log_sink(&mut self) -> &mut LogSink {
        &mut self.log
    }
    fn http_state(&mut self) -> &mut HttpState {
        &mut self.http
    }
}
