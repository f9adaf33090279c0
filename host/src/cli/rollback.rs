//! `launch-host rollback emergency|full|validate`: the guide's `rollback.sh`. Host code only
//! (no plugin is loaded, so it works from any folder) and never blocked by another run's lock:
//! nothing may stand between an operator and turning the feature off.

use clap::{Args, ValueEnum};

use super::workspace::WorkspaceArgs;
use super::{Exit, Host};
use launch_engine::{Operation, RollbackMode};

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Mode {
    /// The primary flag to 0 at once
    Emergency,
    /// The flag to 0, the previous release current again, and a CDN invalidation
    Full,
    /// Post-rollback health checks: flag at 0, API healthy, site up, legacy serving
    Validate,
}

impl From<Mode> for RollbackMode {
    fn from(m: Mode) -> RollbackMode {
        match m {
            Mode::Emergency => RollbackMode::Emergency,
            Mode::Full => RollbackMode::Full,
            Mode::Validate => RollbackMode::Validate,
        }
    }
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    #[arg(value_enum)]
    mode: Mode,
    /// Why; recorded in the journal and the report
    #[arg(long)]
    reason: Option<String>,
    /// The environment to roll back
    #[arg(long = "env", value_name = "ENV", default_value = "production")]
    environment: String,
    #[command(flatten)]
    ws: WorkspaceArgs,
}

/// The reason as journaled: the operator's words and who gave them.
pub fn reason(given: Option<&str>) -> String {
    let who = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    format!("{} (by {who})", given.unwrap_or("no reason given"))
}

pub async fn run(host: &Host, args: RollbackArgs) -> anyhow::Result<Exit> {
    let op = Operation::Rollback {
        environment: args.environment.clone(),
        mode: args.mode.into(),
        reason: reason(args.reason.as_deref()),
    };
    args.ws.run(host, op).await
}
