//! Operators' requests to a running canary (`canary pause|resume|abort|promote --full`, see
//! `crate::control`): what the canary loop does about each, journaled with who and why.

use super::rollback;
use crate::context::{Ctx, StageResult};
use crate::control::{Command, Request};
use crate::journal::Event;
use crate::operator::Notice;
use crate::record::VerdictRecord;
use crate::runbook::Stage;

/// The order of the last request obeyed before a resume, and who paused the canary if it was
/// paused then.
pub(super) fn earlier(ctx: &Ctx, stage: &str) -> ((u64, u64), Option<String>) {
    let Some((_, records)) = ctx.resumed_stage.as_ref().filter(|(s, _)| s == stage) else {
        return ((0, 0), None);
    };
    records
        .iter()
        .fold(((0, 0), None), |(seen, paused), r| match &r.event {
            Event::Control {
                seq,
                requested_ms,
                command,
                operator,
                ..
            } => (
                seen.max((*requested_ms, *seq)),
                match command {
                    Command::Pause => Some(operator.clone()),
                    Command::Resume => None,
                    _ => paused,
                },
            ),
            _ => (seen, paused),
        })
}

/// Carries out an operator's request; the stage's result when it ends the canary.
pub(super) async fn obey(
    ctx: &mut Ctx,
    stage: &Stage,
    request: &Request,
    percent: u8,
    paused: &mut Option<String>,
) -> anyhow::Result<Option<StageResult>> {
    let name = stage.name.get_ref().clone();
    let who = &request.operator;
    let outcome = match request.command {
        Command::Pause => {
            *paused = Some(who.clone());
            format!("holding at {percent}% until resumed")
        }
        Command::Resume => {
            *paused = None;
            format!("resumed at {percent}%")
        }
        Command::Abort => format!("rolling back from {percent}%"),
        Command::PromoteFull => format!("promoting from {percent}% to 100%"),
    };
    ctx.journal.append(Event::Control {
        stage: name.clone(),
        seq: request.seq,
        requested_ms: request.at_ms,
        command: request.command,
        operator: who.clone(),
        reason: request.reason.clone(),
        outcome: outcome.clone(),
    })?;
    ctx.operator.tell(Notice::Warning(&format!(
        "{who}: canary {} ({}) — {outcome}",
        request.command.word(),
        request.reason
    )));
    match request.command {
        Command::Pause | Command::Resume => Ok(None),
        Command::Abort => {
            let reason = format!("aborted by {who}: {}", request.reason);
            rollback(ctx, stage, "operator-abort", &reason).await?;
            Ok(Some(super::canary::rolled_back(
                VerdictRecord::Fail(reason),
                Vec::new(),
                percent,
            )))
        }
        Command::PromoteFull => {
            let env = ctx.env(stage)?;
            let (flags, flag) = (env.flags.clone(), ctx.runbook.launch.flag.clone());
            let detail = format!("{flag} {percent}% → 100% (promoted by {who})");
            ctx.effect(&name, "promote-full:100", &detail, || async move {
                flags.set(&flag, 100).await
            })
            .await?;
            ctx.operator.tell(Notice::CanaryPromoted {
                from: percent,
                to: 100,
            });
            Ok(Some(StageResult {
                verdict: VerdictRecord::Pass,
                checks: Vec::new(),
                summary: format!("promoted to 100% by {who}: {}", request.reason),
                plugin: None,
                rolled_back: false,
            }))
        }
    }
}
