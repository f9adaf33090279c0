//! Canary control from another terminal (`canary pause|resume|abort|promote --full`), as Argo
//! Rollouts users know it: the command writes a request into the running canary's run folder —
//! or, from another machine, beside the run in the S3 state (`--state`); the canary reads both
//! at every check interval, journals the request with the operator and obeys. The latest
//! request wins, so a pause then a resume sent within one interval is a resume.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::journal::now_ms;
use crate::runbook::Runbook;
use crate::workspace;
use launch_targets::s3::S3Location;

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
    /// Increases with every request written to one place (run folder or S3 state).
    pub seq: u64,
    pub command: Command,
    pub operator: String,
    pub reason: String,
    /// When it was asked: with `seq`, what orders requests from both places.
    pub at_ms: u64,
}

impl Request {
    /// The request numbered `seq` in its place, asked now.
    fn new(seq: u64, command: Command, operator: &str, reason: &str) -> Request {
        Request {
            seq,
            command,
            operator: operator.into(),
            reason: crate::redact::text(reason).into_owned(),
            at_ms: now_ms(),
        }
    }

    /// A request is obeyed once: when it is newer than the last one obeyed.
    pub fn order(&self) -> (u64, u64) {
        (self.at_ms, self.seq)
    }
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
    write(&runs_dir.join(&progress.run_id), command, operator, reason)?;
    Ok(progress.run_id)
}

/// Sends `command` to the canary of the run in `run_dir` (whose runbook is `runbook`); returns
/// the canary's environment. Refused when that run has no canary running.
pub fn send_to_run(
    run_dir: &Path,
    runbook: &Runbook,
    command: Command,
    operator: &str,
    reason: &str,
) -> anyhow::Result<String> {
    let records = crate::journal::Journal::read(&run_dir.join("journal.jsonl"))?;
    let id = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let env = runbook
        .environments
        .keys()
        .find(|env| {
            workspace::progress_in(&records, id.clone(), runbook, env).is_some_and(|p| p.running)
        })
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("run {id} has no canary running"))?;
    write(run_dir, command, operator, reason)?;
    Ok(env)
}

/// Writes the next request into a run folder.
fn write(run_dir: &Path, command: Command, operator: &str, reason: &str) -> anyhow::Result<()> {
    let folder = launch_targets::rooted::Rooted::open(run_dir, false)?;
    let seq = read(run_dir).map_or(1, |r| r.seq.saturating_add(1));
    let request = Request::new(seq, command, operator, reason);
    folder.write_atomically(FILE, &serde_json::to_vec_pretty(&request)?)?;
    Ok(())
}

/// Sends `command` to the canary running on `env` in the runs mirrored at `url` (an
/// `s3://bucket/prefix` state), started on any machine; returns its run id.
pub async fn send_shared(
    url: &str,
    runbook: &Runbook,
    env: &str,
    command: Command,
    operator: &str,
    reason: &str,
) -> anyhow::Result<String> {
    let loc = S3Location::connect(url).await?;
    // The newest run with a canary on `env` says whether one is running.
    let mut running = None;
    for id in crate::mirror::list(url)
        .await?
        .into_iter()
        .rev()
        .take(RUNS_SEARCHED)
    {
        let Some(shared) = crate::mirror::segments::read(&loc, &id).await? else {
            continue;
        };
        let Ok(records) = crate::journal::Journal::parse(&shared.bytes) else {
            continue;
        };
        if let Some(progress) = workspace::progress_in(&records, id, runbook, env) {
            running = Some(progress).filter(|p| p.running);
            break;
        }
    }
    let Some(progress) = running else {
        anyhow::bail!("no canary is running on `{env}` in the runs at {url}");
    };
    let key = remote_key(&loc, &progress.run_id);
    let seq = match loc.get(&key).await? {
        Some((bytes, _)) => {
            serde_json::from_slice::<Request>(&bytes).map_or(1, |r| r.seq.saturating_add(1))
        }
        None => 1,
    };
    let request = Request::new(seq, command, operator, reason);
    loc.put(
        &key,
        serde_json::to_vec_pretty(&request)?,
        "application/json",
        None,
    )
    .await?;
    Ok(progress.run_id)
}

/// How many of the newest shared runs `send_shared` reads looking for the canary.
const RUNS_SEARCHED: usize = 20;

fn remote_key(loc: &S3Location, run_id: &str) -> String {
    format!("{}{FILE}", crate::mirror::run_prefix(loc, run_id))
}

fn read(run_dir: &Path) -> Option<Request> {
    let bytes = crate::files::read(
        &run_dir.join(FILE),
        crate::files::STATE,
        "a control request",
    )
    .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Where a running canary finds its operators' requests: its run folder, and the S3 state
/// when the run is mirrored there.
pub struct Inbox {
    run_dir: PathBuf,
    shared: Option<(S3Location, String)>,
    /// The order of the last request obeyed.
    seen: (u64, u64),
}

impl Inbox {
    /// Requests already obeyed (before a resume) are not obeyed again.
    pub async fn open(
        run_dir: &Path,
        run_id: &str,
        state: Option<&str>,
        already: (u64, u64),
    ) -> Inbox {
        let shared = match state {
            Some(url) => S3Location::connect(url).await.ok().map(|loc| {
                let key = remote_key(&loc, run_id);
                (loc, key)
            }),
            None => None,
        };
        Inbox {
            run_dir: run_dir.to_path_buf(),
            shared,
            seen: already,
        }
    }

    /// The newest request not obeyed yet, from either place. An unreadable S3 state is
    /// skipped: it must not stop the canary, and the next interval reads it again.
    pub async fn poll(&mut self) -> Option<Request> {
        let local = read(&self.run_dir);
        let shared = match &self.shared {
            Some((loc, key)) => loc
                .get(key)
                .await
                .ok()
                .flatten()
                .and_then(|(bytes, _)| serde_json::from_slice::<Request>(&bytes).ok()),
            None => None,
        };
        let newest = [local, shared]
            .into_iter()
            .flatten()
            .max_by_key(Request::order)?;
        (newest.order() > self.seen).then(|| {
            self.seen = newest.order();
            newest
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
