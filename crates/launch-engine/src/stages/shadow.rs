//! Shadow policies: after the live plugin answers, each shadow named on the stage is called
//! with exactly the live plugin's inputs, in its own fresh instance under the stage's limits.
//! Its answer is journaled beside the live one (agrees or not); it is never obeyed, and a
//! shadow that traps or times out is journaled as failed without touching the run.

use crate::context::Ctx;
use crate::journal::Event;
use crate::record::{self, CheckRecord};
use crate::runbook::Stage;
use launch_runtime::CallFailure;
use launch_runtime::types::{CanaryState, CanaryWindow, Samples, StepContext, Target};

/// The live plugin's inputs, as the shadows receive them.
pub enum Inputs<'a> {
    Canary {
        state: &'a CanaryState,
        history: &'a [CanaryWindow],
    },
    Smoke(&'a Target),
    Slo(&'a Samples),
    Step(&'a StepContext),
}

/// A shadow's answer in the words the live one is compared in.
struct Answer {
    word: String,
    summary: String,
    checks: Vec<CheckRecord>,
}

/// Asks every shadow of `stage` what it would have answered to `inputs`; `live` is the live
/// plugin's answer (an action word or a verdict word). Only the journal can fail this.
pub async fn consult(
    ctx: &mut Ctx,
    stage: &Stage,
    inputs: Inputs<'_>,
    live: &str,
    percent: Option<u8>,
) -> anyhow::Result<()> {
    if stage.shadow.is_empty() {
        return Ok(());
    }
    let sandbox = ctx.sandbox(stage)?;
    for shadow in &stage.shadow {
        let shadow = shadow.get_ref();
        let name = shadow.plugin().to_string();
        let config = shadow.config_value(stage).to_string();
        let answer = match ctx.catalog.get(&name) {
            None => Err(format!("plugin `{name}` is not in the catalog")),
            Some(plugin) => ask(plugin, &sandbox, &inputs, &config)
                .await
                .map_err(|f| f.to_string()),
        };
        let event = match answer {
            Ok(a) => Event::Shadow {
                stage: stage.name.get_ref().clone(),
                plugin: name,
                percent,
                live: live.to_string(),
                agrees: a.word == live,
                shadow: a.word,
                summary: a.summary,
                checks: a.checks,
                failed: None,
            },
            Err(why) => Event::Shadow {
                stage: stage.name.get_ref().clone(),
                plugin: name,
                percent,
                live: live.to_string(),
                shadow: "failed".into(),
                agrees: false,
                summary: String::new(),
                checks: Vec::new(),
                failed: Some(why),
            },
        };
        ctx.journal.append(event)?;
    }
    Ok(())
}

async fn ask(
    plugin: &launch_runtime::Plugin,
    sandbox: &launch_runtime::Sandbox,
    inputs: &Inputs<'_>,
    config: &str,
) -> Result<Answer, CallFailure> {
    let report = match inputs {
        Inputs::Canary { state, history } => {
            let d = plugin
                .decide_canary(sandbox, state, history, config)
                .await?
                .value;
            return Ok(Answer {
                word: crate::lab::record::action_word(&d.action),
                summary: d.summary,
                checks: record::checks(&d.checks),
            });
        }
        Inputs::Smoke(target) => plugin.run_smoke_suite(sandbox, target, config).await?,
        Inputs::Slo(samples) => plugin.evaluate_slo(sandbox, samples, config).await?,
        Inputs::Step(context) => plugin.run_step(sandbox, context, config).await?,
    }
    .value;
    Ok(Answer {
        word: record::VerdictRecord::from(&report.verdict)
            .word()
            .to_string(),
        summary: report.summary,
        checks: record::checks(&report.checks),
    })
}
