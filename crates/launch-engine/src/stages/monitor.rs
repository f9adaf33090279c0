//! Monitoring: probe the environment's board, drawer and stats endpoints at a constant rate and
//! journal one window per interval (the SLO gates judge them); and the plain `wait`.

use std::time::{Duration, Instant};

use super::pass;
use crate::context::{Ctx, StageResult};
use crate::operator::Measure;
use crate::record::{CheckRecord, VerdictRecord, WindowRecord};
use crate::runbook::Stage;

pub async fn monitor(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let env = ctx.env(stage)?;
    let (env_name, flags) = (env.name.clone(), env.flags.clone());
    let duration = stage.duration.unwrap_or(Duration::from_secs(10));
    let interval = stage
        .interval
        .unwrap_or(Duration::from_secs(1))
        .min(duration);
    let mut signals = env.signals(ctx.probe_client.clone(), interval, true);
    let started = Instant::now();
    let (mut requests, mut errors, mut windows) = (0, 0, 0);
    // Windows no source could read, or with a measure missing: the gates never see them.
    let mut gaps: Vec<String> = Vec::new();
    let bar = ctx.operator.progress(Measure::Timed {
        total: duration,
        what: stage.title(),
    });
    while started.elapsed() + interval / 2 < duration {
        bar.set_position(started.elapsed().as_millis() as u64);
        let reading = match signals.next().await {
            Some(Ok(reading)) => reading,
            Some(Err(e)) => {
                gaps.push(format!("the metrics source failed: {e}"));
                continue;
            }
            None => break,
        };
        let percent = flags.get(&ctx.runbook.launch.flag).await.unwrap_or(0);
        let record = WindowRecord::from_reading(reading, percent);
        let missing = launch_targets::metrics::gaps(&record.endpoints);
        if !missing.is_empty() {
            gaps.push(format!(
                "{} answered nothing for {}",
                record.source_words(),
                missing.join("; ")
            ));
        }
        let (r, e, _) = record.totals(None);
        requests += r;
        errors += e;
        windows += 1;
        ctx.record_window(stage.name.get_ref(), &env_name, record)?;
    }
    drop(bar);
    let lacking = match gaps.as_slice() {
        [] => String::new(),
        [first, ..] => format!("; {} window(s) without data (first: {first})", gaps.len()),
    };
    let check = if requests == 0 {
        let why = match gaps.first() {
            Some(first) => format!("no window had data: {first}"),
            None => "no probe answered".into(),
        };
        CheckRecord {
            verdict: VerdictRecord::NoData(why),
            ..pass("monitoring", "")
        }
    } else {
        CheckRecord {
            observed: Some(requests as f64),
            unit: "requests".into(),
            ..pass(
                "monitoring",
                format!(
                    "{windows} window(s), {requests} requests, {errors} errors measured on {env_name}{lacking}"
                ),
            )
        }
    };
    Ok(StageResult::from_checks(
        vec![check],
        format!("monitored {env_name} for {} ms", duration.as_millis()),
    ))
}

pub async fn wait(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let duration = stage.duration.unwrap_or(Duration::from_secs(1));
    let bar = ctx.operator.progress(Measure::Timed {
        total: duration,
        what: stage.title(),
    });
    let started = Instant::now();
    while started.elapsed() < duration {
        let step = (duration - started.elapsed()).min(Duration::from_millis(100));
        tokio::time::sleep(step).await;
        bar.set_position(started.elapsed().as_millis() as u64);
    }
    drop(bar);
    Ok(StageResult::from_checks(
        vec![pass("wait", "waited")],
        "waited",
    ))
}
