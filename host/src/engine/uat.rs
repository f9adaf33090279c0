//! UAT data of a run: the checklist the plugin defines, results (automated probes and testers),
//! and sign-offs, kept as JSON files in the run folder's `uat/`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use super::journal::now_ms;
use super::playbook::{Ctx, StageResult};
use super::record::{self, CheckRecord, VerdictRecord};
use super::runbook::Stage;
use super::stages::{journal_logs, pass};
use crate::runtime::types::{Signoff, SignoffDecision, UatItem, UatOutcome, UatResult};

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct ItemFile {
    pub id: String,
    pub category: String,
    pub title: String,
    pub steps: Vec<String>,
    pub expected: String,
    pub blocking: bool,
    pub automated_probe: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct ResultFile {
    pub id: String,
    pub outcome: String,
    pub tester: String,
    pub notes: String,
    pub at_ms: u64,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct SignoffFile {
    pub role: String,
    pub name: String,
    pub decision: String,
    pub note: String,
    pub at_ms: u64,
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("{} is not valid UAT data", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

fn write<T: serde::Serialize>(path: &Path, v: &T) -> anyhow::Result<()> {
    crate::providers::store::write_atomically(path, &serde_json::to_vec_pretty(v)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// The UAT data of a workspace (or run) folder.
pub struct UatData {
    pub items: Vec<ItemFile>,
    pub results: Vec<ResultFile>,
    pub signoffs: Vec<SignoffFile>,
}

impl UatData {
    pub fn load(dir: &Path) -> anyhow::Result<UatData> {
        Ok(UatData {
            items: read(&dir.join("checklist.json"))?,
            results: read(&dir.join("results.json"))?,
            signoffs: read(&dir.join("signoffs.json"))?,
        })
    }

    /// The latest result of an item.
    pub fn result(&self, id: &str) -> Option<&ResultFile> {
        self.results.iter().rev().find(|r| r.id == id)
    }
}

/// Records a tester's result; it replaces an earlier result of the same item.
pub fn record_result(dir: &Path, result: ResultFile) -> anyhow::Result<()> {
    let mut results: Vec<ResultFile> = read(&dir.join("results.json"))?;
    results.retain(|r| r.id != result.id);
    results.push(result);
    write(&dir.join("results.json"), &results)
}

/// Records a sign-off; it replaces an earlier one by the same person in the same role.
pub fn record_signoff(dir: &Path, signoff: SignoffFile) -> anyhow::Result<()> {
    let mut signoffs: Vec<SignoffFile> = read(&dir.join("signoffs.json"))?;
    signoffs.retain(|s| !(s.role == signoff.role && s.name == signoff.name));
    signoffs.push(signoff);
    write(&dir.join("signoffs.json"), &signoffs)
}

/// Walks a tester through one item on the terminal: its steps and expected result, then
/// asks for the outcome and notes. `None` when input ends.
pub fn walk_through(item: &ItemFile, tester: &str) -> Option<ResultFile> {
    use std::io::{BufRead, Write};
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "\n{} [{}]{}: {}",
        item.id,
        item.category,
        if item.blocking { " (blocking)" } else { "" },
        item.title
    );
    for (i, step) in item.steps.iter().enumerate() {
        let _ = writeln!(err, "  {}. {step}", i + 1);
    }
    let _ = writeln!(err, "  expected: {}", item.expected);
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let outcome = loop {
        let _ = write!(err, "  result? [p]ass / [f]ail / [b]locked / [s]kip: ");
        let _ = err.flush();
        let line = lines.next()?.ok()?;
        match line.trim().to_ascii_lowercase().as_str() {
            "p" | "pass" => break "pass",
            "f" | "fail" => break "fail",
            "b" | "blocked" => break "blocked",
            "s" | "skip" | "skipped" => break "skipped",
            other => {
                let _ = writeln!(err, "  `{other}`: answer p, f, b or s");
            }
        }
    };
    let _ = write!(err, "  notes: ");
    let _ = err.flush();
    let notes = lines.next()?.ok()?.trim().to_string();
    Some(ResultFile {
        id: item.id.clone(),
        outcome: outcome.into(),
        tester: tester.into(),
        notes,
        at_ms: now_ms(),
    })
}

/// Records the plugin's checklist and checks the automatable items over HTTP.
pub async fn init(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let dir = ctx.uat_dir();
    let (plugin, sandbox, config) = (
        ctx.plugin(stage)?,
        ctx.sandbox(stage)?,
        Ctx::config_json(stage),
    );
    let called = plugin.uat_checklist(&sandbox, &config).await?;
    journal_logs(ctx, stage, &called.logs)?;
    let items: Vec<UatItem> = called.value;
    let files: Vec<ItemFile> = items
        .iter()
        .map(|i| ItemFile {
            id: i.id.clone(),
            category: i.category.clone(),
            title: i.title.clone(),
            steps: i.steps.clone(),
            expected: i.expected.clone(),
            blocking: i.blocking,
            automated_probe: i.automated_probe.clone(),
        })
        .collect();
    write(&dir.join("checklist.json"), &files)?;
    let api = ctx.env(stage)?.api_url.clone();
    let mut results: Vec<ResultFile> = read(&dir.join("results.json"))?;
    let mut checks = vec![CheckRecord {
        observed: Some(items.len() as f64),
        unit: "items".into(),
        ..pass("checklist", format!("{} item(s) recorded", items.len()))
    }];
    for item in items.iter().filter(|i| i.automated_probe.is_some()) {
        let url = format!("{api}{}", item.automated_probe.as_deref().unwrap_or(""));
        let outcome = match ctx
            .probe_client
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => "pass",
            _ => "fail",
        };
        results.retain(|r| r.id != item.id);
        results.push(ResultFile {
            id: item.id.clone(),
            outcome: outcome.into(),
            tester: "launch-host (automated)".into(),
            notes: format!("GET {url}"),
            at_ms: now_ms(),
        });
        checks.push(if outcome == "pass" {
            pass(&item.id, format!("GET {url} answered 2xx"))
        } else {
            super::stages::fail(&item.id, format!("GET {url} did not answer 2xx"))
        });
    }
    write(&dir.join("results.json"), &results)?;
    Ok(StageResult::from_checks(checks, "UAT initialized"))
}

fn outcome(s: &str) -> UatOutcome {
    match s {
        "pass" => UatOutcome::Pass,
        "fail" => UatOutcome::Fail,
        "blocked" => UatOutcome::Blocked,
        _ => UatOutcome::Skipped,
    }
}

fn decision(s: &str) -> SignoffDecision {
    match s {
        "approved" => SignoffDecision::Approved,
        "rejected" => SignoffDecision::Rejected,
        _ => SignoffDecision::Conditional,
    }
}

/// Judges the recorded results and sign-offs with the UAT plugin. In an automated run, items
/// no one tested are recorded as skipped, and the plugin's config decides what that means, and the
/// runbook's sign-offs are recorded.
pub async fn evaluate(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let dir = ctx.uat_dir();
    let mut signoffs: Vec<SignoffFile> = read(&dir.join("signoffs.json"))?;
    for s in &stage.signoffs {
        if !signoffs
            .iter()
            .any(|x| x.role == s.role && x.name == s.name)
        {
            signoffs.push(SignoffFile {
                role: s.role.clone(),
                name: s.name.clone(),
                decision: s.decision.clone(),
                note: s.note.clone(),
                at_ms: now_ms(),
            });
        }
    }
    write(&dir.join("signoffs.json"), &signoffs)?;
    // An interactive run walks the tester through every untested item (unless
    // SKIP_UAT_INTERACTIVE); what they answer is recorded like `launch-host uat test`.
    if ctx.options.interactive
        && !ctx.options.skip_uat_interactive
        && std::io::IsTerminal::is_terminal(&std::io::stdin())
    {
        let data = UatData::load(&dir)?;
        let tester = std::env::var("USER").unwrap_or_else(|_| "tester".into());
        for item in data.items.iter().filter(|i| data.result(&i.id).is_none()) {
            let Some(result) = walk_through(item, &tester) else {
                break;
            };
            record_result(&dir, result)?;
        }
    }
    let mut results: Vec<ResultFile> = read(&dir.join("results.json"))?;
    if ctx.options.auto {
        let items: Vec<ItemFile> = read(&dir.join("checklist.json"))?;
        let untested: Vec<&ItemFile> = items
            .iter()
            .filter(|i| !results.iter().any(|r| r.id == i.id))
            .collect();
        for item in untested {
            results.push(ResultFile {
                id: item.id.clone(),
                outcome: "skipped".into(),
                tester: "launch-host (automated run)".into(),
                notes: "not tested: the run is automated (SKIP_UAT_INTERACTIVE)".into(),
                at_ms: now_ms(),
            });
        }
    }
    let wit_results: Vec<UatResult> = results
        .iter()
        .map(|r| UatResult {
            id: r.id.clone(),
            outcome: outcome(&r.outcome),
            tester: r.tester.clone(),
            notes: r.notes.clone(),
            at_ms: r.at_ms,
        })
        .collect();
    let wit_signoffs: Vec<Signoff> = signoffs
        .iter()
        .map(|s| Signoff {
            role: s.role.clone(),
            name: s.name.clone(),
            decision: decision(&s.decision),
            note: s.note.clone(),
            at_ms: s.at_ms,
        })
        .collect();
    let (plugin, sandbox, config) = (
        ctx.plugin(stage)?,
        ctx.sandbox(stage)?,
        Ctx::config_json(stage),
    );
    let called = plugin
        .evaluate_uat(&sandbox, &wit_results, &wit_signoffs, &config)
        .await?;
    journal_logs(ctx, stage, &called.logs)?;
    let r = called.value;
    Ok(StageResult {
        verdict: VerdictRecord::from(&r.verdict),
        checks: record::checks(&r.checks),
        summary: r.summary,
        plugin: None,
        rolled_back: false,
    })
}
