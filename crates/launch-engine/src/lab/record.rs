//! Recording what every plugin call saw, so a run can be replayed against the same or another
//! policy: a `call` journal record with the answer and the inputs as a fixture, secrets masked
//! — in the record when small, else in the run folder (`calls/<sha256>.json`,
//! content-addressed). A canary's windows are not copied: the call names the run's `window`
//! records that made up its history.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use serde::Serialize;

use super::fixture::{
    CanaryInput, CanaryWindowInput, Expect, Fixture, SloInput, TargetInput, UatInput,
};
use crate::record::{CheckRecord, VerdictRecord};
use launch_runtime::types::Action;
use launch_targets::rooted::Rooted;

/// The folder of a run that holds recorded inputs.
pub const CALLS: &str = "calls";

/// An action in the fixtures' words, with its reason: (`promote 30`, ""), (`hold`, why)...
pub fn action_answer(action: &Action) -> (String, String) {
    match action {
        Action::Promote(p) => (format!("promote {p}"), String::new()),
        Action::Hold(r) => ("hold".into(), r.clone()),
        Action::Rollback(r) => ("rollback".into(), r.clone()),
        Action::Complete => ("complete".into(), String::new()),
    }
}

/// An action in the journal's words (`promote 30%`, `hold`...), which decisions are recorded
/// and shadows compared in.
pub fn action_word(action: &Action) -> String {
    match action {
        Action::Promote(p) => format!("promote {p}%"),
        other => action_answer(other).0,
    }
}

/// A verdict in the fixtures' words.
pub fn verdict_answer(v: &VerdictRecord) -> String {
    match v {
        VerdictRecord::Pass => "pass",
        VerdictRecord::Fail(_) => "fail",
        VerdictRecord::Inconclusive(_) => "inconclusive",
        VerdictRecord::NoData(_) => "no-data",
    }
    .into()
}

/// Check name → verdict word, as fixtures expect them.
pub fn check_answers(checks: &[CheckRecord]) -> BTreeMap<String, String> {
    checks
        .iter()
        .map(|c| (c.name.clone(), verdict_answer(&c.verdict)))
        .collect()
}

/// A call's answer as its `call` record holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallAnswer {
    /// Empty: the `decision` journaled next says it.
    pub answer: String,
    /// None: the decision's summary says it (`<answer>: <reason>`).
    pub reason: Option<String>,
    /// Empty: the decision's checks are these.
    pub checks: BTreeMap<String, String>,
}

impl CallAnswer {
    /// An answer no decision repeats (a report's verdict, a failed call): all of it.
    pub fn whole(answer: String, reason: String, checks: BTreeMap<String, String>) -> CallAnswer {
        CallAnswer {
            answer,
            reason: Some(reason),
            checks,
        }
    }
}

/// The fixtures' answer for a decision's action word: `promote 30%` → `promote 30`.
pub fn answer_of_action_word(word: &str) -> String {
    match word.strip_prefix("promote ") {
        Some(p) => format!("promote {}", p.trim_end_matches('%')),
        None => word.to_string(),
    }
}

/// The reason a decision's summary gives, when it is written `<answer>: <reason>` (as the
/// stock policies write theirs); else "".
pub fn reason_in_summary<'a>(answer: &str, summary: &'a str) -> &'a str {
    summary
        .strip_prefix(answer)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or("")
}

/// What a canary call's record keeps of its answer when its decision (`action`, `summary`,
/// `checks`) is journaled right after it: only what the decision does not say. A canary
/// records a call and a decision per window, so saying it once keeps the journal short;
/// `restore_from_decision` takes it back exactly.
pub fn leave_to_decision(
    answer: String,
    reason: String,
    checks: BTreeMap<String, String>,
    action: &str,
    summary: &str,
    decision_checks: &[CheckRecord],
) -> CallAnswer {
    if answer != answer_of_action_word(action) {
        return CallAnswer::whole(answer, reason, checks);
    }
    let reason = (reason_in_summary(&answer, summary) != reason).then_some(reason);
    let checks = if checks == check_answers(decision_checks) {
        BTreeMap::new()
    } else {
        checks
    };
    CallAnswer {
        answer: String::new(),
        reason,
        checks,
    }
}

/// `leave_to_decision` for a policy's own decision, journaled right after its call with the
/// action's word and the checks it gave: its answer and checks are the decision's by
/// construction, so only a reason the summary does not say stays. A canary records this
/// every window; it builds nothing that would be dropped.
pub fn decided_call(action: &Action, summary: &str) -> CallAnswer {
    let reason = match action {
        Action::Hold(r) | Action::Rollback(r) => {
            let (answer, _) = action_answer(action);
            (reason_in_summary(&answer, summary) != r).then(|| r.clone())
        }
        // No reason: the summary says one only when it is not `<answer>: ...`.
        Action::Promote(p) => {
            (!reason_in_summary(&format!("promote {p}"), summary).is_empty()).then(String::new)
        }
        Action::Complete => (!reason_in_summary("complete", summary).is_empty()).then(String::new),
    };
    CallAnswer {
        answer: String::new(),
        reason,
        checks: BTreeMap::new(),
    }
}

/// The answer, reason and checks of a call recorded by `leave_to_decision`, from the
/// decision journaled after it.
pub fn restore_from_decision(
    call: &CallAnswer,
    action: &str,
    summary: &str,
    decision_checks: &[CheckRecord],
) -> (String, String, BTreeMap<String, String>) {
    let answer = answer_of_action_word(action);
    let reason = match &call.reason {
        Some(r) => r.clone(),
        None => reason_in_summary(&answer, summary).to_string(),
    };
    let checks = if call.checks.is_empty() {
        check_answers(decision_checks)
    } else {
        call.checks.clone()
    };
    (answer, reason, checks)
}

/// Inputs up to this size (as JSON) stay in the journal record; larger ones (an SLO gate's
/// raw latencies, a smoke suite's HTTP bodies) go to a file of their own.
pub const INLINE_BYTES: usize = 4 << 10;

/// A fixture as its `call` record holds it: without what the record says already (its
/// plugin), what is empty (`expect`, a canary's history, which the record names as a range),
/// or the config its stage's previous inline call held. A canary writes one per window, so
/// each byte counts thousands of times, and it is rendered straight from the fixture, not
/// built as a JSON value first; `Inlined::restore` puts it all back.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct InlineFixture<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    canary: Option<InlineCanary<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<&'a serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expect: Option<&'a Expect>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<&'a [launch_runtime::Exchange]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slo: Option<&'a SloInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a TargetInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uat: Option<&'a UatInput>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct InlineCanary<'a> {
    percent: u8,
    step_index: u32,
    step_elapsed_ms: u64,
    total_elapsed_ms: u64,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    history: &'a [CanaryWindowInput],
}

impl<'a> InlineFixture<'a> {
    /// `config` when the record must hold it. Every field is named, not `..`: a field added
    /// to `Fixture`, `Expect` or `CanaryInput` does not compile until it is recorded here too.
    fn of(
        fixture: &'a Fixture,
        config: Option<&'a serde_json::Map<String, serde_json::Value>>,
    ) -> Self {
        let Fixture {
            description,
            plugin: _,
            config: _,
            canary,
            slo,
            uat,
            target,
            http,
            expect,
            file: _,
        } = fixture;
        let Expect {
            verdict,
            action,
            reason_contains,
            summary_contains,
            checks,
            within,
        } = expect;
        let expects_nothing = verdict.is_none()
            && action.is_none()
            && reason_contains.is_none()
            && summary_contains.is_none()
            && checks.is_empty()
            && within.is_none();
        InlineFixture {
            canary: canary.as_ref().map(|c| {
                let CanaryInput {
                    percent,
                    step_index,
                    step_elapsed_ms,
                    total_elapsed_ms,
                    history,
                } = c;
                InlineCanary {
                    percent: *percent,
                    step_index: *step_index,
                    step_elapsed_ms: *step_elapsed_ms,
                    total_elapsed_ms: *total_elapsed_ms,
                    history,
                }
            }),
            config,
            description: description.as_deref(),
            expect: (!expects_nothing).then_some(expect),
            http: http.as_deref(),
            slo: slo.as_ref(),
            target: target.as_ref(),
            uat: uat.as_ref(),
        }
    }
}

/// Reads a journal's inline fixtures whole again, in the order they were written: a call
/// without a config had its stage's previous inline call's, and its plugin is the record's.
#[derive(Default)]
pub struct Inlined {
    configs: HashMap<String, serde_json::Value>,
}

impl Inlined {
    pub fn restore(
        &mut self,
        stage: &str,
        plugin: &str,
        mut value: serde_json::Value,
    ) -> serde_json::Value {
        if let Some(fixture) = value.as_object_mut() {
            if !plugin.is_empty() {
                fixture.entry("plugin").or_insert_with(|| plugin.into());
            }
            fixture
                .entry("expect")
                .or_insert_with(|| serde_json::json!({}));
            match fixture.get("config") {
                Some(config) => {
                    self.configs.insert(stage.into(), config.clone());
                }
                None => {
                    if let Some(config) = self.configs.get(stage) {
                        fixture.insert("config".into(), config.clone());
                    }
                }
            }
        }
        value
    }
}

/// Where a call's recorded inputs went.
pub enum Saved {
    /// Small: they go into the `call` record itself, durable with it, at no extra cost.
    Inline(Box<serde_json::value::RawValue>),
    /// Large: `calls/<digest>.json` in the run folder, written before the record names it.
    File(String),
}

/// A run's recorded inputs: small ones stay in the journal (a canary's call costs no system
/// call, and a run killed at any moment names no file it did not write), large ones are
/// written once each, content-addressed and atomically, into `calls/`.
pub struct CallStore {
    run_dir: PathBuf,
    folder: Option<Rooted>,
    saved: HashSet<String>,
    /// The config each stage's last inline call held (one per stage of the runbook).
    configs: HashMap<String, serde_json::Map<String, serde_json::Value>>,
}

impl CallStore {
    pub fn new(run_dir: &Path) -> CallStore {
        CallStore {
            run_dir: run_dir.to_path_buf(),
            folder: None,
            saved: HashSet::new(),
            configs: HashMap::new(),
        }
    }

    /// Saves `fixture` (a call's inputs), secrets masked (inline ones by the journal, which
    /// masks every record).
    pub fn save(&mut self, stage: &str, fixture: Fixture) -> anyhow::Result<Saved> {
        // A stage's config is the same at every call: a record holds it when it changed.
        let known = self.configs.get(stage) == Some(&fixture.config);
        let view = InlineFixture::of(&fixture, (!known).then_some(&fixture.config));
        let rendered = serde_json::value::to_raw_value(&view)?;
        if rendered.get().len() > INLINE_BYTES {
            return self.save_file(serde_json::to_value(&fixture)?);
        }
        if !known {
            self.configs.insert(stage.to_string(), fixture.config);
        }
        Ok(Saved::Inline(rendered))
    }

    /// Writes a fixture too large for its record to `calls/`, once per content.
    fn save_file(&mut self, mut value: serde_json::Value) -> anyhow::Result<Saved> {
        crate::redact::json(&mut value);
        let bytes = serde_json::to_vec(&value)?;
        let digest = hex::encode(Sha256::digest(&bytes));
        let name = format!("{}.json", &digest[..32]);
        if !self.saved.contains(&name) {
            let folder = match self.folder.take() {
                Some(f) => f,
                None => Rooted::open(&self.run_dir, false)
                    .and_then(|run| run.sub(CALLS, true))
                    .with_context(|| format!("opening {}", self.run_dir.join(CALLS).display()))?,
            };
            let written = if folder.exists(&name) {
                Ok(())
            } else {
                folder.write_atomically(&name, &bytes)
            };
            let shown = folder.display(&name);
            self.folder = Some(folder);
            written.with_context(|| format!("writing {}", shown.display()))?;
            self.saved.insert(name.clone());
        }
        Ok(Saved::File(format!("{CALLS}/{name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, verdict: VerdictRecord) -> CheckRecord {
        CheckRecord {
            name: name.into(),
            verdict,
            observed: Some(1.0),
            threshold: Some(2.0),
            unit: "ms".into(),
            detail: String::new(),
            skipped: false,
        }
    }

    #[test]
    fn a_call_leaves_to_its_decision_only_what_the_decision_says_and_gets_it_back() {
        let checks = vec![
            check("error-rate", VerdictRecord::Pass),
            check("latency-p95", VerdictRecord::Fail("slow".into())),
        ];
        // (answer, reason, the decision's action word and summary, the reason kept)
        let cases = [
            ("hold", "healthy", "hold", "hold: healthy", None),
            ("promote 30", "", "promote 30%", "promote to 30%", None),
            (
                "rollback",
                "p95 2504 ms",
                "rollback",
                "rollback: p95 2504 ms",
                None,
            ),
            // A summary in other words, or one the host added to (a paused canary's).
            ("hold", "quiet", "hold", "waiting: quiet", Some("quiet")),
            (
                "hold",
                "ok",
                "hold",
                "hold: ok (paused by ana: not acted on)",
                Some("ok"),
            ),
            ("promote 30", "", "promote 30%", "promote 30: now", Some("")),
        ];
        for (answer, reason, action, summary, kept) in cases {
            let full = check_answers(&checks);
            let call = leave_to_decision(
                answer.into(),
                reason.into(),
                full.clone(),
                action,
                summary,
                &checks,
            );
            assert_eq!(call.answer, "", "{summary}: the decision says the answer");
            assert!(call.checks.is_empty(), "{summary}: and the checks");
            assert_eq!(call.reason.as_deref(), kept, "{summary}");
            assert_eq!(
                restore_from_decision(&call, action, summary, &checks),
                (answer.to_string(), reason.to_string(), full),
                "{summary}"
            );
        }
        // A policy's own decision: `decided_call` keeps exactly what `leave_to_decision` of
        // the whole answer keeps.
        let actions = [
            Action::Hold("healthy".into()),
            Action::Rollback("p95 2504 ms".into()),
            Action::Promote(30),
            Action::Complete,
        ];
        let summaries = [
            "hold: healthy",
            "rollback: p95 2504 ms",
            "promote to 30%",
            "promote 30: now",
            "complete: done",
            "canary complete",
            "waiting: healthy",
            "hold: healthy (paused by ana: not acted on)",
        ];
        for action in &actions {
            for summary in summaries {
                let (answer, reason) = action_answer(action);
                let word = action_word(action);
                let whole = leave_to_decision(
                    answer,
                    reason,
                    check_answers(&checks),
                    &word,
                    summary,
                    &checks,
                );
                assert_eq!(decided_call(action, summary), whole, "{word} / {summary}");
            }
        }
        // An answer the decision does not give (a failed call) is kept whole.
        let failed = leave_to_decision(
            "failed".into(),
            "trap".into(),
            BTreeMap::new(),
            "rollback",
            "rollback: trap",
            &[],
        );
        assert_eq!(
            failed,
            CallAnswer::whole("failed".into(), "trap".into(), BTreeMap::new())
        );
    }

    #[test]
    fn a_stages_config_is_recorded_once_and_every_fixture_comes_back_whole() {
        let run = tempfile::tempdir().unwrap();
        let mut store = CallStore::new(run.path());
        let mut inlined = Inlined::default();
        let state = |percent| launch_runtime::types::CanaryState {
            percent,
            step_index: 1,
            step_elapsed_ms: 500,
            total_elapsed_ms: 900,
        };
        let config = serde_json::json!({"steps": [10, 30], "mode": "statistical"});
        let other = serde_json::json!({"steps": [50]});
        let big = serde_json::json!({"pad": "x".repeat(INLINE_BYTES)});
        let calls = [
            ("canary", config.clone(), true),
            ("canary", config.clone(), false), // the same config: left out
            ("gate", config.clone(), true),    // another stage: its own
            ("canary", other.clone(), true),   // changed: written again
            ("canary", other.clone(), false),
            ("canary", big.clone(), true), // too large to inline: a file, config and all
            ("canary", other.clone(), false),
        ];
        for (i, (stage, config, holds_config)) in calls.into_iter().enumerate() {
            let mut fixture = Fixture::canary("canary-steps", config.clone(), &state(10 + i as u8));
            if stage == "gate" {
                // What a fixture says besides its inputs is kept too.
                fixture.description = Some("a gate".into());
                fixture.expect.action = Some("hold".into());
            }
            let whole = serde_json::to_value(&fixture).unwrap();
            let restored = match store.save(stage, fixture).unwrap() {
                Saved::Inline(rendered) => {
                    let value: serde_json::Value = serde_json::from_str(rendered.get()).unwrap();
                    assert_eq!(value.get("config").is_some(), holds_config, "call {i}");
                    assert!(value.get("plugin").is_none(), "call {i}");
                    assert_eq!(value.get("expect").is_some(), stage == "gate", "call {i}");
                    assert!(value["canary"].get("history").is_none(), "call {i}");
                    inlined.restore(stage, "canary-steps", value)
                }
                Saved::File(path) => {
                    assert!(config == big, "call {i} went to {path}");
                    let text = std::fs::read_to_string(run.path().join(&path)).unwrap();
                    serde_json::from_str(&text).unwrap()
                }
            };
            // Read back as a fixture (an empty history is a default one).
            let restored: Fixture = serde_json::from_value(restored).unwrap();
            assert_eq!(serde_json::to_value(&restored).unwrap(), whole, "call {i}");
        }
    }
}
