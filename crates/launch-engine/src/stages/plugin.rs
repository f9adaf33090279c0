//! Plugin stages: the smoke suite, the SLO gate and a team's custom step get their inputs from
//! the host (target, measured windows, context) and their report becomes the stage's verdict.
//! Canary and UAT stages have loops and data of their own (`canary`, `uat`).

use super::calls;
use super::shadow::Inputs;
use super::{journal_logs, target};
use crate::context::{Ctx, StageResult};
use crate::record::{self, WindowRecord};
use crate::runbook::Stage;
use launch_runtime::types::{StepContext, Target};
use launch_runtime::{Called, Role};

pub async fn run(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let plugin_name = ctx.plugin(stage)?.info.name.clone();
    let mut result = match ctx.plugin(stage)?.role() {
        Role::SmokeSuite => {
            let target = target(ctx, stage).await?;
            let (plugin, sandbox, config) =
                (ctx.plugin(stage)?, ctx.sandbox(stage)?, stage.config_json());
            let mut called = plugin.run_smoke_suite(&sandbox, &target, &config).await?;
            let http = std::mem::take(&mut called.exchanges);
            let result = report_result(ctx, stage, called)?;
            let input = calls::target(&plugin_name, stage, &target, &http);
            calls::record_report(ctx, stage, input, &result)?;
            shadows(ctx, stage, Inputs::Smoke(&target, &http), &result).await?;
            result
        }
        Role::SloGate if stage.duration.is_some() => {
            let duration = stage.duration.unwrap_or_default();
            super::stability::watch(ctx, stage, duration).await?
        }
        Role::SloGate => {
            // The last 240 windows measured on the stage's environment.
            let windows: Vec<WindowRecord> = stage
                .environment
                .as_ref()
                .and_then(|e| ctx.windows.get(e.get_ref()))
                .map(|ws| ws[ws.len().saturating_sub(240)..].to_vec())
                .unwrap_or_default();
            let samples = launch_runtime::types::Samples {
                windows: windows.iter().map(WindowRecord::metric_window).collect(),
            };
            let (plugin, sandbox, config) =
                (ctx.plugin(stage)?, ctx.sandbox(stage)?, stage.config_json());
            let called = plugin.evaluate_slo(&sandbox, &samples, &config).await?;
            let result = report_result(ctx, stage, called)?;
            let input = calls::slo(&plugin_name, stage, &windows);
            calls::record_report(ctx, stage, input, &result)?;
            shadows(ctx, stage, Inputs::Slo(&samples), &result).await?;
            result
        }
        Role::UatChecklist => super::uat::evaluate(ctx, stage).await?,
        Role::CanaryPolicy => super::canary::run(ctx, stage).await?,
        Role::Step => {
            let context = StepContext {
                run_id: ctx.run_id.clone(),
                stage: stage.name.get_ref().clone(),
                target: target(ctx, stage).await.unwrap_or(Target {
                    environment: String::new(),
                    base_url: String::new(),
                    api_base_url: String::new(),
                    release_id: None,
                }),
                params: Vec::new(),
            };
            let (plugin, sandbox, config) =
                (ctx.plugin(stage)?, ctx.sandbox(stage)?, stage.config_json());
            let mut called = plugin.run_step(&sandbox, &context, &config).await?;
            let http = std::mem::take(&mut called.exchanges);
            let result = report_result(ctx, stage, called)?;
            let input = calls::target(&plugin_name, stage, &context.target, &http);
            calls::record_report(ctx, stage, input, &result)?;
            shadows(ctx, stage, Inputs::Step(&context, &http), &result).await?;
            result
        }
    };
    result.plugin = Some(plugin_name);
    Ok(result)
}

/// The shadows' answers to the same inputs, beside the live verdict.
async fn shadows(
    ctx: &mut Ctx,
    stage: &Stage,
    inputs: Inputs<'_>,
    live: &StageResult,
) -> anyhow::Result<()> {
    super::shadow::consult(ctx, stage, inputs, live.verdict.word(), None).await
}

fn report_result(
    ctx: &mut Ctx,
    stage: &Stage,
    called: Called<launch_runtime::types::StepReport>,
) -> anyhow::Result<StageResult> {
    journal_logs(ctx, stage, &called.logs)?;
    let r = called.value;
    Ok(StageResult {
        verdict: (&r.verdict).into(),
        checks: record::checks(&r.checks),
        summary: r.summary,
        plugin: None,
        rolled_back: false,
    })
}
