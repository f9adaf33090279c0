//! The stage state machine. Stages run in runbook order; each one's verdict decides what the
//! host does next (continue, abort, roll back), per the stage's `on-fail`. No-data and
//! inconclusive never count as a pass. Every effect is journaled before and after, so `resume`
//! continues an interrupted run without repeating a completed effect.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures::FutureExt as _;

use super::{Outcome, RunSummary};
use crate::context::{Ctx, StageResult};
use crate::journal::Event;
use crate::operator::{Notice, Step};
use crate::record::VerdictRecord;
use crate::runbook::{OnFail, Stage};

/// Runs the stages that have not finished yet, to the run's last verdict (`conclude` then
/// waits for the notifications and writes the reports). A journal lost on the way (deleted,
/// replaced, unwritable) ends the run as a host failure wherever it happened: the flag a stage
/// moved goes back, and the run folder says what happened.
pub(super) async fn drive(ctx: &mut Ctx) -> anyhow::Result<RunSummary> {
    match stages(ctx).await {
        Err(e) if ctx.journal.lost().is_some() => {
            super::guard::host_failed(ctx, None, format!("{e:#}"), 0).await
        }
        driven => driven,
    }
}

async fn stages(ctx: &mut Ctx) -> anyhow::Result<RunSummary> {
    let stage_count = ctx.runbook.stages.len();
    let mut outcome = Outcome::Passed;
    let mut failed_summary = None;
    // Stages the run went on past without a pass: the summary must not call them passed.
    let mut let_through: Vec<String> = Vec::new();
    for i in 0..stage_count {
        let name = ctx.runbook.stages[i].name.get_ref().clone();
        if ctx.finished.contains(&name) {
            continue;
        }
        let title = ctx.runbook.stages[i].title().to_string();
        let resuming = ctx.resumed_stage.as_ref().is_some_and(|(s, _)| s == &name);
        if !resuming {
            ctx.journal.append(Event::StageStarted {
                stage: name.clone(),
                title: title.clone(),
            })?;
        }
        ctx.operator.tell(Notice::StageStarted { title: &title });
        if ctx.options.interactive && !resuming {
            match ctx.operator.ask_step(&title) {
                Step::Proceed => {}
                Step::Skip => {
                    ctx.operator.tell(Notice::StageSkipped { title: &title });
                    let_through.push(format!("`{name}` (skipped by the operator)"));
                    ctx.journal.append(Event::StageFinished {
                        stage: name.clone(),
                        verdict: VerdictRecord::NoData("skipped by the operator".into()),
                        checks: Vec::new(),
                        summary: "skipped by the operator".into(),
                        plugin: None,
                        dry_run: false,
                        outcome: "skipped by the operator".into(),
                        elapsed_ms: 0,
                    })?;
                    continue;
                }
                Step::Abort => {
                    ctx.journal.append(Event::StageFinished {
                        stage: name.clone(),
                        verdict: VerdictRecord::NoData("aborted by the operator".into()),
                        checks: Vec::new(),
                        summary: "aborted by the operator".into(),
                        plugin: None,
                        dry_run: false,
                        outcome: "run aborted by the operator".into(),
                        elapsed_ms: 0,
                    })?;
                    outcome = Outcome::Aborted;
                    failed_summary = Some(format!("aborted by the operator before `{name}`"));
                    break;
                }
            }
        }
        let started = Instant::now();
        let runbook = ctx.runbook.clone();
        let stage = &runbook.stages[i];
        ctx.flag_guard = None;
        // A run taken over rolls back the stage in progress when its `takeover` says so.
        let rolls_back = resuming && ctx.takeover == Some(crate::runbook::Takeover::Rollback);
        let ran = if rolls_back {
            AssertUnwindSafe(super::takeover::roll_back(ctx, stage))
                .catch_unwind()
                .await
        } else {
            AssertUnwindSafe(crate::stages::run_stage(ctx, stage))
                .catch_unwind()
                .await
        };
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // A panic, or an internal error after a flag moved, ends the run with the flag safe.
        let ran = match ran {
            Err(panic) => {
                let why = format!("panic: {}", super::guard::panic_message(panic.as_ref()));
                return super::guard::host_failed(ctx, Some(stage), why, elapsed_ms).await;
            }
            // A moved flag, a lost journal or a lost lease: the run stops here.
            Ok(Err(e))
                if ctx.flag_guard.is_some()
                    || ctx.journal.lost().is_some()
                    || e.downcast_ref::<crate::lease::LeaseLost>().is_some() =>
            {
                // However it was learnt (the lease, the shared journal), a lost run is lost
                // for good: nothing is restored, nothing more is done.
                if let (Some(lost), Some(lease)) =
                    (e.downcast_ref::<crate::lease::LeaseLost>(), &ctx.lease)
                {
                    lease.lose(lost.why.clone());
                }
                return super::guard::host_failed(ctx, Some(stage), format!("{e:#}"), elapsed_ms)
                    .await;
            }
            Ok(ran) => ran,
        };
        let result = match ran {
            Ok(r) => r,
            // An error in host code (I/O, a plugin that trapped...) fails the stage with the reason;
            // a failed plugin call's stderr goes into the journal with it.
            Err(e) => {
                if let Some(failure) = e.downcast_ref::<launch_runtime::CallFailure>() {
                    crate::stages::journal_logs(ctx, stage, &failure.logs)?;
                }
                StageResult::from_checks(
                    vec![crate::stages::fail("stage-error", format!("{e:#}"))],
                    format!("{e:#}"),
                )
            }
        };
        let mut result = result;
        // A stage whose plugin failed is still attributed to it.
        result.plugin = result
            .plugin
            .or_else(|| stage.plugin.as_ref().map(|p| p.get_ref().clone()));
        let (next, what) = decide_next(ctx, stage, &result).await?;
        ctx.operator.tell(Notice::StageFinished {
            verdict: &result.verdict,
            skipped: result.checks.iter().filter(|c| c.skipped).count(),
            action: &what,
        });
        ctx.journal.append(Event::StageFinished {
            stage: name.clone(),
            verdict: result.verdict.clone(),
            checks: result.checks,
            summary: result.summary,
            plugin: result.plugin,
            dry_run: stage.dry_run,
            outcome: what.clone(),
            elapsed_ms,
        })?;
        ctx.journal_notifications()?;
        ctx.journal.checkpoint()?;
        if next.is_none() && !result.verdict.is_pass() {
            let_through.push(format!("`{name}` {} ({what})", result.verdict.word()));
        }
        if let Some(o) = next {
            outcome = o;
            failed_summary = Some(format!(
                "stage `{name}`: {} — {what}",
                result.verdict.reason()
            ));
            break;
        }
    }
    let summary = failed_summary.unwrap_or_else(|| match let_through.as_slice() {
        [] => format!("all {stage_count} stages passed"),
        through => format!(
            "{} of {stage_count} stages passed; went on past {}",
            stage_count.saturating_sub(through.len()),
            through.join(", ")
        ),
    });
    // The UAT data the run ends with goes into the journal, so its reports are the journal's.
    if has_uat(ctx)
        && let Some(data) = crate::report::uat_of(&ctx.run_dir)
    {
        ctx.journal.append(Event::Uat { data })?;
    }
    ctx.journal.append(Event::RunFinished {
        outcome,
        summary: summary.clone(),
    })?;
    Ok(RunSummary {
        run_id: ctx.run_id.clone(),
        run_dir: ctx.run_dir.clone(),
        outcome,
        summary,
    })
}

/// Whether the run has a UAT stage (its checklist, results and sign-offs belong to it).
fn has_uat(ctx: &Ctx) -> bool {
    ctx.runbook.stages.iter().any(|s| {
        s.action() == Some(crate::runbook::Action::UatInit)
            || s.plugin_name()
                .and_then(|p| ctx.catalog.get(p))
                .is_some_and(|p| p.role() == launch_runtime::Role::UatChecklist)
    })
}

/// What the host does about a stage's verdict. `Some(outcome)` ends the run.
async fn decide_next(
    ctx: &mut Ctx,
    stage: &Stage,
    result: &StageResult,
) -> anyhow::Result<(Option<Outcome>, String)> {
    if result.verdict.is_pass() {
        return Ok((None, "continued".into()));
    }
    if stage.dry_run {
        return Ok((None, "dry run: verdict recorded, no action".into()));
    }
    if result.rolled_back {
        // Said as the flag reads now, not as it should.
        let at = match ctx.env(stage) {
            Ok(env) => env.flags.get(&ctx.runbook.launch.flag).await.ok(),
            Err(_) => None,
        };
        let what = match at {
            Some(p) => format!("rolled back (flag at {p}%)"),
            None => "rolled back".into(),
        };
        return Ok((Some(Outcome::RolledBack), what));
    }
    if let VerdictRecord::Inconclusive(reason) = &result.verdict
        && !ctx.options.auto
        && ctx.operator.can_ask()
        && ctx.operator.ask_proceed(stage.name.get_ref(), reason)
    {
        return Ok((None, "continued by the operator".into()));
    }
    match stage.on_fail {
        OnFail::Continue => Ok((None, "continued (on-fail = continue)".into())),
        OnFail::Abort => Ok((Some(Outcome::GateFailed), "launch stopped".into())),
        OnFail::Rollback => {
            // The host's own decision on a failed gate: automatic, not an operator's.
            crate::stages::rollback(
                ctx,
                stage,
                "gate",
                &format!(
                    "stage `{}`: {}",
                    stage.name.get_ref(),
                    result.verdict.reason()
                ),
            )
            .await?;
            Ok((Some(Outcome::RolledBack), "rolled back (flag at 0%)".into()))
        }
    }
}
