//! Replay: the plugin calls a run recorded, re-run deterministically — inputs from the run
//! folder, windows, state and time from the journal, HTTP answered from the recorded
//! exchanges, never the network — against the recorded
//! plugin (which must answer the same) or a new one, side by side with what was answered then.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::answer::CallAnswer;
use super::fixture::{CanaryWindowInput, Fixture};
use crate::journal::{Event, Journal};
use crate::record::WindowRecord;
use launch_runtime::Plugin;
use launch_targets::rooted::Rooted;

/// One recorded call, its inputs made whole again (a canary's history included), expecting
/// what was answered then.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    pub stage: String,
    pub plugin: String,
    pub fixture: Fixture,
    pub answer: String,
    pub reason: String,
}

impl RecordedCall {
    /// The canary's percentage when the call was made.
    pub fn percent(&self) -> Option<u8> {
        self.fixture.canary.as_ref().map(|c| c.percent)
    }

    /// Smoke suites and steps are replayed from their recorded HTTP exchanges; a run recorded
    /// before exchanges were kept has none, and those calls are not replayed.
    pub fn replayable(&self) -> bool {
        self.fixture.target.is_none() || self.fixture.http.is_some()
    }
}

/// A canary call's history: `len` windows of `stage` with every measure present, from the
/// run's window `from` on — the windows the canary showed its policy (a window with a gap is
/// journaled but never shown).
fn history(
    windows: &[(&str, &WindowRecord)],
    stage: &str,
    from: u64,
    len: u64,
) -> anyhow::Result<Vec<CanaryWindowInput>> {
    let start = usize::try_from(from).unwrap_or(usize::MAX);
    let shown: Vec<CanaryWindowInput> = windows
        .get(start..)
        .unwrap_or_default()
        .iter()
        .filter(|(s, w)| *s == stage && launch_targets::metrics::gaps(&w.endpoints).is_empty())
        .take(usize::try_from(len).unwrap_or(usize::MAX))
        .map(|(_, w)| CanaryWindowInput::from_record(w))
        .collect();
    anyhow::ensure!(
        shown.len() as u64 == len,
        "the call of `{stage}` saw {len} window(s) from window {from} on, and the journal holds {} before it",
        shown.len()
    );
    Ok(shown)
}

/// The calls a run recorded, in order.
pub fn recorded(run_dir: &Path) -> anyhow::Result<Vec<RecordedCall>> {
    let records = Journal::read(&run_dir.join("journal.jsonl"))?;
    let folder =
        Rooted::open(run_dir, false).with_context(|| format!("opening {}", run_dir.display()))?;
    // Every window of the run, numbered as the journal numbers them, with its stage.
    let mut windows: Vec<(&str, &WindowRecord)> = Vec::new();
    let mut calls: Vec<Option<RecordedCall>> = Vec::new();
    let mut inlined = super::record::Inlined::default();
    // Canary calls whose answer is in the decision journaled after them: stage → (index in
    // `calls`, what the call's record kept of it).
    let mut undecided: HashMap<&str, (usize, CallAnswer)> = HashMap::new();
    for r in &records {
        match &r.event {
            Event::Window { stage, window, .. } => windows.push((stage, window)),
            Event::Decision {
                stage,
                percent,
                action,
                summary,
                checks,
                plugin,
                call,
            } => {
                let earlier = undecided.remove(stage.as_str());
                let Some(call) = call else {
                    if let Some((i, kept)) = earlier {
                        let (answer, reason, checks) =
                            super::answer::restore_from_decision(&kept, action, summary, checks);
                        let call = calls[i].as_mut().expect("an undecided call");
                        call.fixture.expect.action = Some(answer.clone());
                        call.fixture.expect.checks = checks;
                        call.answer = answer;
                        call.reason = reason;
                    }
                    continue;
                };
                // A decision holding its call: a `call` record before it was never decided.
                if let Some((i, _)) = earlier {
                    calls[i] = None;
                }
                let state = launch_runtime::types::CanaryState {
                    percent: *percent,
                    step_index: call.step_index,
                    step_elapsed_ms: call.step_elapsed_ms,
                    total_elapsed_ms: call.total_elapsed_ms,
                };
                let config = inlined.config(stage, call.config.as_ref());
                let mut fixture = Fixture::canary(plugin, config, &state);
                fixture.file = folder.display("journal.jsonl");
                if let (Some(canary), Some(from)) = (fixture.canary.as_mut(), call.history_from) {
                    canary.history = history(&windows, stage, from, call.history_len)?;
                }
                let kept = CallAnswer {
                    answer: String::new(),
                    reason: call.reason.clone(),
                    checks: Default::default(),
                };
                let (answer, reason, checks) =
                    super::answer::restore_from_decision(&kept, action, summary, checks);
                fixture.expect.action = Some(answer.clone());
                fixture.expect.checks = checks;
                calls.push(Some(RecordedCall {
                    stage: stage.clone(),
                    plugin: plugin.clone(),
                    fixture,
                    answer,
                    reason,
                }));
            }
            Event::Call {
                stage,
                plugin,
                input,
                inputs,
                windows: seqs,
                history_from,
                history_len,
                answer,
                reason,
                checks,
            } => {
                let mut fixture: Fixture = match inputs {
                    Some(inputs) => {
                        serde_json::from_value(inlined.restore(stage, plugin, inputs.to_value()?))
                            .with_context(|| {
                            format!("the call of `{stage}` in the journal holds no recorded inputs")
                        })?
                    }
                    None => {
                        let bytes = crate::files::read_rooted(
                            &folder,
                            input,
                            crate::files::FIXTURE,
                            "a recorded call",
                        )?;
                        serde_json::from_slice(&bytes)
                            .with_context(|| format!("{input} is not a recorded call"))?
                    }
                };
                fixture.file = if input.is_empty() {
                    folder.display("journal.jsonl")
                } else {
                    folder.display(input)
                };
                if let Some(canary) = fixture.canary.as_mut() {
                    canary.history = match history_from {
                        Some(from) => history(&windows, stage, *from, *history_len)?,
                        // A journal written before histories were ranges.
                        None => seqs
                            .iter()
                            .map(|&i| {
                                let w = usize::try_from(i).ok().and_then(|i| windows.get(i));
                                w.map(|(_, w)| CanaryWindowInput::from_record(w)).with_context(|| {
                                    format!("the call of `{stage}` names window {i}, which the journal does not hold")
                                })
                            })
                            .collect::<anyhow::Result<_>>()?,
                    };
                    if answer.is_empty() {
                        // Its decision, journaled next, says the answer.
                        let kept = CallAnswer {
                            answer: String::new(),
                            reason: reason.clone(),
                            checks: checks.clone(),
                        };
                        if let Some((earlier, _)) = undecided.insert(stage, (calls.len(), kept)) {
                            calls[earlier] = None; // never decided: see below
                        }
                    } else if answer != "failed" {
                        fixture.expect.action = Some(answer.clone());
                    }
                } else if answer != "failed" {
                    fixture.expect.verdict = Some(answer.clone());
                }
                fixture.expect.checks = checks.clone();
                calls.push(Some(RecordedCall {
                    stage: stage.clone(),
                    plugin: plugin.clone(),
                    fixture,
                    answer: answer.clone(),
                    reason: reason.clone().unwrap_or_default(),
                }));
            }
            _ => {}
        }
    }
    // A call whose decision was never journaled (the run was killed between the two) led to
    // nothing: it is not replayed.
    for (i, _) in undecided.into_values() {
        calls[i] = None;
    }
    Ok(calls.into_iter().flatten().collect())
}

/// Writes each call as a fixture expecting what was answered (`NNN-STAGE.json`) in
/// `out/fixtures` (or `out` when it is named so), where `plugin test` finds them; returns
/// the folder.
pub fn save_fixtures(calls: &[RecordedCall], out: &Path) -> anyhow::Result<PathBuf> {
    let dir = if out.file_name().is_some_and(|n| n == "fixtures") {
        out.to_path_buf()
    } else {
        out.join("fixtures")
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (i, call) in calls.iter().enumerate() {
        let mut fixture = call.fixture.clone();
        let at = call
            .percent()
            .map_or(String::new(), |p| format!("at {p}% "));
        fixture.description = Some(format!(
            "recorded: {} {at}→ {} {} (by `{}`)",
            call.stage, call.answer, call.reason, call.plugin
        ));
        // For any policy of the role: the recorded answer is what a new one must give; the
        // recorded plugin's own name and check names are its, not the contract's.
        fixture.plugin = None;
        fixture.expect.checks.clear();
        let path = dir.join(format!("{:03}-{}.json", i + 1, call.stage));
        std::fs::write(&path, serde_json::to_vec_pretty(&fixture)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

/// One call, then and now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Replayed {
    pub stage: String,
    pub percent: Option<u8>,
    pub recorded_plugin: String,
    pub recorded: String,
    pub recorded_reason: String,
    /// The plugin that answered now; `None` when the call was not replayed.
    pub plugin: Option<String>,
    pub answer: String,
    pub reason: String,
    pub same: bool,
    /// Why the call was not replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Replays `calls`, each against the plugin `choose` gives (none: not replayed), with
/// `config` merged over the recorded config when given.
pub async fn replay<'a>(
    calls: &[RecordedCall],
    choose: impl Fn(&RecordedCall) -> Option<&'a Plugin>,
    config: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Vec<Replayed> {
    let mut out = Vec::with_capacity(calls.len());
    for call in calls {
        let mut row = Replayed {
            stage: call.stage.clone(),
            percent: call.percent(),
            recorded_plugin: call.plugin.clone(),
            recorded: call.answer.clone(),
            recorded_reason: call.reason.clone(),
            plugin: None,
            answer: String::new(),
            reason: String::new(),
            same: true,
            skipped: None,
        };
        let plugin = choose(call);
        match plugin {
            _ if !call.replayable() => {
                row.skipped = Some(
                    "reaches the network, and this run did not record its HTTP exchanges".into(),
                )
            }
            None => row.skipped = Some(format!("no plugin to replay `{}` with", call.plugin)),
            Some(plugin) => {
                let mut fixture = call.fixture.clone();
                if let Some(extra) = config {
                    fixture.config.extend(extra.clone());
                }
                row.plugin = Some(plugin.info.name.clone());
                match super::run::call(plugin, &fixture).await {
                    Ok((answer, _, _)) => {
                        row.answer = answer.word();
                        row.reason = answer.reason;
                    }
                    Err(e) => {
                        row.answer = "failed".into();
                        row.reason = e;
                    }
                }
                row.same = row.answer == row.recorded;
            }
        }
        out.push(row);
    }
    out
}
