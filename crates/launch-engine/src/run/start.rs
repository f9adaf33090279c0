//! Starting a run, and what a run's start and its resume (`resume`) share: the locks, the
//! environments, the journal's listeners, the context and the end. Everything is checked
//! before the run folder exists — the plan, the fault specs, the plugins against the runbook,
//! the locks and every environment — so a refused run changes nothing and leaves nothing
//! behind.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use super::{Refused, RunSummary, digest, lock_dir, lock_targets, new_run_id, state_url};
use crate::context::{Ctx, RunOptions, env_dir};
use crate::environment::{self, Env};
use crate::journal::{Event, Journal, Record};
use crate::lock::Locks;
use crate::mirror::Mirror;
use crate::notify::Notifier;
use crate::operator::{Notice, Operator};
use crate::plan::plan;
use crate::record::WindowRecord;
use crate::runbook::Runbook;
use launch_runtime::Catalog;
use launch_targets::simulator::Inject;

/// A run to start: the operator's command (in `options.operation`) on a parsed runbook.
pub struct Launch<'a> {
    /// The whole runbook; the command's plan picks from it.
    pub runbook: &'a Runbook,
    /// Its text as written (variables unexpanded), kept in the run folder for `resume`.
    pub text: &'a str,
    /// The plugins; `Catalog::empty` for a command that needs none.
    pub catalog: Catalog,
    pub options: RunOptions,
    pub operator: Arc<dyn Operator>,
    /// Where run folders are created.
    pub runs_root: &'a Path,
}

pub(super) fn refused(problems: Vec<String>) -> anyhow::Error {
    anyhow::Error::new(Refused { problems })
}

pub(super) fn injected(options: &RunOptions) -> Result<Inject, String> {
    let mut inject = Inject::default();
    for spec in &options.inject {
        inject.apply(spec).map_err(|e| format!("--inject {e}"))?;
    }
    Ok(inject)
}

/// Starts a new run.
pub async fn start(launch: Launch<'_>) -> anyhow::Result<RunSummary> {
    let Launch {
        runbook: whole,
        text,
        catalog,
        options,
        operator,
        runs_root,
    } = launch;
    let runbook =
        plan(&options.operation, whole, &catalog).map_err(|e| refused(vec![e.to_string()]))?;
    let inject = injected(&options).map_err(|e| refused(vec![e]))?;
    let mut problems = crate::consistency::validate(&runbook, &catalog);
    // A file that is not a usable plugin matters when a stage needs a plugin that is missing
    // (it may be that one); otherwise it is reported and the run goes on, so a broken file in
    // the plugins folder never blocks a rollback.
    if problems.is_empty() {
        for r in &catalog.rejected {
            operator.tell(Notice::Warning(&format!("{r} (not used by this run)")));
        }
    } else {
        problems.extend(catalog.rejected.iter().map(ToString::to_string));
        return Err(refused(problems));
    }
    let run_id = new_run_id();
    // The runner's key signs the run's history; without one there is no run to vouch for.
    let signer = crate::journal::signing::Signer::runner(&run_id)
        .map_err(|e| refused(vec![format!("{e:#}")]))?;
    // Locked before the run folder exists: a refused run leaves nothing behind.
    let locks = take_locks(&runbook, &options, runs_root, &run_id).await?;
    let run_dir = runs_root.join(&run_id);
    // Every environment is opened (stores and flag providers reached, embedded targets
    // started) before the first record: one that cannot be is a refusal, not a failed run.
    let envs = match open_environments(&runbook, &options, &run_dir, inject).await {
        Ok(envs) => envs,
        Err(e) => return Err(abandon(locks, &run_dir, e).await),
    };
    // A canary or monitor judged on Prometheus starts only once its queries answer. (A resume
    // does not wait: a canary mid-way that cannot read its source rolls back instead.)
    if let Err(e) = check_sources(&runbook, &catalog, &envs).await {
        return Err(abandon(locks, &run_dir, e).await);
    }
    let folder = match launch_targets::rooted::Rooted::open(&run_dir, true) {
        Ok(f) => f,
        Err(e) => {
            let e = anyhow::Error::new(e)
                .context(format!("creating the run folder {}", run_dir.display()));
            return Err(abandon(locks, &run_dir, e).await);
        }
    };
    // The run's one owner, before its first record: no other process may act for it.
    let ownership = match crate::owner::claim(
        &run_dir,
        &run_id,
        "run",
        state_url(whole).as_deref(),
        &whole.lease_terms(),
    )
    .await
    {
        Ok(o) => o,
        Err(e) => return Err(abandon(locks, &run_dir, e.into()).await),
    };
    folder
        .write_atomically("runbook.toml", text.as_bytes())
        .and_then(|_| {
            // An operator's words (a rollback's reason) may hold a secret: masked first.
            let mut saved = serde_json::to_value(&options)?;
            crate::redact::json(&mut saved);
            folder.write_atomically("options.json", &serde_json::to_vec_pretty(&saved)?)
        })
        .with_context(|| format!("writing the run folder {}", run_dir.display()))?;
    let mut journal = Journal::open(&run_dir.join("journal.jsonl"))?;
    journal.sign_with(signer);
    let notifier = listen(&runbook, &mut journal)?;
    let mirror = match mirror_to(whole, &run_id, &run_dir, &mut journal).await {
        Ok(m) => m,
        // The shared state is configuration too (a bucket that does not exist, no access).
        Err(e) => return Err(abandon(locks, &run_dir, e).await),
    };
    let plugins = catalog
        .plugins
        .iter()
        .map(|p| (p.info.name.clone(), p.digest.clone()))
        .collect();
    journal.append(Event::RunStarted {
        run_id: run_id.clone(),
        runbook: runbook.source.clone(),
        runbook_sha256: digest(text.as_bytes()),
        plugins,
        auto: options.auto,
        started_by: Some(crate::control::operator_name(options.operator.as_deref())),
        launch: runbook.launch.name.clone(),
        flag: runbook.launch.flag.clone(),
        environments: runbook.environments.keys().cloned().collect(),
    })?;
    journal.append(Event::Planned {
        stages: runbook
            .stages
            .iter()
            .map(|s| (s.name.get_ref().clone(), s.title().to_string()))
            .collect(),
    })?;
    // What this run's plugins may do, as its reports show it.
    let manifest = crate::manifest::Manifest::of_catalog(&runbook, &catalog);
    if !manifest.grants.is_empty() {
        journal.append(Event::Capabilities {
            manifest_sha256: manifest.digest(),
            grants: manifest.grants,
        })?;
    }
    let launch_manifest = crate::manifest::Manifest::of_catalog(whole, &catalog);
    let mut ctx = prepare(
        runbook,
        catalog,
        journal,
        run_id,
        run_dir,
        options,
        operator,
        envs,
        Vec::new(),
    );
    ctx.notifier = notifier;
    ctx.launch_manifest = launch_manifest;
    finish(ctx, locks, mirror, ownership).await
}

/// Gives a run up before its first record: its locks released and its folder removed, since
/// nothing has happened yet. The reason is a refusal, a configuration error.
async fn abandon(locks: Locks, run_dir: &Path, e: anyhow::Error) -> anyhow::Error {
    locks.release().await;
    let _ = std::fs::remove_dir_all(run_dir);
    refused(vec![format!("{e:#}")])
}

/// The run locks of the environments the runbook's stages touch, unless the command takes none.
pub(super) async fn take_locks(
    runbook: &Runbook,
    options: &RunOptions,
    runs_root: &Path,
    run_id: &str,
) -> anyhow::Result<Locks> {
    let targets = if options.lock {
        lock_targets(runbook).await?
    } else {
        Vec::new()
    };
    Ok(crate::lock::acquire(&lock_dir(runs_root), run_id, &targets).await?)
}

/// Starts mirroring the run to the runbook's state location, if it has one.
pub(super) async fn mirror_to(
    runbook: &Runbook,
    run_id: &str,
    run_dir: &Path,
    journal: &mut Journal,
) -> anyhow::Result<Option<Mirror>> {
    let Some(url) = state_url(runbook) else {
        return Ok(None);
    };
    let environments = runbook.environments.keys().cloned().collect();
    let mirror = Mirror::start(&url, run_id, run_dir, &runbook.launch.name, environments)
        .await
        .with_context(|| format!("copying the run's state to {url}"))?;
    journal.on_append(mirror.notifier());
    Ok(Some(mirror))
}

/// Drives the run, then releases its locks and completes the state copy, whatever happened;
/// the run is given up last, once its state is complete.
pub(super) async fn finish(
    mut ctx: Ctx,
    locks: Locks,
    mirror: Option<Mirror>,
    ownership: crate::owner::Ownership,
) -> anyhow::Result<RunSummary> {
    let operator = ctx.operator.clone();
    if let Some(lease) = ownership.lease() {
        ctx.hold(lease.clone());
    }
    ctx.mirror = mirror.as_ref().map(Mirror::shared);
    let result = super::drive::drive(&mut ctx).await;
    // The environments are free once the last verdict is in: nothing waits for a webhook
    // while holding them.
    locks.release().await;
    let result = match result {
        Ok(summary) => super::conclude::conclude(&mut ctx, &summary)
            .await
            .map(|()| summary),
        Err(e) => Err(e),
    };
    if let Some(mirror) = mirror {
        let url = mirror.url();
        if let Err(e) = mirror.finish().await {
            operator.tell(Notice::Warning(&format!(
                "the run's state was not fully copied to {url}: {e:#}"
            )));
        }
    }
    ownership.release().await;
    result
}

/// The run's notifier, shown every record the journal writes from now on.
pub(super) fn listen(runbook: &Runbook, journal: &mut Journal) -> anyhow::Result<Option<Notifier>> {
    let notifier = Notifier::new(runbook)?;
    if let Some(n) = &notifier {
        journal.tap(n.tap(runbook));
    }
    Ok(notifier)
}

/// The metrics sources of every environment a stage measures (a monitor, a canary, a
/// stability gate) answer.
async fn check_sources(
    runbook: &Runbook,
    catalog: &Catalog,
    envs: &BTreeMap<String, Env>,
) -> anyhow::Result<()> {
    use launch_runtime::Role;
    // Monitors, canaries and stability gates (SLO gates with a duration) measure.
    let measured = runbook.stages.iter().filter(|s| {
        let role = s
            .plugin_name()
            .and_then(|p| catalog.get(p))
            .map(|p| p.role());
        s.action() == Some(crate::runbook::Action::Monitor)
            || role == Some(Role::CanaryPolicy)
            || (role == Some(Role::SloGate) && s.duration.is_some())
    });
    let mut checked = std::collections::BTreeSet::new();
    for stage in measured {
        let Some(name) = stage.environment() else {
            continue;
        };
        if let Some(env) = envs.get(name).filter(|_| checked.insert(name)) {
            env.check_sources().await.with_context(|| {
                format!("environment `{name}` (stage `{}`)", stage.name.get_ref())
            })?;
        }
    }
    Ok(())
}

/// Opens every environment of the (planned) runbook.
pub(super) async fn open_environments(
    runbook: &Runbook,
    options: &RunOptions,
    run_dir: &Path,
    inject: Inject,
) -> anyhow::Result<BTreeMap<String, Env>> {
    let mut envs = BTreeMap::new();
    for (name, spec) in &runbook.environments {
        let env =
            environment::open(name, spec, runbook, &env_dir(options, run_dir), inject).await?;
        envs.insert(name.clone(), env);
    }
    Ok(envs)
}

/// The context of the run's stages, with what an earlier attempt already did.
#[allow(clippy::too_many_arguments)] // one call each from start and resume
pub(super) fn prepare(
    runbook: Runbook,
    catalog: Catalog,
    journal: Journal,
    run_id: String,
    run_dir: PathBuf,
    options: RunOptions,
    operator: Arc<dyn Operator>,
    envs: BTreeMap<String, Env>,
    history: Vec<Record>,
) -> Ctx {
    let mut done_effects = HashSet::new();
    let mut windows: BTreeMap<String, Vec<WindowRecord>> = BTreeMap::new();
    let mut finished = HashSet::new();
    let mut last_started: Option<String> = None;
    let mut window_seq = 0u64;
    for r in &history {
        match &r.event {
            Event::EffectDone { stage, key, .. } => {
                done_effects.insert(format!("{stage}/{key}"));
            }
            Event::Window {
                environment,
                window,
                ..
            } => {
                window_seq += 1;
                windows
                    .entry(environment.clone())
                    .or_default()
                    .push(window.clone());
            }
            Event::StageStarted { stage, .. } => last_started = Some(stage.clone()),
            Event::StageFinished { stage, .. } => {
                finished.insert(stage.clone());
            }
            _ => {}
        }
    }
    let resumed_stage = last_started.filter(|s| !finished.contains(s)).map(|s| {
        let recs = history
            .iter()
            .filter(|r| r.event.stage() == Some(s.as_str()))
            .cloned()
            .collect();
        (s, recs)
    });
    Ctx {
        runbook: Arc::new(runbook),
        catalog,
        journal,
        run_id,
        envs,
        options,
        operator,
        probe_client: probe_client(),
        windows,
        done_effects,
        finished,
        resumed_stage,
        flag_guard: None,
        window_seq,
        calls: crate::lab::record::CallStore::new(&run_dir),
        notifier: None,
        launch_manifest: Default::default(),
        shadows_told: Default::default(),
        lease: None,
        takeover: None,
        mirror: None,
        run_dir,
    }
}

/// The client probes and host checks share: many idle connections, no Nagle delay.
fn probe_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()
        // Only fails when the TLS backend cannot start, which the same defaults do not.
        .unwrap_or_default()
}
