//! The canary loop: measure one check interval, ask the policy plugin, act on its decision —
//! promote (move the flag), hold, roll back, or complete. The host owns every flag change and
//! the rollback; a policy that traps, hangs or answers nonsense rolls the canary back.

use std::time::{Duration, Instant};

use super::blind::{self, Blind, Blindness};
use super::{journal_logs, rollback};
use crate::context::{Ctx, StageResult};
use crate::journal::Event;
use crate::operator::{Measure, Notice};
use crate::record::{self, CheckRecord, VerdictRecord, WindowRecord};
use crate::runbook::Stage;
use launch_runtime::types::{Action, CanaryState};

/// The longest a canary stage may take when its `duration` does not say: past it, a canary
/// still holding (on missing data, say) is rolled back rather than left half-way forever.
pub const CANARY_TIMEOUT: Duration = Duration::from_secs(6 * 60 * 60);

pub async fn run(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let name = stage.name.get_ref().clone();
    let env = ctx.env(stage)?;
    let (env_name, flags) = (env.name.clone(), env.flags.clone());
    let flag = ctx.runbook.launch.flag.clone();
    let interval = stage.interval.unwrap_or(Duration::from_secs(60));
    let mut signals = env.signals(ctx.probe_client.clone(), interval, true);
    let sandbox = ctx.sandbox(stage)?;
    let config = stage.config_json();

    // On resume, carry on from where the flag is: completed promotions are not repeated.
    let mut percent = flags.get(&flag).await?;
    // Whatever happens to the host from here, the canary's flag goes back to 0.
    ctx.flag_guard = Some(crate::context::FlagGuard {
        environment: env_name.clone(),
        flags: flags.clone(),
        flag: flag.clone(),
        safe: 0,
    });
    let earlier: &[crate::journal::Record] = ctx
        .resumed_stage
        .as_ref()
        .filter(|(s, _)| *s == name)
        .map_or(&[], |(_, recs)| recs.as_slice());
    let promotions = earlier
        .iter()
        .filter(
            |r| matches!(&r.event, Event::EffectDone { key, .. } if key.starts_with("promote:")),
        )
        .count();
    // On resume, the world is read again: a flag moved back below where this run had put it
    // (an operator's rollback while the run was stopped) stays where the operator put it.
    if let Some(set) = last_set(earlier)
        && percent < set
    {
        return moved_back(ctx, stage, &flag, &env_name, percent, set);
    }
    let mut step_index = promotions.saturating_sub(1) as u32;
    // Operators' requests from other terminals; on resume, those already obeyed stay obeyed.
    let (obeyed, mut paused) = super::canary_control::earlier(ctx, &name);
    let state = crate::run::state_url(&ctx.runbook);
    let mut inbox =
        crate::control::Inbox::open(&ctx.run_dir, &ctx.run_id, state.as_deref(), obeyed).await;
    let started = Instant::now();
    let mut step_started = Instant::now();
    let mut history = super::calls::StepHistory::default();
    let mut recorder = crate::lab::record::CanaryCalls::new(&name, stage.config_map());
    let mut last_checks: Vec<CheckRecord> = Vec::new();
    let mut decisions = 0u32;
    let mut blindness = Blindness::new(blind::limit(stage, interval));
    // Whether the operator was told the canary holds at this step.
    let mut holding = false;

    let timeout = stage.duration.unwrap_or(CANARY_TIMEOUT);
    let bar = ctx.operator.progress(Measure::Canary {
        what: stage.title(),
    });
    loop {
        // A runner that can no longer renew its lease stops before anyone can take over.
        ctx.check_lease()?;
        bar.set_position(u64::from(percent));
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return timed_out(ctx, stage, timeout, percent, last_checks).await;
        }
        // The first decision of a fresh canary needs no measurement: it starts the rollout.
        let mut gap = None;
        if percent > 0 || decisions > 0 {
            // The stage's duration bounds the wait for a window, whatever the interval.
            let Ok(window) = tokio::time::timeout(left, signals.next()).await else {
                return timed_out(ctx, stage, timeout, percent, last_checks).await;
            };
            match window {
                Some(Ok(reading)) => {
                    let record = WindowRecord::from_reading(reading, percent);
                    let gaps = launch_targets::metrics::gaps(&record.endpoints);
                    if gaps.is_empty() {
                        let window = record.canary_window();
                        let seq = ctx.record_window(&name, &env_name, record)?;
                        history.push(window, seq);
                    } else {
                        // Journaled as measured, never shown to the policy: a missing
                        // measure is no data, not a number.
                        gap = Some(format!(
                            "{} answered nothing for {}",
                            record.source_words(),
                            gaps.join("; ")
                        ));
                        ctx.record_window(&name, &env_name, record)?;
                    }
                }
                // A source that failed or did not answer within the interval: no data.
                Some(Err(e)) => gap = Some(format!("the metrics source failed: {e}")),
                None => anyhow::bail!("the probe stopped"),
            }
        }
        // Read once per check interval: a request takes effect within one.
        if let Some(request) = inbox.poll().await
            && let Some(done) =
                super::canary_control::obey(ctx, stage, &request, percent, &mut paused).await?
        {
            return Ok(done);
        }
        if let Some(reason) = gap {
            let plugin = ctx.plugin(stage)?.info.name.clone();
            let check = blind::check(&reason);
            ctx.journal.append(Event::Decision {
                stage: name.clone(),
                percent,
                action: "no-data".into(),
                summary: format!("no data: {reason}"),
                checks: vec![check],
                plugin,
                call: None,
            })?;
            bar.set_message(format!("{}: no data — {reason}", stage.title()));
            match blindness.blind(&reason) {
                Blind::Hold { tell } => {
                    if let Some(line) = tell {
                        ctx.operator.tell(Notice::CanaryHeld {
                            percent,
                            reason: &line,
                        });
                    }
                    continue;
                }
                Blind::RollBack(why) => return no_data(ctx, stage, why, percent).await,
            }
        }
        let state = CanaryState {
            percent,
            step_index,
            step_elapsed_ms: millis(step_started.elapsed()),
            total_elapsed_ms: millis(started.elapsed()),
        };
        let plugin = ctx.plugin(stage)?;
        let plugin_name = plugin.info.name.clone();
        decisions = decisions.saturating_add(1);
        let decision = match plugin
            .decide_canary(&sandbox, &state, history.windows(), &config)
            .await
        {
            Ok(called) => {
                journal_logs(ctx, stage, &called.logs)?;
                called.value
            }
            Err(failure) => {
                // A broken policy cannot keep traffic on the canary.
                journal_logs(ctx, stage, &failure.logs)?;
                // No decision to hold it: the call has a record of its own.
                let input = super::calls::canary(&plugin_name, stage, &state);
                let answer = super::calls::Answer::failed(&failure.to_string());
                super::calls::record(ctx, stage, input, history.range(), answer)?;
                let reason = failure.to_string();
                rollback(ctx, stage, "policy-failed", &reason).await?;
                return Ok(rolled_back(
                    VerdictRecord::Fail(reason.clone()),
                    vec![super::call_failed(&failure)],
                    percent,
                ));
            }
        };
        last_checks = record::checks(&decision.checks);
        let action_word = crate::lab::answer::action_word(&decision.action);
        bar.set_message(format!(
            "{}: {action_word} — {}",
            stage.title(),
            decision.summary
        ));
        let held =
            paused.is_some() && matches!(decision.action, Action::Promote(_) | Action::Complete);
        let summary = match &paused {
            Some(who) if held => format!("{} (paused by {who}: not acted on)", decision.summary),
            _ => decision.summary.clone(),
        };
        // The decision, with the call that made it (replayable from the journal alone).
        let range = history.range();
        let call = recorder.call(
            &mut ctx.calls,
            &state,
            (range.from, range.len),
            &decision.action,
            &summary,
        );
        ctx.journal.append(Event::Decision {
            stage: name.clone(),
            percent,
            action: action_word.clone(),
            summary,
            checks: last_checks.clone(),
            plugin: plugin_name,
            call: Some(call),
        })?;
        // Before acting: a promotion clears the history the shadows must see.
        let inputs = super::shadow::Inputs::Canary {
            state: &state,
            history: history.windows(),
        };
        super::shadow::consult(ctx, stage, inputs, &action_word, Some(percent)).await?;
        if let Action::Hold(why) = &decision.action {
            let first = !holding;
            holding = true;
            if percent > 0 && blind::is_no_data(&last_checks) {
                match blindness.blind(why) {
                    Blind::RollBack(reason) => return no_data(ctx, stage, reason, percent).await,
                    Blind::Hold { tell } => {
                        if let Some(line) = tell {
                            ctx.operator.tell(Notice::CanaryHeld {
                                percent,
                                reason: &line,
                            });
                        }
                    }
                }
            } else {
                blindness.seen();
                if first {
                    ctx.operator.tell(Notice::CanaryHeld {
                        percent,
                        reason: why,
                    });
                }
            }
        } else {
            blindness.seen();
        }
        match decision.action {
            // Paused: the policy is still asked and recorded; only a rollback is obeyed.
            _ if held => {}
            Action::Promote(next) if next <= percent || next > 100 => {
                let reason = format!(
                    "policy asked to promote from {percent}% to {next}%, which is not an increase"
                );
                rollback(ctx, stage, "policy-nonsense", &reason).await?;
                return Ok(rolled_back(
                    VerdictRecord::Fail(reason),
                    last_checks,
                    percent,
                ));
            }
            Action::Promote(next) => {
                let (f, fl) = (flags.clone(), flag.clone());
                ctx.effect(
                    &name,
                    &format!("promote:{next}"),
                    &format!("{flag} {percent}% → {next}%"),
                    || async move { f.set(&fl, next).await },
                )
                .await?;
                ctx.operator.tell(Notice::CanaryPromoted {
                    from: percent,
                    to: next,
                });
                percent = next;
                crate::fault::point("canary-promoted");
                if decisions > 1 {
                    step_index = step_index.saturating_add(1);
                }
                step_started = Instant::now();
                history.clear();
                // A new step: its first windows may be empty; the count starts again.
                blindness.seen();
                holding = false;
            }
            Action::Hold(_) => {}
            Action::Rollback(reason) => {
                rollback(ctx, stage, "auto", &reason).await?;
                ctx.operator.tell(Notice::CanaryRolledBack {
                    percent,
                    reason: &reason,
                });
                return Ok(rolled_back(
                    VerdictRecord::Fail(format!("auto-rollback at {percent}%: {reason}")),
                    last_checks,
                    percent,
                ));
            }
            Action::Complete => {
                let summary = format!(
                    "canary complete at {percent}% after {} ms, {decisions} decision(s)",
                    started.elapsed().as_millis()
                );
                let verdict = if percent == 100 {
                    VerdictRecord::Pass
                } else {
                    VerdictRecord::Inconclusive(format!("policy completed at {percent}%, not 100%"))
                };
                return Ok(StageResult {
                    verdict,
                    checks: last_checks,
                    summary,
                    plugin: None,
                    rolled_back: false,
                });
            }
        }
    }
}

/// The flag percentage this run last set in the stage, from its journaled effects.
fn last_set(records: &[crate::journal::Record]) -> Option<u8> {
    records.iter().rev().find_map(|r| match &r.event {
        Event::EffectDone { key, .. } => key
            .strip_prefix("promote:")
            .or_else(|| key.strip_prefix("promote-full:"))
            .and_then(|p| p.parse().ok()),
        _ => None,
    })
}

/// A resumed canary whose flag someone moved back while the run was stopped: it is not
/// resumed (its judgement is stale and the operator has spoken), the flag is left as it is.
fn moved_back(
    ctx: &mut Ctx,
    stage: &Stage,
    flag: &str,
    env: &str,
    percent: u8,
    set: u8,
) -> anyhow::Result<StageResult> {
    let reason = format!(
        "{flag} on {env} reads {percent}%, but this run had moved it to {set}%: it was moved back while the run was stopped (an operator's rollback?), so the canary is not resumed and the flag stays at {percent}%; start a new canary to try again"
    );
    ctx.journal.append(Event::Decision {
        stage: stage.name.get_ref().clone(),
        percent,
        action: "moved-back".into(),
        summary: reason.clone(),
        checks: Vec::new(),
        plugin: String::new(),
        call: None,
    })?;
    ctx.operator.tell(Notice::Warning(&reason));
    Ok(StageResult {
        summary: format!("not resumed: {reason}"),
        verdict: VerdictRecord::Fail(reason),
        checks: Vec::new(),
        plugin: None,
        rolled_back: true,
    })
}

/// The canary went without data for longer than its `no-data-limit`: a canary no one can see
/// is rolled back, never left at its step.
async fn no_data(
    ctx: &mut Ctx,
    stage: &Stage,
    reason: String,
    percent: u8,
) -> anyhow::Result<StageResult> {
    rollback(ctx, stage, "no-data", &reason).await?;
    ctx.operator.tell(Notice::CanaryRolledBack {
        percent,
        reason: &reason,
    });
    Ok(rolled_back(
        VerdictRecord::NoData(reason),
        vec![blind::check("no data within the stage's no-data-limit")],
        percent,
    ))
}

/// The canary ran out of its stage's time: rolled back rather than left half-way.
async fn timed_out(
    ctx: &mut Ctx,
    stage: &Stage,
    timeout: Duration,
    percent: u8,
    last_checks: Vec<CheckRecord>,
) -> anyhow::Result<StageResult> {
    let reason = format!(
        "the canary did not complete within {} (stuck at {percent}%)",
        humantime::format_duration(timeout)
    );
    rollback(ctx, stage, "canary-timeout", &reason).await?;
    Ok(rolled_back(
        VerdictRecord::NoData(reason),
        last_checks,
        percent,
    ))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(super) fn rolled_back(
    verdict: VerdictRecord,
    checks: Vec<CheckRecord>,
    percent: u8,
) -> StageResult {
    StageResult {
        summary: format!("rolled back from {percent}%: {}", verdict.reason()),
        verdict,
        checks,
        plugin: None,
        rolled_back: true,
    }
}
