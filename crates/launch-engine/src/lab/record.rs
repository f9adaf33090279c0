//! Recording what every plugin call saw, so a run can be replayed against the same or another
//! policy: a `call` journal record with the answer (`lab::answer`) and the inputs as a fixture,
//! secrets masked — in the record when small, else in the run folder (`calls/<sha256>.json`,
//! content-addressed). A canary's windows are not copied: the call names the run's `window`
//! records that made up its history. A canary's own call is recorded in the decision it made
//! (`CanaryCalls`): a few numbers in a line the run writes anyway.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use serde::Serialize;

use super::fixture::{
    CanaryInput, CanaryWindowInput, Expect, Fixture, SloInput, TargetInput, UatInput,
};
use crate::journal::CanaryCall;
use launch_runtime::types::{Action, CanaryState};
use launch_targets::rooted::Rooted;

/// The folder of a run that holds recorded inputs.
pub const CALLS: &str = "calls";

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

/// A canary stage's calls, each recorded in the decision it made (`journal::CanaryCall`). The
/// stage's config is the same at every call: whether the journal must hold it again is asked
/// once, at the stage's first call here, not every window (comparing it cost a tenth of what
/// recording a call did).
pub struct CanaryCalls {
    stage: String,
    /// The config, until the first call has asked.
    config: Option<serde_json::Map<String, serde_json::Value>>,
}

impl CanaryCalls {
    pub fn new(stage: &str, config: serde_json::Map<String, serde_json::Value>) -> CanaryCalls {
        CanaryCalls {
            stage: stage.to_string(),
            config: Some(config),
        }
    }

    /// The call that showed the policy `state` and `history_len` windows from the run's window
    /// `history_from` on, and answered `action` (journaled in its decision with `summary`).
    pub fn call(
        &mut self,
        store: &mut CallStore,
        state: &CanaryState,
        (history_from, history_len): (Option<u64>, u64),
        action: &Action,
        summary: &str,
    ) -> CanaryCall {
        let config = self
            .config
            .take()
            .and_then(|c| store.config_to_hold(&self.stage, c));
        CanaryCall {
            step_index: state.step_index,
            step_elapsed_ms: state.step_elapsed_ms,
            total_elapsed_ms: state.total_elapsed_ms,
            history_from,
            history_len,
            config,
            reason: super::answer::decided_call(action, summary).reason,
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

    /// The config of a canary call recorded in its decision: the one it holds (the calls after
    /// it had the same), else its stage's previous call's.
    pub fn config(
        &mut self,
        stage: &str,
        held: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> serde_json::Value {
        match held {
            Some(config) => {
                let config = serde_json::Value::Object(config.clone());
                self.configs.insert(stage.into(), config.clone());
                config
            }
            None => self.configs.get(stage).cloned().unwrap_or_default(),
        }
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

    /// `config` when a call of `stage` must hold it (the stage's last recorded call held
    /// another, or none), noted as held from now on.
    pub fn config_to_hold(
        &mut self,
        stage: &str,
        config: serde_json::Map<String, serde_json::Value>,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        if self.configs.get(stage) == Some(&config) {
            return None;
        }
        self.configs.insert(stage.to_string(), config.clone());
        Some(config)
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
