//! What each kind of stage does. Built-in actions are host code, by family: releases (build,
//! deploy, full rollback, CDN), flags (set, rollback, drill), checks (pre-flight, post-rollback),
//! monitoring; plugin stages hand the plugin its inputs and turn its answer into the verdict.

mod blind;
mod calls;
pub use calls::StepHistory;
mod canary;
mod canary_control;
mod checks;
mod flags;
mod monitor;
mod plugin;
mod release;
mod shadow;
mod stability;
mod uat;

use anyhow::Context as _;

use crate::context::{Ctx, StageResult};
use crate::journal::Event;
use crate::record::{CheckRecord, VerdictRecord};
use crate::runbook::{Action, Stage};
use launch_runtime::capabilities::log::LogLine;
use launch_runtime::types::Target;

pub use flags::rollback;

pub async fn run_stage(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    if let Some(action) = &stage.action {
        return match action.get_ref() {
            Action::Preflight => checks::preflight(ctx).await,
            Action::Build => release::build(ctx, stage).map(|(_, files)| {
                StageResult::from_checks(
                    vec![pass("build", format!("{files} file(s) built"))],
                    "build done",
                )
            }),
            Action::Deploy => release::deploy(ctx, stage).await,
            Action::Flag => flags::set_flag(ctx, stage).await,
            Action::Monitor => monitor::monitor(ctx, stage).await,
            Action::Rollback => {
                let reason = stage.reason.as_deref().unwrap_or("runbook rollback stage");
                flags::rollback(ctx, stage, "emergency", reason).await?;
                let mut checks = vec![pass("rollback", "primary flag at 0")];
                if stage.full {
                    checks.push(release::restore_previous_release(ctx, stage).await?);
                }
                let what = if stage.full {
                    "full rollback"
                } else {
                    "emergency rollback"
                };
                Ok(StageResult::from_checks(checks, what))
            }
            Action::RollbackDrill => flags::rollback_drill(ctx, stage).await,
            Action::VerifyRollback => checks::verify_rollback(ctx, stage).await,
            Action::UatInit => uat::init(ctx, stage).await,
            Action::Wait => monitor::wait(ctx, stage).await,
            Action::Report => {
                crate::report::write_all(&ctx.run_dir).context("writing the reports")?;
                Ok(StageResult::from_checks(
                    vec![pass(
                        "reports",
                        format!("written to {}", ctx.run_dir.display()),
                    )],
                    "reports written",
                ))
            }
        };
    }
    plugin::run(ctx, stage).await
}

pub fn pass(name: &str, detail: impl Into<String>) -> CheckRecord {
    CheckRecord {
        name: name.into(),
        verdict: VerdictRecord::Pass,
        observed: None,
        threshold: None,
        unit: String::new(),
        detail: detail.into(),
        skipped: false,
    }
}

pub fn fail(name: &str, reason: impl Into<String>) -> CheckRecord {
    CheckRecord {
        name: name.into(),
        verdict: VerdictRecord::Fail(reason.into()),
        observed: None,
        threshold: None,
        unit: String::new(),
        detail: String::new(),
        skipped: false,
    }
}

pub async fn target(ctx: &Ctx, stage: &Stage) -> anyhow::Result<Target> {
    let env = ctx.env(stage)?;
    Ok(Target {
        environment: env.name.clone(),
        base_url: env.url.clone(),
        api_base_url: env.api_url.clone(),
        release_id: env.store.current().await?,
    })
}

pub fn journal_logs(ctx: &mut Ctx, stage: &Stage, logs: &[LogLine]) -> anyhow::Result<()> {
    for l in logs {
        ctx.journal.append(Event::Log {
            stage: stage.name.get_ref().clone(),
            source: format!("{:?}", l.source).to_lowercase(),
            level: l.level.to_string(),
            message: l.message.clone(),
        })?;
    }
    Ok(())
}

/// Journals a plugin call's failure as a check, so the stage fails with the plugin's name.
pub fn call_failed(e: &launch_runtime::CallFailure) -> CheckRecord {
    fail("plugin-call", e.to_string())
}
