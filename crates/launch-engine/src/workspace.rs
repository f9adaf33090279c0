//! The workspace operator commands share: where its embedded environments and UAT data live,
//! its runs, and what its journals say about a canary in progress.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use super::Runbook;
use super::environment::{self, Env};
use super::journal::{Event, Journal, now_ms};
use launch_targets::simulator::Inject;

/// Where a workspace's embedded environments keep their store and flags.
pub fn envs_dir(workspace: &Path) -> PathBuf {
    workspace.join("env")
}

/// Where a workspace's UAT checklist, results and sign-offs live.
pub fn uat_dir(workspace: &Path) -> PathBuf {
    workspace.join("uat")
}

/// Whether `dir` is a run folder: it has a journal, or says its journal was lost.
pub fn is_run(dir: &Path) -> bool {
    dir.join("journal.jsonl").is_file() || dir.join(crate::journal::HOST_FAILED).is_file()
}

/// Run ids in a local runs folder, oldest first.
pub fn runs(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| is_run(&e.path()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // By start time: ids sort by second only, and two runs can start in the same second.
    ids.sort_by_key(|id| {
        let started = std::fs::metadata(dir.join(id).join("runbook.toml"))
            .and_then(|m| m.modified())
            .ok();
        (started, id.clone())
    });
    ids
}

/// A run's local folder: `run` (an id in `runs_dir`, or a run folder's path), or the latest run
/// — fetched from the shared state first when `state` (an `s3://bucket/prefix`) is given.
pub async fn find_run(
    runs_dir: &Path,
    run: Option<&str>,
    state: Option<&str>,
) -> anyhow::Result<PathBuf> {
    let id = match (run, state) {
        (Some(id), _) => id.to_string(),
        (None, Some(url)) => crate::mirror::list(url)
            .await?
            .pop()
            .ok_or_else(|| anyhow::anyhow!("no runs in {url}"))?,
        (None, None) => runs(runs_dir).pop().ok_or_else(|| {
            anyhow::anyhow!(
                "no runs in {}; start one with `launch-host run`",
                runs_dir.display()
            )
        })?,
    };
    let as_path = PathBuf::from(&id);
    if state.is_none() && is_run(&as_path) {
        return Ok(as_path);
    }
    // From here the id names a folder inside the runs folder, and nothing else.
    let Some(id) = launch_targets::rooted::single_component(&id) else {
        anyhow::bail!(
            "`{id}` is not a run id (a run id is one folder name, e.g. 20261128T101500123Z-ab12)"
        );
    };
    let dir = runs_dir.join(id);
    if let Some(url) = state {
        let open = || -> std::io::Result<_> {
            launch_targets::rooted::Rooted::open(runs_dir, true)?.sub(id, true)
        };
        let dest = open().with_context(|| format!("opening {}", dir.display()))?;
        crate::mirror::fetch(url, id, &dest).await?;
    }
    anyhow::ensure!(
        is_run(&dir),
        "no run {id} in {} (pass --state s3://... to read a run started elsewhere)",
        runs_dir.display()
    );
    Ok(dir)
}

/// Where a canary of this environment stands, from the workspace's latest run journals.
#[derive(Debug, Clone, Serialize)]
pub struct CanaryProgress {
    pub run_id: String,
    pub stage: String,
    pub percent: u8,
    pub last_action: String,
    pub last_summary: String,
    pub last_decision_ms: u64,
    /// Whether the canary stage is still running.
    pub running: bool,
    /// Until the policy is next asked to promote, when the runbook says how long a step lasts.
    pub next_step_in_ms: Option<u64>,
    /// Who paused the canary (`canary pause`), while it is paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_by: Option<String>,
}

impl CanaryProgress {
    /// `running`, `PAUSED by NAME` or `finished`, as status lines show it.
    pub fn state(&self) -> String {
        match (&self.paused_by, self.running) {
            (Some(who), _) => format!("PAUSED by {who}"),
            (None, true) => "running".into(),
            (None, false) => "finished".into(),
        }
    }
}

/// Opens a runbook environment as the workspace's commands see it.
pub async fn open_env(runbook: &Runbook, name: &str, workspace: &Path) -> anyhow::Result<Env> {
    let spec = runbook.environments.get(name).ok_or_else(|| {
        let known: Vec<&str> = runbook.environments.keys().map(String::as_str).collect();
        anyhow::anyhow!(
            "{}: no environment `{name}` (defined: {})",
            runbook.source,
            known.join(", ")
        )
    })?;
    environment::open(name, spec, runbook, &envs_dir(workspace), Inject::default()).await
}

/// The latest canary decision about `env` in the workspace's runs.
pub fn canary_progress(runs_dir: &Path, runbook: &Runbook, env: &str) -> Option<CanaryProgress> {
    runs(runs_dir).into_iter().rev().find_map(|run_id| {
        let records = Journal::read(&runs_dir.join(&run_id).join("journal.jsonl")).ok()?;
        progress_in(&records, run_id, runbook, env)
    })
}

/// Where the canary about `env` stood at the end of one run's journal, if it had one.
pub fn progress_in(
    records: &[crate::journal::Record],
    run_id: String,
    runbook: &Runbook,
    env: &str,
) -> Option<CanaryProgress> {
    let stage_env = |stage: &str| {
        runbook
            .stages
            .iter()
            .find(|s| s.name.get_ref() == stage)
            .and_then(|s| s.environment.as_ref().map(|e| e.get_ref().clone()))
    };
    // The latest canary stage about `env`, followed to its last word: a decision, an
    // operator's request (who, why, what came of it), a promotion or a rollback — the flag's
    // percentage as the journal last set it, not as the last decision found it.
    struct Seen {
        i: usize,
        stage: String,
        percent: u8,
        action: String,
        summary: String,
        at: u64,
        decided_at: u64,
    }
    let mut seen: Option<Seen> = None;
    for (i, r) in records.iter().enumerate() {
        match &r.event {
            Event::Decision {
                stage,
                percent,
                action,
                summary,
                ..
            } if stage_env(stage).as_deref() == Some(env) => {
                seen = Some(Seen {
                    i,
                    stage: stage.clone(),
                    percent: *percent,
                    action: action.clone(),
                    summary: summary.clone(),
                    at: r.at,
                    decided_at: r.at,
                });
            }
            Event::EffectDone { stage, key, detail } => {
                let Some(s) = seen.as_mut().filter(|s| s.stage == *stage) else {
                    continue;
                };
                if let Some(p) = key.strip_prefix("promote:").and_then(|p| p.parse().ok()) {
                    s.percent = p;
                } else if key.starts_with("promote-full:") {
                    s.percent = 100;
                    (s.action, s.summary, s.at) = ("promote --full".into(), detail.clone(), r.at);
                } else if key.starts_with("rollback:") {
                    s.percent = 0;
                    (s.action, s.summary, s.at) = ("rollback".into(), detail.clone(), r.at);
                }
            }
            Event::Control {
                stage,
                command,
                operator,
                reason,
                outcome,
                ..
            } => {
                if let Some(s) = seen.as_mut().filter(|s| s.stage == *stage) {
                    s.action = format!("{} by {operator}", command.word());
                    s.summary = format!("{reason} — {outcome}");
                    s.at = r.at;
                }
            }
            _ => {}
        }
    }
    let Seen {
        i,
        stage,
        percent,
        action,
        summary,
        at,
        decided_at,
    } = seen?;
    let finished = records[i..].iter().any(|r| {
        matches!(&r.event, Event::StageFinished { stage: s, .. } if *s == stage)
            || matches!(r.event, Event::RunFinished { .. })
    });
    let step_ms = runbook
        .stages
        .iter()
        .find(|s| *s.name.get_ref() == stage)
        .and_then(|s| s.config.as_ref())
        .and_then(|c| c.get_ref().get("step-duration-ms"))
        .and_then(serde_json::Value::as_u64);
    let next_step_in_ms = step_ms
        .filter(|_| !finished)
        .map(|d| (decided_at + d).saturating_sub(now_ms()));
    let paused_by = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Control {
                stage: s,
                command,
                operator,
                ..
            } if *s == stage => Some((*command, operator.clone())),
            _ => None,
        })
        .fold(None, |paused, (command, operator)| match command {
            crate::control::Command::Pause => Some(operator),
            crate::control::Command::Resume => None,
            _ => paused,
        })
        .filter(|_| !finished);
    Some(CanaryProgress {
        paused_by,
        run_id,
        stage,
        percent,
        last_action: action,
        last_summary: summary,
        last_decision_ms: at,
        running: !finished,
        next_step_in_ms,
    })
}
