//! Running a launch: `start` plans the operator's command, checks everything and takes the
//! locks before the run folder exists; `resume` continues a run from its journal; `drive` runs
//! the stages in order and acts on each verdict.

mod conclude;
mod drive;
mod guard;
mod resume;
mod start;
mod takeover;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::journal::{Event, Record};
use crate::runbook::Runbook;
use launch_targets::s3::S3Location;

pub use crate::record::Outcome;
pub use resume::{How, Taken, resume, take_over};
pub use start::{Launch, start};

pub struct RunSummary {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub outcome: Outcome,
    pub summary: String,
}

/// Why a run was refused before its first effect: every problem found, each naming its file,
/// line or plugin. Nothing was created or changed.
#[derive(Debug, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct Refused {
    pub problems: Vec<String>,
}

pub(super) fn new_run_id() -> String {
    // Millisecond precision: releases are named after runs, and their order is what a full
    // rollback goes back along.
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    // Two runs started in the same second by different processes still differ.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{stamp}-{:04x}", (std::process::id() ^ nanos) as u16)
}

/// Where environment locks live: beside the runs that take them.
pub(super) fn lock_dir(runs_root: &Path) -> PathBuf {
    runs_root.join(".locks")
}

/// The environments a runbook's stages touch, with the S3 store each keeps its remote lock in.
pub(super) async fn lock_targets(runbook: &Runbook) -> Result<Vec<crate::lock::Target>, Refused> {
    let mut envs: Vec<String> = runbook
        .stages
        .iter()
        .filter_map(|s| s.environment().map(String::from))
        .collect();
    envs.sort();
    envs.dedup();
    let mut targets = Vec::new();
    for environment in envs {
        let store = runbook
            .environments
            .get(&environment)
            .and_then(|e| e.s3_store());
        let remote = match store {
            Some(url) => Some(S3Location::connect(url).await.map_err(|e| Refused {
                problems: vec![format!("environment `{environment}`: store: {e:#}")],
            })?),
            None => None,
        };
        targets.push(crate::lock::Target {
            environment,
            remote,
        });
    }
    Ok(targets)
}

/// Where a run's state is mirrored: the runbook's `state`, else the S3 store of the first
/// environment (by name) that has one.
pub fn state_url(runbook: &Runbook) -> Option<String> {
    runbook.launch.state.clone().or_else(|| {
        runbook
            .environments
            .values()
            .find_map(|e| e.s3_store().map(String::from))
    })
}

pub(crate) fn digest(s: &[u8]) -> String {
    hex::encode(Sha256::digest(s))
}

/// The outcome recorded in a finished run's journal.
pub fn finished_outcome(records: &[Record]) -> Option<Outcome> {
    records.iter().rev().find_map(|r| match &r.event {
        Event::RunFinished { outcome, .. } => Some(*outcome),
        _ => None,
    })
}
