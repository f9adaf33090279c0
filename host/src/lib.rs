//! launch-host runs software launches whose policies are sandboxed WebAssembly plugins.
//!
//! Layers, each with a narrow face to the one above:
//! `cli` (commands) → `engine` (runbook, stage state machine, journal, resume) → `runtime`
//! (wasmtime engine, plugins, sandboxed calls) → `capabilities` (host side of each WIT import)
//! → `providers` (HTTP, artifact and flag stores). Beside them: `probe` (native load measuring),
//! `simulator` (the embedded StatusBoardV2 target) and `report` (JSON, JUnit, Markdown, HTML).

pub mod capabilities;
pub mod cli;
pub mod engine;
pub mod probe;
pub mod providers;
pub mod report;
pub mod runtime;
pub mod simulator;
