//! The stage state machine. Stages run in runbook order; each one's verdict decides what the
//! host does next (continue, abort, roll back), per the stage's `on-fail`. No-data and
//! inconclusive never count as a pass. Every effect is journaled before and after, so `resume`
//! continues an interrupted run without repeating a completed effect.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::environment::{self, Env};
use super::journal::{Event, Journal, Record};
use super::mirror::Mirror;
use super::record::{CheckRecord, VerdictRecord, WindowRecord};
use super::runbook::{OnFail, Runbook, Stage};
use super::stages;
use crate::capabilities::{AllowList, Grants};
use crate::providers::s3::S3Location;
use crate::runtime::{Catalog, Limits, Plugin, Runtime, Sandbox};
use crate::simulator::Inject;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Passed,
    GateFailed,
    RolledBack,
    /// The operator stopped the run at a prompt.
    Aborted,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::GateFailed => "gate-failed",
            Outcome::RolledBack => "rolled-back",
            Outcome::Aborted => "aborted",
        }
    }

    fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Passed,
            Outcome::GateFailed,
            Outcome::RolledBack,
            Outcome::Aborted,
        ]
        .into_iter()
        .find(|o| o.word() == s)
    }
}

/// What `run` was asked to do; saved in the run folder so `resume` does the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOptions {
    pub plugins_dir: PathBuf,
    /// Proceed without asking; without it, an inconclusive stage pauses for a human on a TTY.
    pub auto: bool,
    /// Faults injected into the embedded targets' V2 behaviour.
    pub inject: Vec<String>,
    /// Where embedded environments and UAT data persist between commands (`<workspace>/env/`,
    /// `<workspace>/uat/`); a playbook run without one keeps them in its run folder.
    #[serde(default)]
    pub workspace: Option<PathBuf>,
    /// Take the environments' run locks. Emergency commands (rollback) do not: nothing may
    /// stand between an operator and turning the feature off.
    #[serde(default = "yes")]
    pub lock: bool,
    /// Ask proceed / skip / abort before each stage (on a terminal).
    #[serde(default)]
    pub interactive: bool,
    /// In an interactive run, do not walk testers through untested UAT items
    /// (SKIP_UAT_INTERACTIVE): they stay untested.
    #[serde(default)]
    pub skip_uat_interactive: bool,
}

fn yes() -> bool {
    true
}

impl RunOptions {
    pub fn new(plugins_dir: PathBuf, auto: bool) -> RunOptions {
        RunOptions {
            plugins_dir,
            auto,
            inject: Vec::new(),
            workspace: None,
            lock: true,
            interactive: false,
            skip_uat_interactive: false,
        }
    }
}

pub struct RunSummary {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub outcome: Outcome,
    pub summary: String,
}

/// Everything a stage needs while it runs.
pub struct Ctx {
    pub runbook: Arc<Runbook>,
    pub catalog: Catalog,
    pub journal: Journal,
    pub run_id: String,
    pub run_dir: PathBuf,
    pub envs: BTreeMap<String, Env>,
    pub options: RunOptions,
    pub probe_client: reqwest::Client,
    /// Metric windows measured so far, per environment (for SLO gates).
    pub windows: BTreeMap<String, Vec<WindowRecord>>,
    /// Effects that completed in an earlier attempt of this run.
    pub done_effects: HashSet<String>,
    /// Stages that finished in an earlier attempt of this run.
    pub finished: HashSet<String>,
    /// Stage being resumed, with the records it had written.
    pub resumed_stage: Option<(String, Vec<Record>)>,
}

/// The verdict a stage reached, with what backs it.
pub struct StageResult {
    pub verdict: VerdictRecord,
    pub checks: Vec<CheckRecord>,
    pub summary: String,
    pub plugin: Option<String>,
    /// Set by stages that already rolled back themselves (a canary whose policy said so).
    pub rolled_back: bool,
}

impl StageResult {
    pub fn from_checks(checks: Vec<CheckRecord>, summary: impl Into<String>) -> StageResult {
        let verdict = overall(&checks);
        StageResult {
            verdict,
            checks,
            summary: summary.into(),
            plugin: None,
            rolled_back: false,
        }
    }
}

/// Same rule as the plugin SDK: any failure fails; then inconclusive; then no-data; no checks
/// is no-data.
pub fn overall(checks: &[CheckRecord]) -> VerdictRecord {
    let pick = |want: fn(&VerdictRecord) -> bool| {
        checks
            .iter()
            .find(|c| want(&c.verdict))
            .map(|c| format!("{}: {}", c.name, c.verdict.reason()))
    };
    if let Some(r) = pick(|v| matches!(v, VerdictRecord::Fail(_))) {
        return VerdictRecord::Fail(r);
    }
    if let Some(r) = pick(|v| matches!(v, VerdictRecord::Inconclusive(_))) {
        return VerdictRecord::Inconclusive(r);
    }
    if let Some(r) = pick(|v| matches!(v, VerdictRecord::NoData(_))) {
        return VerdictRecord::NoData(r);
    }
    if checks.is_empty() {
        VerdictRecord::NoData("no checks ran".into())
    } else {
        VerdictRecord::Pass
    }
}

impl Ctx {
    /// Where UAT checklist, results and sign-offs live.
    pub fn uat_dir(&self) -> PathBuf {
        uat_dir(&self.options, &self.run_dir)
    }

    pub fn env(&self, stage: &Stage) -> anyhow::Result<&Env> {
        let name = stage
            .environment
            .as_ref()
            .map(|e| e.get_ref().as_str())
            .context("this stage needs an environment")?;
        self.envs
            .get(name)
            .with_context(|| format!("unknown environment `{name}`"))
    }

    pub fn plugin(&self, stage: &Stage) -> anyhow::Result<&Plugin> {
        let name = stage.plugin.as_ref().context("this stage needs a plugin")?;
        self.catalog.get(name.get_ref()).with_context(|| {
            format!(
                "plugin `{}` is not in {}",
                name.get_ref(),
                self.catalog.dir.display()
            )
        })
    }

    /// The sandbox of a plugin stage: runbook defaults, the stage's overrides, and network
    /// access to the stage's environment plus its `allow-hosts`.
    pub fn sandbox(&self, stage: &Stage) -> anyhow::Result<Sandbox> {
        let mut hosts = stage.allow_hosts.clone();
        if let Ok(env) = self.env(stage) {
            hosts.extend(env.hosts());
        }
        let allow = AllowList::parse(&hosts)
            .map_err(|e| anyhow::anyhow!("stage `{}`: allow-hosts: {e}", stage.name.get_ref()))?;
        Ok(Sandbox {
            limits: Limits {
                deadline: stage.deadline.unwrap_or(self.runbook.defaults.deadline),
                memory_bytes: stage.memory.unwrap_or(self.runbook.defaults.memory),
            },
            grants: Arc::new(Grants::default().with_hosts(allow)),
        })
    }

    pub fn config_json(stage: &Stage) -> String {
        stage
            .config
            .as_ref()
            .map(|c| serde_json::to_string(c.get_ref()).unwrap_or_default())
            .unwrap_or_else(|| "{}".into())
    }

    /// Runs `effect` unless an earlier attempt of this run completed it; journals it around.
    pub async fn effect<F, Fut>(
        &mut self,
        stage: &str,
        key: &str,
        detail: &str,
        effect: F,
    ) -> anyhow::Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        let full = format!("{stage}/{key}");
        if self.done_effects.contains(&full) {
            return Ok(());
        }
        self.journal.append(Event::EffectStarted {
            stage: stage.into(),
            key: key.into(),
            detail: detail.into(),
        })?;
        effect()
            .await
            .with_context(|| format!("stage `{stage}`: {detail}"))?;
        self.journal.append(Event::EffectDone {
            stage: stage.into(),
            key: key.into(),
            detail: detail.into(),
        })?;
        self.done_effects.insert(full);
        Ok(())
    }

    pub fn record_window(
        &mut self,
        stage: &str,
        env: &str,
        window: WindowRecord,
    ) -> anyhow::Result<()> {
        self.journal.append(Event::Window {
            stage: stage.into(),
            environment: env.into(),
            window: window.clone(),
        })?;
        self.windows
            .entry(env.to_string())
            .or_default()
            .push(window);
        Ok(())
    }
}

fn new_run_id() -> String {
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
fn lock_dir(runs_root: &Path) -> PathBuf {
    runs_root.join(".locks")
}

/// The environments a runbook's stages touch, with the S3 store each keeps its remote lock in.
async fn lock_targets(runbook: &Runbook) -> Result<Vec<super::lock::Target>, Refused> {
    let mut envs: Vec<String> = runbook
        .stages
        .iter()
        .filter_map(|s| s.environment.as_ref().map(|e| e.get_ref().clone()))
        .collect();
    envs.sort();
    envs.dedup();
    let mut targets = Vec::new();
    for environment in envs {
        let store = runbook
            .environments
            .get(&environment)
            .and_then(|e| e.store.as_deref())
            .filter(|s| s.starts_with("s3://"));
        let remote = match store {
            Some(url) => Some(S3Location::connect(url).await.map_err(|e| Refused {
                problems: vec![format!("environment `{environment}`: store: {e:#}")],
            })?),
            None => None,
        };
        targets.push(super::lock::Target {
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
            .filter_map(|e| e.store.clone())
            .find(|s| s.starts_with("s3://"))
    })
}

fn digest(s: &[u8]) -> String {
    hex::encode(Sha256::digest(s))
}

/// Checks the runbook against the plugins it names: each exists and plays the role the stage
/// needs, and each stage's config is accepted. Returns every problem, each with its line.
pub fn validate(runbook: &Runbook, catalog: &Catalog) -> Vec<String> {
    let mut problems = Vec::new();
    for stage in &runbook.stages {
        let Some(name) = &stage.plugin else { continue };
        let Some(plugin) = catalog.get(name.get_ref()) else {
            let known: Vec<&str> = catalog
                .plugins
                .iter()
                .map(|p| p.info.name.as_str())
                .collect();
            problems.push(
                runbook
                    .error_at(
                        name.span().start,
                        format!(
                            "stage `{}`: no plugin named `{}` in {} (found: {})",
                            stage.name.get_ref(),
                            name.get_ref(),
                            catalog.dir.display(),
                            known.join(", ")
                        ),
                    )
                    .to_string(),
            );
            continue;
        };
        if let Some(schema) = &plugin.info.config_schema {
            let config: serde_json::Value =
                serde_json::from_str(&Ctx::config_json(stage)).unwrap_or_default();
            if let Err(e) = stages::check_config(schema, &config) {
                let at = stage
                    .config
                    .as_ref()
                    .map_or(name.span().start, |c| c.span().start);
                problems.push(
                    runbook
                        .error_at(
                            at,
                            format!(
                                "stage `{}`: config rejected by `{}`'s schema: {e}",
                                stage.name.get_ref(),
                                plugin.info.name
                            ),
                        )
                        .to_string(),
                );
            }
        }
        if let Err(e) = stages::check_role(stage, plugin) {
            problems.push(
                runbook
                    .error_at(
                        name.span().start,
                        format!("stage `{}`: {e}", stage.name.get_ref()),
                    )
                    .to_string(),
            );
        }
    }
    problems
}

/// Why a run was refused before its first effect: every problem found, each naming its file,
/// line or plugin. Nothing was created or changed.
#[derive(Debug, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct Refused {
    pub problems: Vec<String>,
}

/// Starts a new run. Everything is checked first — the runbook, the fault specs, every plugin
/// and the runbook against the plugins — so a bad input changes nothing (`Refused`).
pub async fn start(
    runtime: &Runtime,
    runbook_text: &str,
    runbook_source: &str,
    options: RunOptions,
    runs_root: &Path,
) -> anyhow::Result<RunSummary> {
    let refused = |problems: Vec<String>| anyhow::Error::new(Refused { problems });
    let runbook =
        Runbook::parse(runbook_text, runbook_source).map_err(|e| refused(vec![e.to_string()]))?;
    let mut inject = Inject::default();
    for spec in &options.inject {
        inject
            .apply(spec)
            .map_err(|e| refused(vec![format!("--inject {e}")]))?;
    }
    let catalog = runtime
        .discover(&options.plugins_dir)
        .await
        .map_err(|e| refused(vec![e.to_string()]))?;
    let mut problems = validate(&runbook, &catalog);
    // A file that is not a usable plugin matters when a stage needs a plugin that is missing
    // (it may be that one); otherwise it is reported and the run goes on, so a broken file in
    // the plugins folder never blocks a rollback.
    if problems.is_empty() {
        for r in &catalog.rejected {
            eprintln!("warning: {r} (not used by this run)");
        }
    } else {
        problems.extend(catalog.rejected.iter().map(ToString::to_string));
        return Err(refused(problems));
    }
    let run_id = new_run_id();
    // Locked before the run folder exists: a refused run leaves nothing behind.
    let targets = if options.lock {
        lock_targets(&runbook).await?
    } else {
        Vec::new()
    };
    let locks = super::lock::acquire(&lock_dir(runs_root), &run_id, &targets).await?;
    let run_dir = runs_root.join(&run_id);
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("creating the run folder {}", run_dir.display()))?;
    std::fs::write(run_dir.join("runbook.toml"), runbook_text)?;
    std::fs::write(
        run_dir.join("options.json"),
        serde_json::to_vec_pretty(&options)?,
    )?;
    let mut journal = Journal::open(&run_dir.join("journal.jsonl"))?;
    let mirror = match mirror_to(&runbook, &run_id, &run_dir, &mut journal).await {
        Ok(m) => m,
        Err(e) => {
            locks.release().await;
            return Err(e);
        }
    };
    let plugins = catalog
        .plugins
        .iter()
        .map(|p| (p.info.name.clone(), p.digest.clone()))
        .collect();
    journal.append(Event::RunStarted {
        run_id: run_id.clone(),
        runbook: runbook_source.into(),
        runbook_sha256: digest(runbook_text.as_bytes()),
        plugins,
        auto: options.auto,
    })?;
    let ctx = prepare(
        runbook,
        catalog,
        journal,
        run_id,
        run_dir,
        options,
        Vec::new(),
    )
    .await;
    finish(ctx, locks, mirror).await
}

/// Starts mirroring the run to the runbook's state location, if it has one.
async fn mirror_to(
    runbook: &Runbook,
    run_id: &str,
    run_dir: &Path,
    journal: &mut Journal,
) -> anyhow::Result<Option<Mirror>> {
    let Some(url) = state_url(runbook) else {
        return Ok(None);
    };
    let mirror = Mirror::start(&url, run_id, run_dir)
        .await
        .with_context(|| format!("copying the run's state to {url}"))?;
    journal.on_append(mirror.notifier());
    Ok(Some(mirror))
}

/// Drives the run, then releases its locks and completes the state copy, whatever happened.
async fn finish(
    ctx: anyhow::Result<Ctx>,
    locks: super::lock::Locks,
    mirror: Option<Mirror>,
) -> anyhow::Result<RunSummary> {
    let result = match ctx {
        Ok(ctx) => drive(ctx).await,
        Err(e) => Err(e),
    };
    locks.release().await;
    if let Some(mirror) = mirror {
        let url = mirror.url();
        if let Err(e) = mirror.finish().await {
            eprintln!("warning: the run's state was not fully copied to {url}: {e:#}");
        }
    }
    result
}

/// Continues an interrupted run from its journal, refusing if a plugin changed since.
pub async fn resume(
    runtime: &Runtime,
    run_dir: &Path,
    plugins_dir: Option<PathBuf>,
) -> anyhow::Result<RunSummary> {
    let journal_path = run_dir.join("journal.jsonl");
    anyhow::ensure!(
        journal_path.is_file(),
        "{} is not a run folder (no journal.jsonl)",
        run_dir.display()
    );
    let records = Journal::read(&journal_path)?;
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
    if let Some(Event::RunFinished { outcome, .. }) = records.last().map(|r| &r.event) {
        anyhow::bail!("run {run_id} already finished ({outcome}); nothing to resume");
    }
    let text = std::fs::read_to_string(run_dir.join("runbook.toml"))
        .context("reading the run's runbook copy")?;
    let mut options: RunOptions =
        serde_json::from_slice(&std::fs::read(run_dir.join("options.json"))?)
            .context("reading options.json")?;
    if let Some(dir) = plugins_dir {
        options.plugins_dir = dir;
    }
    let runbook = Runbook::parse(&text, source)?;
    let catalog = runtime.discover(&options.plugins_dir).await?;
    for (name, digest) in plugins {
        match catalog.get(name) {
            Some(p) if &p.digest == digest => {}
            Some(p) => anyhow::bail!(
                "plugin `{name}` changed since run {run_id} started (sha256 {} now, {} then); resume with the same plugins, or start a new run",
                &p.digest[..12],
                &digest[..12]
            ),
            None => anyhow::bail!(
                "plugin `{name}` used by run {run_id} is no longer in {}",
                options.plugins_dir.display()
            ),
        }
    }
    let runs_root = run_dir.parent().unwrap_or(Path::new("."));
    let targets = if options.lock {
        lock_targets(&runbook).await?
    } else {
        Vec::new()
    };
    let locks = super::lock::acquire(&lock_dir(runs_root), run_id, &targets).await?;
    let mut journal = Journal::open(&journal_path)?;
    let mirror = match mirror_to(&runbook, run_id, run_dir, &mut journal).await {
        Ok(m) => m,
        Err(e) => {
            locks.release().await;
            return Err(e);
        }
    };
    journal.append(Event::Resumed {
        pid: std::process::id(),
    })?;
    let ctx = prepare(
        runbook,
        catalog,
        journal,
        run_id.clone(),
        run_dir.to_path_buf(),
        options,
        records,
    )
    .await;
    finish(ctx, locks, mirror).await
}

async fn prepare(
    runbook: Runbook,
    catalog: Catalog,
    journal: Journal,
    run_id: String,
    run_dir: PathBuf,
    options: RunOptions,
    history: Vec<Record>,
) -> anyhow::Result<Ctx> {
    let mut inject = Inject::default();
    for spec in &options.inject {
        inject
            .apply(spec)
            .map_err(|e| anyhow::anyhow!("--inject {e}"))?;
    }
    let mut envs = BTreeMap::new();
    for (name, spec) in &runbook.environments {
        envs.insert(
            name.clone(),
            environment::open(
                name,
                spec,
                &runbook,
                &ctx_env_dir(&options, &run_dir),
                inject,
            )
            .await?,
        );
    }
    let mut done_effects = HashSet::new();
    let mut windows: BTreeMap<String, Vec<WindowRecord>> = BTreeMap::new();
    let mut finished = HashSet::new();
    let mut last_started: Option<String> = None;
    for r in &history {
        match &r.event {
            Event::EffectDone { stage, key, .. } => {
                done_effects.insert(format!("{stage}/{key}"));
            }
            Event::Window {
                environment,
                window,
                ..
            } => windows
                .entry(environment.clone())
                .or_default()
                .push(window.clone()),
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
            .filter(|r| record_stage(&r.event) == Some(s.as_str()))
            .cloned()
            .collect();
        (s, recs)
    });
    let probe_client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()?;
    let ctx = Ctx {
        runbook: Arc::new(runbook),
        catalog,
        journal,
        run_id,
        run_dir,
        envs,
        options,
        probe_client,
        windows,
        done_effects,
        finished,
        resumed_stage,
    };
    Ok(ctx)
}

pub fn uat_dir(options: &RunOptions, run_dir: &Path) -> PathBuf {
    options
        .workspace
        .as_ref()
        .map_or_else(|| run_dir.join("uat"), |w| super::workspace::uat_dir(w))
}

/// Where embedded environments keep their store and flags.
fn ctx_env_dir(options: &RunOptions, run_dir: &Path) -> PathBuf {
    options
        .workspace
        .as_ref()
        .map_or_else(|| run_dir.join("env"), |w| super::workspace::envs_dir(w))
}

fn record_stage(e: &Event) -> Option<&str> {
    match e {
        Event::StageStarted { stage, .. }
        | Event::EffectStarted { stage, .. }
        | Event::EffectDone { stage, .. }
        | Event::Window { stage, .. }
        | Event::Decision { stage, .. }
        | Event::Log { stage, .. }
        | Event::StageFinished { stage, .. } => Some(stage),
        _ => None,
    }
}

/// Runs the stages that have not finished yet, then writes the reports.
async fn drive(mut ctx: Ctx) -> anyhow::Result<RunSummary> {
    let stage_count = ctx.runbook.stages.len();
    let mut outcome = Outcome::Passed;
    let mut failed_summary = None;
    for i in 0..stage_count {
        let name = ctx.runbook.stages[i].name.get_ref().clone();
        if ctx.finished.contains(&name) {
            continue;
        }
        let title = ctx.runbook.stages[i].title().to_string();
        let resuming = ctx.resumed_stage.as_ref().is_some_and(|(s, _)| s == &name);
        if !resuming {
            ctx.journal.append(Event::StageStarted {
                stage: name.clone(),
                title: title.clone(),
            })?;
        }
        eprintln!("▶ {title}");
        if ctx.options.interactive && !resuming {
            match ask_step(&title) {
                Step::Proceed => {}
                Step::Skip => {
                    eprintln!("  skipped by the operator");
                    ctx.journal.append(Event::StageFinished {
                        stage: name.clone(),
                        verdict: VerdictRecord::NoData("skipped by the operator".into()),
                        checks: Vec::new(),
                        summary: "skipped by the operator".into(),
                        plugin: None,
                        dry_run: false,
                        outcome: "skipped by the operator".into(),
                        elapsed_ms: 0,
                    })?;
                    continue;
                }
                Step::Abort => {
                    ctx.journal.append(Event::StageFinished {
                        stage: name.clone(),
                        verdict: VerdictRecord::NoData("aborted by the operator".into()),
                        checks: Vec::new(),
                        summary: "aborted by the operator".into(),
                        plugin: None,
                        dry_run: false,
                        outcome: "run aborted by the operator".into(),
                        elapsed_ms: 0,
                    })?;
                    outcome = Outcome::Aborted;
                    failed_summary = Some(format!("aborted by the operator before `{name}`"));
                    break;
                }
            }
        }
        let started = Instant::now();
        let runbook = ctx.runbook.clone();
        let stage = &runbook.stages[i];
        let result = match stages::run_stage(&mut ctx, stage).await {
            Ok(r) => r,
            // An error in host code (I/O, a plugin that trapped...) fails the stage with the reason.
            Err(e) => StageResult::from_checks(
                vec![CheckRecord {
                    name: "stage-error".into(),
                    verdict: VerdictRecord::Fail(format!("{e:#}")),
                    observed: None,
                    threshold: None,
                    unit: String::new(),
                    detail: String::new(),
                }],
                format!("{e:#}"),
            ),
        };
        let mut result = result;
        // A stage whose plugin failed is still attributed to it.
        result.plugin = result
            .plugin
            .or_else(|| stage.plugin.as_ref().map(|p| p.get_ref().clone()));
        let (next, what) = decide_next(&mut ctx, stage, &result).await?;
        // Coloured on a terminal; anstream drops the colour with NO_COLOR or when piped.
        let colour = match &result.verdict {
            VerdictRecord::Pass => anstyle::AnsiColor::Green,
            VerdictRecord::Fail(_) => anstyle::AnsiColor::Red,
            _ => anstyle::AnsiColor::Yellow,
        };
        let style = anstyle::Style::new().bold().fg_color(Some(colour.into()));
        anstream::eprintln!(
            "  {style}{}{style:#} {} — {}",
            result.verdict.word(),
            if result.verdict.is_pass() {
                ""
            } else {
                result.verdict.reason()
            },
            what
        );
        ctx.journal.append(Event::StageFinished {
            stage: name.clone(),
            verdict: result.verdict.clone(),
            checks: result.checks,
            summary: result.summary,
            plugin: result.plugin,
            dry_run: stage.dry_run,
            outcome: what.clone(),
            elapsed_ms: started.elapsed().as_millis() as u64,
        })?;
        if let Some(o) = next {
            outcome = o;
            failed_summary = Some(format!(
                "stage `{name}`: {} — {what}",
                result.verdict.reason()
            ));
            break;
        }
    }
    let summary = failed_summary.unwrap_or_else(|| format!("all {stage_count} stages passed"));
    ctx.journal.append(Event::RunFinished {
        outcome: outcome.word().into(),
        summary: summary.clone(),
    })?;
    crate::report::write_all(&ctx.run_dir).context("writing the reports")?;
    Ok(RunSummary {
        run_id: ctx.run_id.clone(),
        run_dir: ctx.run_dir.clone(),
        outcome,
        summary,
    })
}

/// What the host does about a stage's verdict. `Some(outcome)` ends the run.
async fn decide_next(
    ctx: &mut Ctx,
    stage: &Stage,
    result: &StageResult,
) -> anyhow::Result<(Option<Outcome>, String)> {
    if result.verdict.is_pass() {
        return Ok((None, "continued".into()));
    }
    if stage.dry_run {
        return Ok((None, "dry run: verdict recorded, no action".into()));
    }
    if result.rolled_back {
        return Ok((Some(Outcome::RolledBack), "rolled back (flag at 0)".into()));
    }
    if let VerdictRecord::Inconclusive(reason) = &result.verdict
        && !ctx.options.auto
        && std::io::stdin().is_terminal()
        && ask_proceed(stage, reason)
    {
        return Ok((None, "continued by the operator".into()));
    }
    match stage.on_fail {
        OnFail::Continue => Ok((None, "continued (on-fail = continue)".into())),
        OnFail::Abort => Ok((Some(Outcome::GateFailed), "launch stopped".into())),
        OnFail::Rollback => {
            stages::rollback(
                ctx,
                stage,
                "emergency",
                &format!(
                    "stage `{}`: {}",
                    stage.name.get_ref(),
                    result.verdict.reason()
                ),
            )
            .await?;
            Ok((Some(Outcome::RolledBack), "rolled back (flag at 0)".into()))
        }
    }
}

enum Step {
    Proceed,
    Skip,
    Abort,
}

/// Interactive runs: proceed, skip or abort before each stage. Only ever called on a terminal
/// (the CLI refuses interactive mode otherwise); end of input means abort, never proceed.
fn ask_step(title: &str) -> Step {
    loop {
        eprint!("  run \"{title}\"? [p]roceed / [s]kip / [a]bort: ");
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => return Step::Abort,
            Ok(_) => {}
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "p" | "proceed" | "y" | "yes" | "" => return Step::Proceed,
            "s" | "skip" => return Step::Skip,
            "a" | "abort" | "q" => return Step::Abort,
            other => eprintln!("  `{other}`: answer p, s or a"),
        }
    }
}

fn ask_proceed(stage: &Stage, reason: &str) -> bool {
    eprint!(
        "  stage `{}` is inconclusive ({reason}). Proceed anyway? [y/N] ",
        stage.name.get_ref()
    );
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "Y" | "yes")
}

/// The outcome recorded in a finished run's journal.
pub fn finished_outcome(records: &[Record]) -> Option<Outcome> {
    records.iter().rev().find_map(|r| match &r.event {
        Event::RunFinished { outcome, .. } => Outcome::parse(outcome),
        _ => None,
    })
}

/// The longest a canary stage may take when its `duration` does not say: past it, a canary
/// still holding (on missing data, say) is rolled back rather than left half-way forever.
pub const CANARY_TIMEOUT: Duration = Duration::from_secs(6 * 60 * 60);
