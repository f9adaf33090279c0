//! How a run ended, for the operator: its summary line, where its reports are, and the exit
//! code that tells CI what happened; refusals and lock conflicts printed as errors.

use std::sync::Arc;

use super::Exit;
use super::output::{esay, say};
use super::terminal::Terminal;
use launch_engine::run::{Launch, Refused};
use launch_engine::{Outcome, RunOptions, Runbook};
use launch_runtime::Catalog;

pub fn exit_for(outcome: Outcome) -> Exit {
    match outcome {
        Outcome::Passed => Exit::Success,
        Outcome::GateFailed => Exit::GateFailed,
        Outcome::RolledBack => Exit::RolledBack,
        Outcome::Aborted => Exit::GateFailed,
        Outcome::HostFailed => Exit::Internal,
    }
}

pub fn print_summary(s: &launch_engine::RunSummary) {
    say!(
        "run {}: {} — {}",
        s.run_id,
        s.outcome.word().to_uppercase(),
        launch_engine::redact::text(&s.summary)
    );
    say!(
        "reports: {}/report.{{md,html,json}}, {}/junit.xml",
        s.run_dir.display(),
        s.run_dir.display()
    );
}

/// Starts a run and turns how it ended into the exit code, printing refusals and lock
/// conflicts as errors.
pub async fn launch(
    runbook: &Runbook,
    text: &str,
    catalog: Catalog,
    options: RunOptions,
    runs_dir: &std::path::Path,
) -> anyhow::Result<Exit> {
    let launch = Launch {
        runbook,
        text,
        catalog,
        options,
        operator: Arc::new(Terminal),
        runs_root: runs_dir,
    };
    match launch_engine::run::start(launch).await {
        Ok(summary) => {
            print_summary(&summary);
            Ok(exit_for(summary.outcome))
        }
        Err(e) => {
            if let Some(refused) = e.downcast_ref::<Refused>() {
                for p in &refused.problems {
                    super::exit::error(p);
                }
                esay!(
                    "error: nothing was run; fix the problems above (`launch-host validate` checks them)"
                );
                Ok(Exit::Usage)
            } else if let Some(lock) = e.downcast_ref::<launch_engine::lock::LockError>() {
                super::exit::error(lock);
                Ok(match lock {
                    launch_engine::lock::LockError::Held { .. } => Exit::Locked,
                    launch_engine::lock::LockError::Unavailable { .. } => Exit::Usage,
                })
            } else {
                Err(e)
            }
        }
    }
}
