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
    wasi: WasiCtx,
    wasi_http: WasiHttpCtx,
    pub(crate) http_gate: OutgoingHttpGate,
    pub(crate) log: LogSink,
    pub(crate) http: HttpState,
    pub(crate) memory: MemoryGuard,
    pub(crate) stdout: CapturedOutput,
    pub(crate) stderr: CapturedOutput,
}

impl PluginState {
    pub fn new(
        grants: Arc<Grants>,
        client: HttpClient,
        exchanges: Exchanges,
        memory_bytes: usize,
    ) -> Result<Self, String> {
        let stdout = CapturedOutput::new(CAPTURE_BYTES);
        let stderr = CapturedOutput::new(CAPTURE_BYTES);
        let wasi = empty_context(&stdout, &stderr, &grants.read_only_dirs)?;
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
        WasiCtxView {
            ctx: &mut self.wasi,
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
