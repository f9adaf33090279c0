//! Shadow policies: after the live plugin answers, each shadow named on the stage is called
//! with exactly the live plugin's inputs (a smoke suite's or step's HTTP answered from the live
//! call's exchanges), in its own fresh instance under the stage's limits.
//! Its answer is journaled beside the live one (agrees or not); it is never obeyed, and a
//! shadow that traps or times out is journaled as failed without touching the run.

use crate::context::Ctx;
use crate::journal::Event;
use crate::operator::Notice;
use crate::record::{self, CheckRecord};
use crate::runbook::Stage;
use launch_runtime::types::{CanaryState, CanaryWindow, Samples, StepContext, Target};
use launch_runtime::{CallFailure, Exchange, HttpSource};

/// The live plugin's inputs, as the shadows receive them.
pub enum Inputs<'a> {
    Canary {
        state: &'a CanaryState,
        history: &'a [CanaryWindow],
    },
    /// A smoke suite's target, and the live call's HTTP exchanges: a shadow is answered from
    /// them, so it sees exactly what the live plugin saw and adds no traffic.
    Smoke(&'a Target, &'a [Exchange]),
    Slo(&'a Samples),
    Step(&'a StepContext, &'a [Exchange]),
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
    let mut sandbox = ctx.sandbox(stage)?;
    if let Inputs::Smoke(_, http) | Inputs::Step(_, http) = &inputs {
        sandbox.http = HttpSource::Canned(http.to_vec().into());
    }
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
        // The console hears a disagreement when the shadow's answer changes, not every window.
        let word = match &answer {
            Ok(a) if a.word != live => Some((a.word.clone(), a.summary.clone())),
            Ok(_) => None,
            Err(why) => Some(("failed".to_string(), why.clone())),
        };
        let told = ctx.shadows_told.get(&name);
        if let Some((w, why)) = &word
            && told != Some(w)
        {
            ctx.operator.tell(Notice::ShadowDisagrees {
                plugin: &name,
                live,
                shadow: w,
                percent,
                why,
            });
        }
        match word {
            Some((w, _)) => ctx.shadows_told.insert(name.clone(), w),
            None => ctx.shadows_told.remove(&name),
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
                word: crate::lab::answer::action_word(&d.action),
                summary: d.summary,
                checks: record::checks(&d.checks),
            });
        }
        Inputs::Smoke(target, _) => plugin.run_smoke_suite(sandbox, target, config).await?,
        Inputs::Slo(samples) => plugin.evaluate_slo(sandbox, samples, config).await?,
        Inputs::Step(context, _) => plugin.run_step(sandbox, context, config).await?,
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
