//! Backtest: one policy replayed over every recorded call of its role in every run found, to
//! see — before it acts on real traffic — which launches it would have stopped or let through.
//!
//! Each call is replayed on the inputs recorded then (the canary's history as it was), so once
//! the policy answers differently the later calls show what it would say on the world as it
//! went, not the world it would have made: the first divergence is exact, the rest indicative.

use std::path::Path;

use serde::Serialize;

use super::replay::{self, RecordedCall, Replayed};
use launch_runtime::{Plugin, Role};

/// What the policy would have done to one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finding {
    /// It stops where the run stopped, and lets through what the run let through.
    Agreed,
    /// It rolls back (or fails a gate) where the recorded policy did not.
    WouldRollBack,
    /// The recorded policy rolled back (or failed), this one would not have.
    WouldPass,
    /// Every call it answered was without data: it judges nothing here.
    NoData,
}

/// One run, backtested.
#[derive(Debug, Clone, Serialize)]
pub struct Backtested {
    pub run_id: String,
    /// How the run ended (`passed`, `rolled-back`...), `running` if it has not.
    pub outcome: String,
    pub finding: Finding,
    /// The calls of the policy's role replayed, and how many answered differently.
    pub calls: usize,
    pub different: usize,
    pub no_data: usize,
    /// The first call answered differently.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_divergence: Option<Divergence>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Divergence {
    /// Its place among the run's calls of the role, from 1.
    pub call: usize,
    #[serde(flatten)]
    pub replayed: Replayed,
}

/// `--config` that the policy's schema refuses for a recorded call: the backtest stops, as a
/// runbook with that config would not run.
#[derive(Debug)]
pub struct ConfigRefused(pub String);

impl std::fmt::Display for ConfigRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigRefused {}

/// Whether an answer stops a launch: a canary's rollback, a gate's failure.
fn stops(answer: &str) -> bool {
    matches!(answer, "rollback" | "fail" | "failed")
}

fn blind(answer: &str) -> bool {
    matches!(answer, "no-data" | "inconclusive")
}

/// Whether a recorded call is one a policy of `role` answers: by the inputs it was given.
pub fn of_role(call: &RecordedCall, role: Role) -> bool {
    let f = &call.fixture;
    match role {
        Role::CanaryPolicy => f.canary.is_some(),
        Role::SloGate => f.slo.is_some(),
        Role::UatChecklist => f.uat.is_some(),
        Role::SmokeSuite => f.target.is_some() && f.canary.is_none() && f.slo.is_none(),
        Role::Step => false,
    }
}

/// Backtests `policy` over the run folder `run` (`None` when it recorded no call of the
/// policy's role), with `config` merged over each call's recorded config.
pub async fn run(
    run: &Path,
    policy: &Plugin,
    config: Option<&serde_json::Map<String, serde_json::Value>>,
) -> anyhow::Result<Option<Backtested>> {
    let role = policy.role();
    let mut calls = replay::recorded(run)?;
    calls.retain(|c| of_role(c, role) && c.replayable());
    if calls.is_empty() {
        return Ok(None);
    }
    if let (Some(schema), Some(extra)) = (policy.info.config_schema.as_ref(), config) {
        for call in &calls {
            let mut merged = call.fixture.config.clone();
            merged.extend(extra.clone());
            if let Err(e) =
                crate::consistency::check_config(schema, &serde_json::Value::Object(merged))
            {
                return Err(ConfigRefused(format!(
                    "--config: `{}`'s schema refuses the config of stage `{}` with it: {e}",
                    policy.info.name, call.stage
                ))
                .into());
            }
        }
    }
    let rows = replay::replay(&calls, |_| Some(policy), config).await;
    let outcome = crate::fleet::Summary::of_run(run)?.outcome;
    let recorded_stop = rows.iter().any(|r| stops(&r.recorded));
    let policy_stop = rows.iter().any(|r| stops(&r.answer));
    let no_data = rows.iter().filter(|r| blind(&r.answer)).count();
    let finding = match (recorded_stop, policy_stop) {
        (false, true) => Finding::WouldRollBack,
        (true, false) if no_data == rows.len() => Finding::NoData,
        (true, false) => Finding::WouldPass,
        _ if no_data == rows.len() => Finding::NoData,
        _ => Finding::Agreed,
    };
    let first_divergence = rows
        .iter()
        .enumerate()
        .find(|(_, r)| !r.same)
        .map(|(i, r)| Divergence {
            call: i + 1,
            replayed: r.clone(),
        });
    Ok(Some(Backtested {
        run_id: run
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        outcome,
        finding,
        calls: rows.len(),
        different: rows.iter().filter(|r| !r.same).count(),
        no_data,
        first_divergence,
    }))
}
