//! Host-side bindings of the role worlds. Shared types and imports come from
//! `capabilities::bindings`, so a `StepReport` is one Rust type whatever role produced it.

macro_rules! role_world {
    ($module:ident, $world:literal, { $($with:tt)* }) => {
        pub mod $module {
            wasmtime::component::bindgen!({
                path: "../../wit",
                world: $world,
                imports: { default: async },
                exports: { default: async },
                additional_derives: [PartialEq],
                with: { $($with)* },
            });
        }
    };
}

role_world!(describe, "plugin", {
    "launch:plugin/types": crate::capabilities::bindings::types,
});
role_world!(smoke_suite, "smoke-suite-plugin", {
    "launch:plugin/types": crate::capabilities::bindings::types,
    "launch:plugin/log": crate::capabilities::bindings::log,
    "launch:plugin/http": crate::capabilities::bindings::http,
});
role_world!(slo_gate, "slo-gate-plugin", {
    "launch:plugin/types": crate::capabilities::bindings::types,
    "launch:plugin/log": crate::capabilities::bindings::log,
});
role_world!(uat_checklist, "uat-checklist-plugin", {
    "launch:plugin/types": crate::capabilities::bindings::types,
    "launch:plugin/log": crate::capabilities::bindings::log,
    "launch:plugin/http": crate::capabilities::bindings::http,
});
role_world!(canary_policy, "canary-policy-plugin", {
    "launch:plugin/types": crate::capabilities::bindings::types,
    "launch:plugin/log": crate::capabilities::bindings::log,
});
role_world!(step, "step-plugin", {
    "launch:plugin/types": crate::capabilities::bindings::types,
    "launch:plugin/log": crate::capabilities::bindings::log,
    "launch:plugin/http": crate::capabilities::bindings::http,
});
