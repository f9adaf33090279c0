//! The stability gate: an SLO gate with a `duration` keeps watching the environment at full
//! rollout for that long (the guide's "30+ minutes stable operation at 100 %"), judging every
//! window as it closes; `breaches` consecutive failing windows roll the launch back.

use std::time::{Duration, Instant};

use super::blind::{self, Blind, Blindness};
use super::calls::{self, Answer};
use super::{journal_logs, rollback};
use crate::context::{Ctx, StageResult};
use crate::operator::{Measure, Notice};
use crate::record::{self, CheckRecord, VerdictRecord, WindowRecord};
use crate::runbook::Stage;
use launch_runtime::types::Samples;

/// Consecutive failing windows that roll back when the stage does not say.
pub const DEFAULT_BREACHES: u32 = 3;

pub async fn watch(
    ctx: &mut Ctx,
    stage: &Stage,
    duration: Duration,
) -> anyhow::Result<StageResult> {
    let name = stage.name.get_ref().clone();
    let env = ctx.env(stage)?;
    let env_name = env.name.clone();
    let interval = stage
        .interval
        .unwrap_or(Duration::from_secs(60))
        .min(duration);
    let mut signals = env.signals(ctx.probe_client.clone(), interval, true);
    let limit = stage
        .breaches
        .as_ref()
        .map_or(DEFAULT_BREACHES, |b| *b.get_ref());
    let (sandbox, config) = (ctx.sandbox(stage)?, stage.config_json());
    let bar = ctx.operator.progress(Measure::Timed {
        total: duration,
        what: stage.title(),
    });
    let started = Instant::now();
    let (mut judged, mut breaches, mut worst) = (0u32, 0u32, 0u32);
    let mut last: Vec<CheckRecord> = Vec::new();
    let mut blindness = Blindness::new(blind::limit(stage, interval));
    while started.elapsed() + interval / 2 < duration {
        ctx.check_lease()?;
        bar.set_position(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        let percent = ctx.envs[&env_name]
            .flags
            .get(&ctx.runbook.launch.flag)
            .await?;
        // A window no source could read, or with a measure missing, is no data: the gate is
        // not asked about it and it counts toward the no-data limit, never as a pass.
        let gap = match signals.next().await {
            Some(Ok(reading)) => {
                let window = WindowRecord::from_reading(reading, percent);
                let gaps = launch_targets::metrics::gaps(&window.endpoints);
                ctx.record_window(&name, &env_name, window.clone())?;
                if gaps.is_empty() {
                    Ok(window)
                } else {
                    Err(format!(
                        "{} answered nothing for {}",
                        window.source_words(),
                        gaps.join("; ")
                    ))
                }
            }
            Some(Err(e)) => Err(format!("the metrics source failed: {e}")),
            None => anyhow::bail!("the probe stopped"),
        };
        let window = match gap {
            Ok(window) => window,
            Err(reason) => {
                bar.set_message(format!("{}: no data — {reason}", stage.title()));
                match blind(ctx, &name, &mut blindness, &reason) {
                    Some(why) => return roll_back(ctx, stage, why, last).await,
                    None => continue,
                }
            }
        };
        let samples = Samples {
            windows: vec![window.metric_window()],
        };
        let plugin = ctx.plugin(stage)?;
        let plugin_name = plugin.info.name.clone();
        let called = plugin.evaluate_slo(&sandbox, &samples, &config).await?;
        journal_logs(ctx, stage, &called.logs)?;
        let report = called.value;
        let verdict: VerdictRecord = (&report.verdict).into();
        last = record::checks(&report.checks);
        let input = calls::slo(&plugin_name, stage, std::slice::from_ref(&window));
        let answer = StageResult {
            verdict: verdict.clone(),
            checks: last.clone(),
            summary: report.summary.clone(),
            plugin: None,
            rolled_back: false,
        };
        calls::record(
            ctx,
            stage,
            input,
            Default::default(),
            Answer::of_report(&answer),
        )?;
        if let VerdictRecord::NoData(reason) = &verdict {
            match blind(ctx, &name, &mut blindness, reason) {
                Some(why) => return roll_back(ctx, stage, why, last).await,
                None => continue,
            }
        }
        blindness.seen();
        judged = judged.saturating_add(1);
        breaches = if matches!(verdict, VerdictRecord::Fail(_)) {
            breaches.saturating_add(1)
        } else {
            0
        };
        worst = worst.max(breaches);
        bar.set_message(format!(
            "{}: window {judged}: {} ({breaches}/{limit} consecutive breaches)",
            stage.title(),
            verdict.word()
        ));
        if breaches >= limit {
            let reason = format!(
                "{breaches} consecutive windows breached the SLOs at {percent}%; the last: {}",
                breached(&last, &verdict)
            );
            return roll_back(ctx, stage, reason, last).await;
        }
    }
    drop(bar);
    if judged == 0 {
        return Ok(StageResult {
            verdict: VerdictRecord::NoData("no window closed while watching".into()),
            checks: last,
            summary: format!("watched {env_name}: no window closed"),
            plugin: None,
            rolled_back: false,
        });
    }
    Ok(StageResult {
        verdict: VerdictRecord::Pass,
        checks: last,
        summary: format!(
            "stable for {}: {judged} window(s) judged, at most {worst} consecutive breach(es) of {limit} allowed",
            humantime::format_duration(duration)
        ),
        plugin: None,
        rolled_back: false,
    })
}

/// A window without data: the operator told when due, and the rollback's reason once the
/// stage's `no-data-limit` is reached.
fn blind(ctx: &Ctx, stage: &str, blindness: &mut Blindness, reason: &str) -> Option<String> {
    match blindness.blind(reason) {
        Blind::Hold { tell } => {
            if let Some(line) = tell {
                ctx.operator
                    .tell(Notice::Warning(&format!("stage `{stage}`: {line}")));
            }
            None
        }
        Blind::RollBack(why) => Some(why),
    }
}

/// What the last window breached, from the checks' own numbers: the gate judged one window
/// at a time, so its words about consecutive windows are not the stage's.
fn breached(checks: &[CheckRecord], verdict: &VerdictRecord) -> String {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| matches!(c.verdict, VerdictRecord::Fail(_)))
        .map(|c| match (c.observed, c.threshold) {
            (Some(o), Some(t)) => format!("{} {o:.2} {} (limit {t} {})", c.name, c.unit, c.unit),
            _ => format!("{}: {}", c.name, c.verdict.reason()),
        })
        .collect();
    if failed.is_empty() {
        verdict.reason().to_string()
    } else {
        failed.join(", ")
    }
}

async fn roll_back(
    ctx: &mut Ctx,
    stage: &Stage,
    reason: String,
    checks: Vec<CheckRecord>,
) -> anyhow::Result<StageResult> {
    let percent = ctx
        .env(stage)?
        .flags
        .get(&ctx.runbook.launch.flag)
        .await
        .unwrap_or(0);
    rollback(ctx, stage, "stability", &reason).await?;
    ctx.operator.tell(Notice::CanaryRolledBack {
        percent,
        reason: &reason,
    });
    Ok(StageResult {
        summary: format!("rolled back from {percent}%: {reason}"),
        verdict: VerdictRecord::Fail(reason),
        checks,
        plugin: None,
        rolled_back: true,
    })
}
