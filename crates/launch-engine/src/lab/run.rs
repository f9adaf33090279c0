//! Runs one fixture against a plugin, offline: the call gets exactly the fixture's inputs in
//! a fresh sandbox (HTTP answered from its `[[http]]` exchanges, or else network only to its
//! target), and what came back is compared with
//! what the fixture expects, field by field, so a failure reads as expected-vs-got.

use std::sync::Arc;
use std::time::Duration;

use super::answer::{action_answer, verdict_answer};
use super::fixture::{Fixture, TargetInput};
use crate::record::{self, CheckRecord, VerdictRecord};
use launch_runtime::capabilities::allow_list::AllowList;
use launch_runtime::capabilities::grants::Grants;
use launch_runtime::capabilities::log::LogLine;
use launch_runtime::types as wit;
use launch_runtime::{CallFailure, HttpSource, Limits, Plugin, Role, Sandbox};

/// One field that differs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Mismatch {
    pub what: String,
    pub expected: String,
    pub got: String,
}

/// How one fixture went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FixtureResult {
    pub fixture: std::path::PathBuf,
    pub name: String,
    pub plugin: String,
    /// What came back, in one line: `hold: 3 canary request(s)…` or `FAIL: error-rate…`.
    pub got: String,
    pub mismatches: Vec<Mismatch>,
    /// The call itself failed (trap, deadline) or the fixture does not fit the plugin.
    pub error: Option<String>,
    pub elapsed_ms: f64,
    pub logs: Vec<String>,
    /// Each check the plugin answered, with its number and reason.
    pub checks: Vec<CheckRecord>,
}

impl FixtureResult {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.mismatches.is_empty()
    }
}

/// What a call answered, in the words fixtures compare.
pub struct Answer {
    /// `pass`, `fail`, `inconclusive`, `no-data` (report roles).
    pub verdict: Option<String>,
    /// `promote 30`, `hold`, `rollback`, `complete` (canary policies).
    pub action: Option<String>,
    pub reason: String,
    pub summary: String,
    pub checks: Vec<CheckRecord>,
}

impl Answer {
    /// The action, or else the verdict: what a decision is compared by.
    pub fn word(&self) -> String {
        self.action
            .clone()
            .or_else(|| self.verdict.clone())
            .unwrap_or_default()
    }
}

fn report_answer(r: wit::StepReport) -> Answer {
    let verdict = VerdictRecord::from(&r.verdict);
    Answer {
        verdict: Some(verdict_answer(&verdict)),
        action: None,
        reason: verdict.reason().to_string(),
        summary: r.summary,
        checks: record::checks(&r.checks),
    }
}

/// The fixture's target hosts are the only ones granted (and those of its exchanges, which
/// were granted when they were recorded); with `[[http]]` exchanges, requests are answered
/// from them and never reach the network.
fn sandbox(f: &Fixture) -> Sandbox {
    let hosts = crate::environment::url_hosts(
        f.target
            .as_ref()
            .into_iter()
            .flat_map(|t| [Some(&t.base_url), t.api_base_url.as_ref()])
            .flatten()
            .chain(f.http.iter().flatten().map(|x| &x.url)),
    );
    Sandbox {
        limits: Limits::default(),
        grants: Arc::new(
            Grants::default().with_hosts(
                AllowList::parse(&hosts).unwrap_or_else(|_| AllowList::new(Vec::new())),
            ),
        ),
        http: f
            .http
            .clone()
            .map_or(HttpSource::Live, |x| HttpSource::Canned(x.into())),
    }
}

fn target(t: &TargetInput) -> wit::Target {
    wit::Target {
        environment: t.environment.clone(),
        base_url: t.base_url.clone(),
        api_base_url: t.api_base_url.clone().unwrap_or_else(|| t.base_url.clone()),
        release_id: t.release_id.clone(),
    }
}

/// Calls the plugin's role function with the fixture's inputs.
pub async fn call(
    plugin: &Plugin,
    f: &Fixture,
) -> Result<(Answer, Vec<LogLine>, Duration), String> {
    let sandbox = sandbox(f);
    let config = serde_json::Value::Object(f.config.clone()).to_string();
    let failed = |e: CallFailure| e.to_string();
    let needs = |what: &str| format!("a {} fixture needs a `[{what}]` table", plugin.role());
    Ok(match plugin.role() {
        Role::CanaryPolicy => {
            let c = f.canary.clone().unwrap_or_default();
            let state = wit::CanaryState {
                percent: c.percent,
                step_index: c.step_index,
                step_elapsed_ms: c.step_elapsed_ms,
                total_elapsed_ms: c.total_elapsed_ms,
            };
            let history: Vec<wit::CanaryWindow> = c
                .history
                .iter()
                .map(|w| w.record(c.percent).canary_window())
                .collect();
            let called = plugin
                .decide_canary(&sandbox, &state, &history, &config)
                .await
                .map_err(failed)?;
            let d = called.value;
            let (action, reason) = action_answer(&d.action);
            let answer = Answer {
                verdict: None,
                action: Some(action),
                reason,
                summary: d.summary,
                checks: record::checks(&d.checks),
            };
            (answer, called.logs, called.elapsed)
        }
        Role::SloGate => {
            let slo = f.slo.as_ref().ok_or_else(|| needs("slo"))?;
            let samples = wit::Samples {
                windows: slo
                    .windows
                    .iter()
                    .map(|w| w.record().metric_window())
                    .collect(),
            };
            let called = plugin
                .evaluate_slo(&sandbox, &samples, &config)
                .await
                .map_err(failed)?;
            (report_answer(called.value), called.logs, called.elapsed)
        }
        Role::UatChecklist => {
            let (results, signoffs) = f.uat.clone().unwrap_or_default().wit();
            let called = plugin
                .evaluate_uat(&sandbox, &results, &signoffs, &config)
                .await
                .map_err(failed)?;
            (report_answer(called.value), called.logs, called.elapsed)
        }
        Role::SmokeSuite => {
            let t = target(f.target.as_ref().ok_or_else(|| needs("target"))?);
            let called = plugin
                .run_smoke_suite(&sandbox, &t, &config)
                .await
                .map_err(failed)?;
            (report_answer(called.value), called.logs, called.elapsed)
        }
        Role::Step => {
            let t = target(f.target.as_ref().ok_or_else(|| needs("target"))?);
            let context = wit::StepContext {
                run_id: "fixture".into(),
                stage: f.name(),
                target: t,
                params: Vec::new(),
            };
            let called = plugin
                .run_step(&sandbox, &context, &config)
                .await
                .map_err(failed)?;
            (report_answer(called.value), called.logs, called.elapsed)
        }
    })
}

/// Compares what came back with what the fixture expects.
fn compare(f: &Fixture, a: &Answer, elapsed: Duration) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut differ = |what: &str, expected: &str, got: &str| {
        out.push(Mismatch {
            what: what.into(),
            expected: expected.into(),
            got: got.into(),
        });
    };
    let e = &f.expect;
    if let Some(want) = &e.verdict {
        let got = a
            .verdict
            .clone()
            .unwrap_or_else(|| "(no verdict: a canary policy answers an action)".into());
        if *want != got {
            differ("verdict", want, &got);
        }
    }
    if let Some(want) = &e.action {
        let got = a
            .action
            .clone()
            .unwrap_or_else(|| "(no action: only canary policies answer one)".into());
        // `promote` matches any promotion; `promote 30` only that one.
        let matches = got == *want || (want == "promote" && got.starts_with("promote "));
        if !matches {
            differ("action", want, &got);
        }
    }
    if let Some(want) = &e.reason_contains
        && !a.reason.contains(want.as_str())
    {
        differ("reason contains", want, &a.reason);
    }
    if let Some(want) = &e.summary_contains
        && !a.summary.contains(want.as_str())
    {
        differ("summary contains", want, &a.summary);
    }
    for (name, want) in &e.checks {
        let got = a.checks.iter().find(|c| c.name == *name).map_or_else(
            || "(no such check)".to_string(),
            |c| verdict_answer(&c.verdict),
        );
        if *want != got {
            differ(&format!("check `{name}`"), want, &got);
        }
    }
    if let Some(within) = &e.within {
        match humantime::parse_duration(within) {
            Ok(limit) if elapsed > limit => differ(
                "within",
                within,
                &format!("{:.1} ms", elapsed.as_secs_f64() * 1000.0),
            ),
            Ok(_) => {}
            Err(err) => differ("within", within, &format!("(not a duration: {err})")),
        }
    }
    out
}

/// Runs `fixture` against `plugin`.
pub async fn run(plugin: &Plugin, fixture: &Fixture) -> FixtureResult {
    let mut result = FixtureResult {
        fixture: fixture.file.clone(),
        name: fixture.name(),
        plugin: plugin.info.name.clone(),
        got: String::new(),
        mismatches: Vec::new(),
        error: None,
        elapsed_ms: 0.0,
        logs: Vec::new(),
        checks: Vec::new(),
    };
    match call(plugin, fixture).await {
        Ok((answer, logs, elapsed)) => {
            result.elapsed_ms = elapsed.as_secs_f64() * 1000.0;
            result.logs = logs
                .iter()
                .map(|l| format!("{} {}", l.level, l.message))
                .collect();
            result.got = match (&answer.action, &answer.verdict) {
                (Some(a), _) => format!("{a}: {}", answer.summary),
                (None, Some(v)) => format!("{v}: {}", answer.summary),
                (None, None) => answer.summary.clone(),
            };
            result.mismatches = compare(fixture, &answer, elapsed);
            result.checks = answer.checks;
        }
        Err(e) => result.error = Some(e),
    }
    result
}
