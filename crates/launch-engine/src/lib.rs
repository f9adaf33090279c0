//! The launch engine: the runbook, operator commands as typed plans, the run driver and its
//! stages, the journal, reports, locks, the S3 mirror and the workspace. It decides *when* things
//! happen; plugins (through `launch-runtime`) decide *whether* they should; the host does every
//! effect itself, on the targets of `launch-targets`. It talks to people only through
//! [`operator::Operator`].
//!
//! Modules depend downward only: `run` → `stages` → `context` → {`consistency`, `environment`,
//! `operator`, `report`} → `journal` → `record` → `runbook`; `plan` → `runbook`; `workspace`,
//! `watch`, `lock`, `mirror`, `lint` and `uat` sit beside them and call nothing above.

pub mod agent;
pub mod consistency;
pub mod context;
pub mod control;
pub mod environment;
mod fault;
pub mod files;
pub mod fleet;
pub mod journal;
pub mod lab;
pub mod lease;
pub mod lint;
pub mod lock;
pub mod manifest;
pub mod mirror;
pub mod notify;
pub mod operator;
pub mod owner;
pub mod pins;
pub mod plan;
pub mod record;
pub mod redact;
pub mod registry;
pub mod report;
pub mod run;
pub mod runbook;
mod stages;
pub mod trust;
pub mod uat;
pub mod verify;
pub mod watch;
pub mod workspace;

pub use context::RunOptions;
pub use operator::{Operator, Unattended};
pub use plan::{Operation, RollbackMode};
pub use run::{Outcome, RunSummary};
pub use runbook::{Runbook, RunbookError};
/// A canary step's history as its policy is shown it (the journal benchmark drives it).
pub use stages::StepHistory;
