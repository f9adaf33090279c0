//! launch-host runs software launches whose policies are sandboxed WebAssembly plugins.
//!
//! Layers, each with a narrow face to the one above:
//! `cli` (commands) → `runtime` (wasmtime engine, plugins, sandboxed calls) →
//! `capabilities` (host side of each WIT import) → `providers` (HTTP and other back-ends).

pub mod capabilities;
pub mod cli;
pub mod providers;
pub mod runtime;
