//! Every plugin call a stage makes is recorded (lab::record) so the run can be replayed: the
//! inputs as a fixture in the run folder, the answer in a `call` journal record.

use std::collections::BTreeMap;

use crate::context::{Ctx, StageResult};
use crate::journal::{Event, Inputs};
use crate::lab::answer::{CallAnswer, check_answers, verdict_answer};
use crate::lab::fixture::{Fixture, MetricWindowInput, TargetInput, UatInput};
use crate::lab::record::Saved;
use crate::record::{CheckRecord, VerdictRecord, WindowRecord};
use crate::runbook::Stage;
use launch_runtime::bounds::MAX_HISTORY;
use launch_runtime::types::{CanaryState, CanaryWindow};

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

    pub fn failed(why: &str) -> Answer {
        Answer {
            answer: "failed".into(),
            reason: why.to_string(),
            checks: BTreeMap::new(),
        }
    }
}

impl From<Answer> for CallAnswer {
    fn from(a: Answer) -> CallAnswer {
        CallAnswer::whole(a.answer, a.reason, a.checks)
    }
}

/// A canary's history in the journal: the run's window number it starts at, and how many of
/// its stage's complete windows from there on it holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct History {
    pub from: Option<u64>,
    pub len: u64,
}

/// A canary step's history as its policy is shown it: the step's complete windows, the most
/// recent `MAX_HISTORY` of them, each with its number in the journal.
#[derive(Default)]
pub struct StepHistory {
    windows: Vec<CanaryWindow>,
    seqs: std::collections::VecDeque<u64>,
}

impl StepHistory {
    /// Window `seq` of the journal joins the history; the oldest leaves past the bound.
    pub fn push(&mut self, window: CanaryWindow, seq: u64) {
        if self.windows.len() == MAX_HISTORY {
            // A memmove of MAX_HISTORY small records, against a policy call that reads them all.
            self.windows.remove(0);
            self.seqs.pop_front();
        }
        self.windows.push(window);
        self.seqs.push_back(seq);
    }

    pub fn windows(&self) -> &[CanaryWindow] {
        &self.windows
    }

    /// Where the history is in the journal, for the call's record. Windows with a gap are
    /// never in it, so its windows are the stage's complete ones from `from` on.
    pub fn range(&self) -> History {
        History {
            from: self.seqs.front().copied(),
            len: self.seqs.len() as u64,
        }
    }

    pub fn clear(&mut self) {
        self.windows.clear();
        self.seqs.clear();
    }
}

/// Saves `fixture` and journals the call with its answer and, for a canary, its history.
pub fn record(
    ctx: &mut Ctx,
    stage: &Stage,
    fixture: Fixture,
    history: History,
    answer: impl Into<CallAnswer>,
) -> anyhow::Result<()> {
    let answer = answer.into();
    let plugin = fixture.plugin.clone().unwrap_or_default();
    let (input, inputs) = match ctx.calls.save(stage.name.get_ref(), fixture)? {
        Saved::Inline(rendered) => (String::new(), Some(Inputs::Rendered(rendered))),
        Saved::File(path) => (path, None),
    };
    // The decision or verdict the call led to is journaled next, and makes this durable.
    ctx.journal.append_unsynced(Event::Call {
        stage: stage.name.get_ref().clone(),
        plugin,
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

/// `record` for a call that ended in a stage's report (a smoke suite, an SLO gate, a step):
/// no canary history, the report's verdict as the answer.
pub fn record_report(
    ctx: &mut Ctx,
    stage: &Stage,
    fixture: Fixture,
    result: &StageResult,
) -> anyhow::Result<()> {
    record(
        ctx,
        stage,
        fixture,
        History::default(),
        Answer::of_report(result),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start_ms: u64) -> CanaryWindow {
        CanaryWindow {
            start_ms,
            duration_ms: 100,
            canary: Vec::new(),
            baseline: Vec::new(),
        }
    }

    #[test]
    fn a_policy_is_shown_the_most_recent_windows_and_the_call_names_them() {
        let mut h = StepHistory::default();
        // Window numbers of the run, two apart (another stage's windows between).
        for i in 0..(MAX_HISTORY as u64 + 5) {
            h.push(window(i), 10 + 2 * i);
        }
        assert_eq!(h.windows().len(), MAX_HISTORY);
        assert_eq!(h.windows()[0].start_ms, 5);
        assert_eq!(h.windows().last().unwrap().start_ms, MAX_HISTORY as u64 + 4);
        let range = h.range();
        assert_eq!((range.from, range.len), (Some(20), MAX_HISTORY as u64));
        h.clear();
        assert_eq!((h.range().from, h.range().len), (None, 0));
    }
}
