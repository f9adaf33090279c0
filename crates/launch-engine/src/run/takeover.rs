//! What a process that took a run over does about the stage that was in progress: the stage's
//! `takeover` — `resume` it, or `rollback` (a canary's default: its judgement was its dead
//! runner's, and the flag it left may be anywhere between two steps).

use crate::context::{Ctx, StageResult};
use crate::journal::{Event, Record};
use crate::record::VerdictRecord;
use crate::runbook::{Runbook, Stage, Takeover};
use launch_runtime::Catalog;

/// The action for the stage in progress in `records` (the last one started and not finished);
/// `resume` when none was.
pub(super) fn action(runbook: &Runbook, catalog: &Catalog, records: &[Record]) -> Takeover {
    let mut in_progress: Option<&str> = None;
    for r in records {
        match &r.event {
            Event::StageStarted { stage, .. } => in_progress = Some(stage),
            Event::StageFinished { stage, .. } if in_progress == Some(stage.as_str()) => {
                in_progress = None;
            }
            _ => {}
        }
    }
    in_progress
        .and_then(|name| runbook.stages.iter().find(|s| s.name.get_ref() == name))
        .map_or(Takeover::Resume, |stage| {
            let role = stage
                .plugin_name()
                .and_then(|p| catalog.get(p))
                .map(|p| p.role());
            stage.takeover(role)
        })
}

/// Rolls the stage's flag back instead of resuming it.
pub(super) async fn roll_back(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let reason = "taken over after its runner went silent: the stage's judgement was the dead runner's (takeover = \"rollback\")";
    crate::stages::rollback(ctx, stage, "takeover", reason).await?;
    Ok(StageResult {
        summary: format!("rolled back on takeover: {reason}"),
        verdict: VerdictRecord::Fail(reason.into()),
        checks: Vec::new(),
        plugin: None,
        rolled_back: true,
    })
}
