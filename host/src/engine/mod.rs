//! The launch engine: the runbook model, the stage state machine, the journal and resume.
//! It decides *when* things happen; plugins (through `runtime`) decide *whether* they should,
//! and the host does every effect itself.

mod canary;
pub mod environment;
pub mod journal;
pub mod lint;
pub mod lock;
pub mod mirror;
pub mod operation;
pub mod playbook;
mod progress;
pub mod record;
pub mod runbook;
mod stages;
pub use stages::probe_endpoints;
pub mod uat;
pub mod workspace;

pub use playbook::{Outcome, RunOptions, RunSummary};
pub use runbook::{Runbook, RunbookError};
