//! The last line of defence: when the host itself fails in the middle of a stage that moved a
//! flag — a panic, or an internal error — the flag goes back to its safe value (0 for a
//! canary, as a rollback would), the journal says so, and the run ends as a host failure
//! (exit 4) with what was done. A flag is never left half-way.

use std::any::Any;

use super::{Outcome, RunSummary};
use crate::context::Ctx;
use crate::journal::Event;
use crate::operator::Notice;
use crate::record::VerdictRecord;
use crate::runbook::Stage;

/// What a panic said, for the journal.
pub(super) fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Restores the guarded flag (if the stage moved one), journals what happened as far as the
/// journal can still be written and ends the run as a host failure (`conclude` then writes the
/// reports, or says the journal was lost).
pub(super) async fn host_failed(
    ctx: &mut Ctx,
    stage: Option<&Stage>,
    why: String,
    elapsed_ms: u64,
) -> anyhow::Result<RunSummary> {
    let name = stage.map_or_else(
        || "(between stages)".to_string(),
        |s| s.name.get_ref().clone(),
    );
    let mut done = Vec::new();
    // A runner that lost its lease restores nothing: whoever took the run acts for it now.
    if let Err(lost) = ctx.check_lease() {
        ctx.flag_guard = None;
        // Said once when it is also why the stage stopped.
        done.push(match why == lost.to_string() {
            true => "nothing restored".to_string(),
            false => format!("nothing restored: {lost}"),
        });
    }
    if let Some(guard) = ctx.flag_guard.take() {
        // The flag first: the journal may be what failed.
        let restored = guard.flags.set(&guard.flag, guard.safe).await;
        let what = match &restored {
            Ok(()) => format!(
                "{} on {} restored to {}%",
                guard.flag, guard.environment, guard.safe
            ),
            Err(e) => format!(
                "{} on {} could NOT be restored to {}%: {e:#} — set it by hand",
                guard.flag, guard.environment, guard.safe
            ),
        };
        let _ = ctx.journal.append(Event::FlagRestored {
            stage: name.clone(),
            environment: guard.environment.clone(),
            flag: guard.flag.clone(),
            percent: guard.safe,
            restored: restored.is_ok(),
            reason: why.clone(),
        });
        done.push(what);
    }
    let what = if done.is_empty() {
        "no flag had moved".to_string()
    } else {
        done.join("; ")
    };
    ctx.operator.tell(Notice::Warning(&format!(
        "the host failed during stage `{name}` ({why}); {what}"
    )));
    let summary = format!("stage `{name}`: the host failed ({why}); {what}");
    if let Some(stage) = stage {
        let _ = ctx.journal.append(Event::StageFinished {
            stage: name,
            verdict: VerdictRecord::Fail(format!("the host failed: {why}")),
            checks: vec![crate::stages::fail("host-failed", why.clone())],
            summary: summary.clone(),
            plugin: stage.plugin_name().map(str::to_string),
            dry_run: stage.dry_run,
            outcome: what.clone(),
            elapsed_ms,
        });
    }
    let _ = ctx.journal.append(Event::RunFinished {
        outcome: Outcome::HostFailed,
        summary: summary.clone(),
    });
    Ok(RunSummary {
        run_id: ctx.run_id.clone(),
        run_dir: ctx.run_dir.clone(),
        outcome: Outcome::HostFailed,
        summary,
    })
}
