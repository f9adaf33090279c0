//! A run's end, once its last verdict is journaled and its environments released: the
//! notifications still on their way are waited for (each within its deadline) with the
//! operator told what for, those that never arrived are said on the console, the runner signs
//! the journal's end, and the reports anchor its last line. Nothing here can move a flag, so
//! nothing here holds a lock.

use anyhow::Context as _;

use super::RunSummary;
use crate::context::Ctx;
use crate::journal::Event;
use crate::operator::Notice;

pub(super) async fn conclude(ctx: &mut Ctx, summary: &RunSummary) -> anyhow::Result<()> {
    if let Some(n) = &ctx.notifier {
        let waiting = n.waiting();
        if !waiting.is_empty() {
            ctx.operator.tell(Notice::Warning(&format!(
                "the run is over ({}); waiting up to {} for {} notification(s) still on their way: {}",
                summary.outcome.word(),
                humantime::format_duration(n.deadline()),
                waiting.len(),
                waiting.join(", ")
            )));
        }
    }
    let delivered = ctx.close_notifications().await;
    for event in &delivered {
        if let Event::Notified {
            channel,
            what,
            delivered: false,
            attempts,
            error,
            ..
        } = event
        {
            ctx.operator.tell(Notice::Warning(&format!(
                "notification `{what}` to #{} was NOT delivered after {attempts} attempt(s): {}",
                channel.word(),
                error.as_deref().unwrap_or("no answer")
            )));
        }
    }
    let lost = ctx
        .journal
        .lost()
        .map(|(lost, salvaged)| (lost.to_string(), salvaged.map(String::from)));
    if let Some((lost, salvaged)) = lost {
        let _ = ctx.journal.checkpoint();
        return mark_lost(ctx, &lost, salvaged, summary);
    }
    ctx.journal.checkpoint()?;
    crate::report::write_all(&ctx.run_dir).context("writing the reports")
}

/// The journal is not the run's any more: no report is written from it, and the run folder
/// says what happened instead.
fn mark_lost(
    ctx: &Ctx,
    lost: &str,
    salvaged: Option<String>,
    summary: &RunSummary,
) -> anyhow::Result<()> {
    let marker = crate::journal::HostFailed {
        at_ms: crate::journal::now_ms(),
        reason: format!("{lost}; {}", summary.summary),
        salvaged: salvaged.clone(),
    };
    let kept = match &salvaged {
        Some(name) => format!("what the run wrote, and its last records, are in {name}"),
        None => "its last records could not be saved".into(),
    };
    let told = if crate::journal::mark(&ctx.run_dir, &marker) {
        format!("{kept}; {} says so", crate::journal::HOST_FAILED)
    } else {
        format!("{kept}; the run folder cannot be written either")
    };
    ctx.operator.tell(Notice::Warning(&format!(
        "{}: {lost}; {told}",
        ctx.run_dir.display()
    )));
    Ok(())
}
