//! Host-side bindings of the capability interfaces (`launch:plugin/{types,log,http}`), generated
//! once here; the role worlds in `runtime::bindings` reuse them through `with:`.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "capabilities",
    imports: { default: async },
    additional_derives: [PartialEq],
});

pub use launch::plugin::{http, log, types};
