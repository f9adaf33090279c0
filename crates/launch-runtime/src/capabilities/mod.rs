//! The host side of each WIT import a plugin may use. Each capability links its bindings into
//! the engine's linker once, and builds the state of one plugin call from the stage's grants;
//! `http_client` is the back-end of `http` (and of gated `wasi:http`): reqwest, executed natively.

pub mod allow_list;
pub mod bindings;
pub mod exchange;
pub mod grants;
pub mod http;
pub mod http_client;
pub mod log;
pub mod wasi;
pub mod wasi_http;

use wasmtime::component::{HasSelf, Linker};

pub use allow_list::{AllowList, HostPattern};
pub use grants::{Grants, ReadOnlyDir};

/// The network interfaces a component imports, by the names people read in a capability
/// manifest: `launch:plugin/http` (the contract's client) and `wasi:http` (what `fetch()` and
/// other WASI clients use). Both are gated by the same allow-list; a component importing
/// neither cannot reach the network whatever hosts it is granted.
pub fn network_imports<'a>(imports: impl IntoIterator<Item = &'a str>) -> Vec<&'static str> {
    let mut found = Vec::new();
    for name in imports {
        let interface = if name.starts_with("launch:plugin/http") {
            "launch:plugin/http"
        } else if name.starts_with("wasi:http/outgoing-handler") {
            "wasi:http"
        } else {
            continue;
        };
        if !found.contains(&interface) {
            found.push(interface);
        }
    }
    found.sort_unstable();
    found
}

/// Access from a call's store data to each capability's state.
pub trait CapabilityView: Send + 'static {
    fn log_sink(&mut self) -> &mut log::LogSink;
    fn http_state(&mut self) -> &mut http::HttpState;
}

/// Links every capability and WASI (empty context, gated `wasi:http`) into `linker`.
pub fn link_all<T>(linker: &mut Linker<T>) -> wasmtime::Result<()>
where
    T: CapabilityView + wasmtime_wasi::WasiView + wasmtime_wasi_http::WasiHttpView,
{
    bindings::log::add_to_linker::<T, HasSelf<log::LogSink>>(linker, T::log_sink)?;
    bindings::http::add_to_linker::<T, HasSelf<http::HttpState>>(linker, T::http_state)?;
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    Ok(())
}
