//! Canary control from another terminal (`canary pause|resume|abort|promote --full`), as Argo
//! Rollouts users know it: the command writes a request into the running canary's run folder;
//! the canary reads it at every check interval, journals it with the operator and obeys.
//! The latest request wins, so a pause then a resume sent within one interval is a resume.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::journal::now_ms;
use crate::runbook::Runbook;
use crate::workspace;

/// What an operator asks of a running canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    /// Hold at the current step: decisions are still asked and recorded, none promotes.
    Pause,
    Resume,
    /// Roll back now.
    Abort,
    /// Move the flag to 100 % now and end the canary.
    PromoteFull,
}

impl Command {
    pub fn word(self) -> &'static str {
        match self {
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Abort => "abort",
            Command::PromoteFull => "promote-full",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Increases with every request to the run; a canary obeys each number once.
    pub seq: u64,
    pub command: Command,
    pub operator: String,
    pub reason: String,
    pub at_ms: u64,
}

const FILE: &str = "control.json";

/// Sends `command` to the canary running on `env` in the workspace's runs; returns its run id.
/// Refused when no canary runs there.
pub fn send(
    runs_dir: &Path,
    runbook: &Runbook,
    env: &str,
    command: Command,
    operator: &str,
    reason: &str,
) -> anyhow::Result<String> {
    let progress = workspace::canary_progress(runs_dir, runbook, env)
        .filter(|p| p.running)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no canary is running on `{env}` in {} (start one with `launch-host canary start --env {env}`)",
                runs_dir.display()
            )
        })?;
    let folder = launch_targets::rooted::Rooted::open(&runs_dir.join(&progress.run_id), false)?;
    let seq = read(&runs_dir.join(&progress.run_id)).map_or(1, |r| r.seq.saturating_add(1));
    let request = Request {
        seq,
        command,
        operator: operator.into(),
        reason: crate::redact::text(reason).into_owned(),
        at_ms: now_ms(),
    };
    folder.write_atomically(FILE, &serde_json::to_vec_pretty(&request)?)?;
    Ok(progress.run_id)
}

fn read(run_dir: &Path) -> Option<Request> {
    let bytes = std::fs::read(run_dir.join(FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Where a running canary finds its operators' requests.
pub struct Inbox {
    run_dir: PathBuf,
    seen: u64,
}

impl Inbox {
    /// Requests already in the folder (from before a resume) are not obeyed again.
    pub fn open(run_dir: &Path, already: u64) -> Inbox {
        Inbox {
            run_dir: run_dir.to_path_buf(),
            seen: already,
        }
    }

    /// The newest request not obeyed yet.
    pub fn poll(&mut self) -> Option<Request> {
        let r = read(&self.run_dir)?;
        (r.seq > self.seen).then(|| {
            self.seen = r.seq;
            r
        })
    }
}

/// Who is running a command, for the journal: `--operator`, else the login name.
pub fn operator_name(given: Option<&str>) -> String {
    given
        .map(String::from)
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "unknown operator".into())
}
