//! Resuming a run: its owner claimed first (a live one is refused), its history checked
//! (chain and signatures), its plugins the ones it started with, then the same stages planned
//! again from the run folder's runbook copy and operation, without repeating a done effect.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::start::{
    finish, injected, listen, mirror_to, open_environments, prepare, refused, take_locks,
};
use super::{RunSummary, state_url};
use crate::context::RunOptions;
use crate::journal::{Event, Journal};
use crate::operator::{Notice, Operator};
use crate::plan::plan;
use crate::runbook::Runbook;
use launch_runtime::{Catalog, Runtime};

/// Continues an interrupted run from its journal, refusing if a plugin changed since. The
/// runbook copy and the operation in the run folder plan the same stages again.
pub async fn resume(
    runtime: &Runtime,
    run_dir: &Path,
    plugins_dir: Option<PathBuf>,
    auto: bool,
    operator: Arc<dyn Operator>,
) -> anyhow::Result<RunSummary> {
    let how = How {
        plugins_dir,
        auto,
        workspace: None,
        taken: None,
    };
    continue_run(runtime, run_dir, how, operator).await
}

/// A run another process took over (a standby agent) with the lease it took.
#[derive(Clone)]
pub struct Taken {
    pub lease: crate::lease::Lease,
    /// Whose lease went silent.
    pub from: String,
    /// How long it had been silent.
    pub silent: std::time::Duration,
}

/// How a run is continued.
pub struct How {
    pub plugins_dir: Option<PathBuf>,
    pub auto: bool,
    /// This machine's workspace, for a run started on another machine.
    pub workspace: Option<PathBuf>,
    pub taken: Option<Taken>,
}

/// Takes over a run whose lease this process took: journaled (`taken-over`), and the stage in
/// progress resumed or rolled back as its `takeover` says.
pub async fn take_over(
    runtime: &Runtime,
    run_dir: &Path,
    how: How,
    operator: Arc<dyn Operator>,
) -> anyhow::Result<RunSummary> {
    continue_run(runtime, run_dir, how, operator).await
}

async fn continue_run(
    runtime: &Runtime,
    run_dir: &Path,
    how: How,
    operator: Arc<dyn Operator>,
) -> anyhow::Result<RunSummary> {
    let How {
        plugins_dir,
        auto,
        workspace,
        taken,
    } = how;
    let journal_path = run_dir.join("journal.jsonl");
    if let Some(failed) = crate::journal::HostFailed::of_run(run_dir) {
        anyhow::bail!(
            "{} is not resumed: {} (see {}); start a new run",
            run_dir.display(),
            failed.reason,
            crate::journal::HOST_FAILED
        );
    }
    anyhow::ensure!(
        journal_path.is_file(),
        "{} is not a run folder (no journal.jsonl)",
        run_dir.display()
    );
    // Before the journal is read for good: no other process may act for the run while this
    // one does, and the journal must not move under it. A live owner is refused (exit 5).
    let (claimed_id, mirrored, terms) = identity(run_dir)?;
    let (ownership, taken) = match taken {
        Some(t) => (
            crate::owner::taken(run_dir, &claimed_id, t.lease.clone())?,
            Some(t),
        ),
        None => (
            crate::owner::claim(run_dir, &claimed_id, "resume", mirrored.as_deref(), &terms)
                .await?,
            None,
        ),
    };
    let records = Journal::read(&journal_path)?;
    // A chained journal whose chain is broken was edited: its history cannot be continued.
    if records.iter().any(|r| r.prev.is_some()) {
        let bytes = crate::files::read(&journal_path, crate::journal::MAX_BYTES, "the journal")?;
        if let Err((line, why)) = crate::verify::intact(&bytes) {
            anyhow::bail!(
                "{}:{line}: {why}; the run's history was changed, so it is not resumed (`launch-host verify` checks it)",
                journal_path.display()
            );
        }
    }
    let Some(Event::RunStarted {
        run_id,
        runbook: source,
        plugins,
        ..
    }) = records.first().map(|r| &r.event)
    else {
        anyhow::bail!(
            "{}: the journal does not start with run-started",
            journal_path.display()
        );
    };
    // Finished whatever follows its end (notifications, the runner's last signature).
    if let Some(outcome) = super::finished_outcome(&records) {
        anyhow::bail!(
            "run {run_id} already finished ({}); nothing to resume",
            outcome.word()
        );
    }
    let text = crate::files::read_to_string(
        &run_dir.join("runbook.toml"),
        crate::files::RUNBOOK,
        "the run's runbook copy",
    )?;
    let mut options = RunOptions::saved(run_dir)?;
    if let Some(dir) = plugins_dir {
        options.plugins_dir = dir;
    }
    // `resume --yes`: proceed without asking, whatever the run started with.
    options.auto |= auto;
    if let Some(w) = workspace {
        options.workspace = Some(w);
    }
    // The recorded source names the command (`launch.toml → `deploy staging``); the file is
    // what it was derived from.
    let file = source.split(" → ").next().unwrap_or(source);
    let whole = Runbook::parse(&text, file)?;
    let catalog =
        if !plugins.is_empty() || (options.operation.needs_plugins() && whole.names_plugins()) {
            crate::registry::catalog(runtime, &options.plugins_dir, &whole).await?
        } else {
            Catalog::empty(&options.plugins_dir)
        };
    for (name, digest) in plugins {
        match catalog.get(name) {
            Some(p) if &p.digest == digest => {}
            Some(p) => anyhow::bail!(
                "plugin `{name}` changed since run {run_id} started (sha256 {} now, {} then); resume with the same plugins, or start a new run",
                &p.digest[..12],
                &digest[..12]
            ),
            // A file named after it that no longer loads (truncated, overwritten) changed.
            None => match catalog
                .rejected
                .iter()
                .find(|r| r.path().file_stem().is_some_and(|s| s == name.as_str()))
            {
                Some(broken) => anyhow::bail!(
                    "plugin `{name}` changed since run {run_id} started: {broken}; restore the plugin the run started with (sha256 {}), or start a new run",
                    &digest[..12]
                ),
                None => anyhow::bail!(
                    "plugin `{name}` used by run {run_id} is no longer in {}",
                    options.plugins_dir.display()
                ),
            },
        }
    }
    let runbook = plan(&options.operation, &whole, &catalog)?;
    let unpinned = crate::pins::check(&runbook, &catalog);
    if !unpinned.is_empty() {
        return Err(refused(unpinned));
    }
    let inject = injected(&options).map_err(|e| anyhow::anyhow!(e))?;
    let runs_root = run_dir.parent().unwrap_or(Path::new("."));
    let locks = take_locks(&runbook, &options, runs_root, run_id).await?;
    let envs = match open_environments(&runbook, &options, run_dir, inject).await {
        Ok(envs) => envs,
        Err(e) => {
            locks.release().await;
            return Err(e);
        }
    };
    let (mut journal, torn) = Journal::open_repaired(&journal_path)?;
    journal.sign_with(crate::journal::signing::Signer::runner(run_id)?);
    let notifier = listen(&runbook, &mut journal)?;
    if torn > 0 {
        operator.tell(Notice::Warning(&format!(
            "{}: the last record was torn (a crash mid-write); its {torn} byte(s) were moved to {} and the run goes on from the records before it",
            journal_path.display(),
            crate::journal::torn_path(&journal_path).display()
        )));
    }
    let mirror = match mirror_to(&whole, run_id, run_dir, &mut journal).await {
        Ok(m) => m,
        Err(e) => {
            locks.release().await;
            return Err(e);
        }
    };
    journal.append(Event::Resumed {
        pid: std::process::id(),
        torn_bytes_dropped: torn,
    })?;
    let takeover = match &taken {
        Some(t) => {
            let action = super::takeover::action(&runbook, &catalog, &records);
            journal.append(Event::TakenOver {
                by: crate::owner::Owner::me(run_id, "agent").who(),
                from: t.from.clone(),
                lease_silent_ms: u64::try_from(t.silent.as_millis()).unwrap_or(u64::MAX),
                generation: t.lease.generation(),
                action: action.word().into(),
            })?;
            Some(action)
        }
        None => None,
    };
    // The history this resume goes on from (its chain checked above) is vouched for here.
    journal.checkpoint()?;
    let mut ctx = prepare(
        runbook,
        catalog,
        journal,
        run_id.clone(),
        run_dir.to_path_buf(),
        options,
        operator,
        envs,
        records,
    );
    ctx.notifier = notifier;
    ctx.takeover = takeover;
    ctx.launch_manifest = crate::manifest::Manifest::of_catalog(&whole, &ctx.catalog);
    finish(ctx, locks, mirror, ownership).await
}

/// A run folder's run id, where it is mirrored and its lease's TTL, from its first record and
/// its runbook copy.
fn identity(run_dir: &Path) -> anyhow::Result<(String, Option<String>, crate::lease::Terms)> {
    let journal_path = run_dir.join("journal.jsonl");
    let records = Journal::read(&journal_path)?;
    let Some(Event::RunStarted {
        run_id, runbook, ..
    }) = records.first().map(|r| &r.event)
    else {
        anyhow::bail!(
            "{}: the journal does not start with run-started",
            journal_path.display()
        );
    };
    let file = runbook.split(" → ").next().unwrap_or(runbook);
    let runbook = crate::files::read_to_string(
        &run_dir.join("runbook.toml"),
        crate::files::RUNBOOK,
        "the run's runbook copy",
    )
    .ok()
    .and_then(|text| Runbook::parse(&text, file).ok());
    let terms = runbook.as_ref().map_or(
        crate::lease::Terms {
            ttl: crate::lease::DEFAULT_TTL,
            stays: None,
        },
        Runbook::lease_terms,
    );
    Ok((run_id.clone(), runbook.as_ref().and_then(state_url), terms))
}
