//! Every plugin call a stage makes is recorded (lab::record) so the run can be replayed: the
//! inputs as a fixture in the run folder, the answer in a `call` journal record.

use std::collections::BTreeMap;

use crate::context::{Ctx, StageResult};
use crate::journal::Event;
use crate::lab::fixture::{Fixture, MetricWindowInput, TargetInput, UatInput};
use crate::lab::record::{Saved, action_answer, check_answers, verdict_answer};
use crate::record::{self, CheckRecord, VerdictRecord, WindowRecord};
use crate::runbook::Stage;
use launch_runtime::types::{CanaryState, Decision};

/// What a call answered, in the fixtures' words.
pub struct Answer {
    pub answer: String,
    pub reason: String,
    pub checks: BTreeMap<String, String>,
}

impl Answer {
    pub fn of_report(r: &StageResult) -> Answer {
        Answer::of_verdict(&r.verdict, &r.checks)
    }

    pub fn of_verdict(verdict: &VerdictRecord, checks: &[CheckRecord]) -> Answer {
        Answer {
            answer: verdict_answer(verdict),
            reason: verdict.reason().to_string(),
            checks: check_answers(checks),
        }
    }

    pub fn of_decision(d: &Decision) -> Answer {
        let (answer, reason) = action_answer(&d.action);
        Answer {
            answer,
            reason,
            checks: check_answers(&record::checks(&d.checks)),
        }
    }

    pub fn failed(why: &str) -> Answer {
        Answer {
            answer: "failed".into(),
            reason: why.to_string(),
            checks: BTreeMap::new(),
        }
    }
}

/// A canary's history in the journal: the run's window number it starts at, and how many of
/// its stage's complete windows from there on it holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct History {
    pub from: Option<u64>,
    pub len: u64,
}

impl History {
    /// A window `seq` was added to the history.
    pub fn push(&mut self, seq: u64) {
        self.from.get_or_insert(seq);
        self.len += 1;
    }
}

/// Saves `fixture` and journals the call with its answer and, for a canary, its history.
pub fn record(
    ctx: &mut Ctx,
    stage: &Stage,
    fixture: &Fixture,
    history: History,
    answer: Answer,
) -> anyhow::Result<()> {
    let (input, inputs) = match ctx.calls.save(fixture)? {
        Saved::Inline(value) => (String::new(), Some(value)),
        Saved::File(path) => (path, None),
    };
    // The decision or verdict the call led to is journaled next, and makes this durable.
    ctx.journal.append_unsynced(Event::Call {
        stage: stage.name.get_ref().clone(),
        plugin: fixture.plugin.clone().unwrap_or_default(),
        input,
        inputs,
        windows: Vec::new(),
        history_from: history.from,
        history_len: history.len,
        answer: answer.answer,
        reason: answer.reason,
        checks: answer.checks,
    })
}

/// The inputs of a canary decision, but its history: the call names the run's windows.
pub fn canary(plugin: &str, stage: &Stage, state: &CanaryState) -> Fixture {
    Fixture::canary(plugin, stage.config_value(), state)
}

/// The inputs of an SLO gate's call.
pub fn slo(plugin: &str, stage: &Stage, windows: &[WindowRecord]) -> Fixture {
    let mut f = Fixture::new(plugin, stage.config_value());
    f.slo = Some(crate::lab::fixture::SloInput {
        windows: windows.iter().map(MetricWindowInput::from_record).collect(),
    });
    f
}

/// The inputs of a smoke suite's or step's call: its target and the HTTP exchanges it had.
pub fn target(
    plugin: &str,
    stage: &Stage,
    t: &launch_runtime::types::Target,
    http: &[launch_runtime::Exchange],
) -> Fixture {
    let mut f = Fixture::new(plugin, stage.config_value());
    f.target = Some(TargetInput {
        environment: t.environment.clone(),
        base_url: t.base_url.clone(),
        api_base_url: Some(t.api_base_url.clone()),
        release_id: t.release_id.clone(),
    });
    f.http = Some(http.to_vec());
    f
}

/// The inputs of a UAT gate's call.
pub fn uat(plugin: &str, stage: &Stage, input: UatInput) -> Fixture {
    let mut f = Fixture::new(plugin, stage.config_value());
    f.uat = Some(input);
    f
}
