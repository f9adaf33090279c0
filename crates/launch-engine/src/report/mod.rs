//! Reports of a run, all built from its journal (the single source of truth) into the run
//! folder: `report.json` for machines, `junit.xml` for CI (each check a test case), `report.md`
//! (PASS/FAIL per gate and next actions, like the guide's end-of-run summary) and `report.html`,
//! the run page (`page`) standalone: stages, canary charts with thresholds, UAT, capabilities.

mod chart;
pub mod glance;
pub(crate) mod junit;
mod markdown;
mod marks;
pub mod page;
mod read;
mod shadow;

pub use shadow::{ShadowAnswer, Tally, tallies};

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::record::{CheckRecord, VerdictRecord, WindowRecord};

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub run_id: String,
    /// The runbook's launch name, flag and environments (empty for journals written before
    /// the run's first record named them).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub launch: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub flag: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
    pub runbook: String,
    /// `passed`, `gate-failed`, `rolled-back`, `aborted`, `host-failed`, or for an unfinished
    /// run `running` (its process lives) or `interrupted` (it does not).
    pub outcome: String,
    pub summary: String,
    pub started_ms: u64,
    /// Who started the run (the login name, or `--operator`), when the journal says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    pub finished_ms: Option<u64>,
    pub plugins: Vec<(String, String)>,
    /// What each plugin was allowed to do (the capability manifest), when the run journaled it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    pub stages: Vec<StageReport>,
    /// The stages the run planned (name, title), started or not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<(String, String)>,
    /// The sha256 of the journal's last line when the report was written: anchors the chain's
    /// end (`launch-host verify`).
    pub journal_sha256: String,
    /// Notifications that never reached their channel (an alert or a page nobody got).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undelivered: Vec<Undelivered>,
    /// The journal's last signature: up to which line, by which runner key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed: Option<SignedReport>,
    /// The UAT data the run ended with, as its journal holds it.
    #[serde(skip)]
    pub uat: Option<crate::uat::UatData>,
    /// Each time another process took the run over after its lease went silent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub takeovers: Vec<TakeoverReport>,
}

#[derive(Debug, Serialize)]
pub struct TakeoverReport {
    pub at_ms: u64,
    pub by: String,
    pub from: String,
    pub lease_silent_ms: u64,
    pub generation: u64,
    pub action: String,
}

impl TakeoverReport {
    /// One sentence, the same in every report.
    pub fn describe(&self) -> String {
        let when = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.at_ms),
        );
        let did = match self.action.as_str() {
            "rollback" => "rolled the stage in progress back",
            _ => "resumed the stage in progress",
        };
        format!(
            "{when}: taken over by {} from {} after its lease was silent {:.1} s (generation {}); it {did}",
            self.by,
            self.from,
            self.lease_silent_ms as f64 / 1000.0,
            self.generation
        )
    }
}

#[derive(Debug, Serialize)]
pub struct Undelivered {
    pub channel: String,
    pub what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    pub attempts: u32,
    pub error: String,
}

#[derive(Debug, Serialize)]
pub struct SignedReport {
    /// The last line the signature covers.
    pub line: u64,
    /// The runner key's fingerprint.
    pub key: String,
}

#[derive(Debug, Serialize)]
pub struct Capabilities {
    pub manifest_sha256: String,
    pub grants: Vec<crate::manifest::Grant>,
}

#[derive(Debug, Serialize)]
pub struct StageReport {
    pub name: String,
    pub title: String,
    pub verdict: Option<VerdictRecord>,
    pub checks: Vec<CheckRecord>,
    pub summary: String,
    pub plugin: Option<String>,
    pub outcome: String,
    pub dry_run: bool,
    pub elapsed_ms: u64,
    pub effects: Vec<String>,
    pub decisions: Vec<DecisionReport>,
    /// What shadow policies answered to the same inputs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shadows: Vec<ShadowAnswer>,
    /// What measured the stage's windows: `probe`, `prometheus`, or `probe+prometheus`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_by: Option<String>,
    #[serde(skip)]
    pub windows: Vec<WindowRecord>,
    /// The environment its windows were measured in (a canary's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Operators' requests to the canary (`canary pause` ...), as obeyed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<ControlReport>,
}

#[derive(Debug, Serialize)]
pub struct ControlReport {
    pub at_ms: u64,
    /// `pause`, `resume`, `abort`...
    pub command: String,
    pub operator: String,
    pub reason: String,
    pub outcome: String,
}

#[derive(Debug, Serialize)]
pub struct DecisionReport {
    pub at_ms: u64,
    pub percent: u8,
    pub action: String,
    pub summary: String,
    pub plugin: String,
    pub checks: Vec<CheckRecord>,
}

impl StageReport {
    /// A stage that has just started: nothing decided or measured yet.
    pub fn started(name: String, title: String) -> StageReport {
        StageReport {
            name,
            title,
            verdict: None,
            checks: Vec::new(),
            summary: String::new(),
            plugin: None,
            outcome: "running".into(),
            dry_run: false,
            elapsed_ms: 0,
            effects: Vec::new(),
            decisions: Vec::new(),
            shadows: Vec::new(),
            measured_by: None,
            windows: Vec::new(),
            environment: None,
            controls: Vec::new(),
        }
    }
}

/// Writes every report format into the run folder.
pub fn write_all(run_dir: &Path) -> anyhow::Result<()> {
    let report = RunReport::read(run_dir)?;
    // The journal is masked already; masking the rendered text again also covers anything a
    // renderer adds of its own.
    let dir = launch_targets::rooted::Rooted::open(run_dir, false)
        .with_context(|| format!("opening {}", run_dir.display()))?;
    for (name, text) in files_of(&report, uat_for(&report, run_dir).as_ref())? {
        dir.write_atomically(name, text.as_bytes())
            .with_context(|| format!("writing {}", dir.display(name).display()))?;
    }
    Ok(())
}

/// The report files of `report` (drawn with `uat`), each as written: `verify` rebuilds them
/// the same way, so a report that does not say what the journal says is found.
pub fn files_of(
    report: &RunReport,
    uat: Option<&crate::uat::UatData>,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let masked = |text: String| crate::redact::text(&text).into_owned();
    Ok(vec![
        ("report.json", masked(serde_json::to_string_pretty(report)?)),
        ("junit.xml", masked(junit::render(report))),
        ("report.md", masked(markdown::render(report))),
        ("report.html", masked(page::render(report, uat, None))),
    ])
}

/// The UAT data a report shows: the journal's own for a finished run (so the report is the
/// journal's alone), else the data as it is now.
pub fn uat_for(report: &RunReport, run_dir: &Path) -> Option<crate::uat::UatData> {
    match (&report.uat, report.finished_ms) {
        (Some(uat), _) => Some(uat.clone()),
        (None, Some(_)) => None,
        (None, None) => uat_of(run_dir),
    }
}

/// The UAT data a run used (its workspace's, or its own), when there is any.
pub fn uat_of(run_dir: &Path) -> Option<crate::uat::UatData> {
    let dir = match crate::context::RunOptions::saved(run_dir) {
        Ok(o) => crate::context::uat_dir(&o, run_dir),
        Err(_) => run_dir.join("uat"),
    };
    crate::uat::UatData::load(&dir).ok()
}

/// `observed unit (threshold)` for a check, as the reports show it.
pub fn numbers(c: &CheckRecord) -> String {
    let fmt = |v: f64| {
        if v.fract() == 0.0 && v.abs() < 1e12 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    match (c.observed, c.threshold) {
        (Some(o), Some(t)) => format!("{} {} (threshold {} {})", fmt(o), c.unit, fmt(t), c.unit),
        (Some(o), None) => format!("{} {}", fmt(o), c.unit),
        (None, Some(t)) => format!("threshold {} {}", fmt(t), c.unit),
        (None, None) => String::new(),
    }
}
