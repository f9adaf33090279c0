//! What a stage runs in: the run's options, its environments and catalog, the journal every
//! effect is written to before and after, and the windows measured so far.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::environment::Env;
use crate::journal::{Event, Journal, Record};
use crate::operator::Operator;
use crate::plan::Operation;
use crate::record::{CheckRecord, VerdictRecord, WindowRecord};
use crate::runbook::{Runbook, Stage};
use launch_runtime::capabilities::{AllowList, Grants};
use launch_runtime::{Catalog, Limits, Plugin, Sandbox};

/// What `run` was asked to do; saved in the run folder so `resume` does the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOptions {
    /// What the operator asked for: the stages of the runbook it runs are planned from it
    /// (again on resume). Runs from before typed operations ran their whole saved runbook.
    #[serde(default)]
    pub operation: Operation,
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
    /// Who asked for the run, when not the login name (an action from the web dashboard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

fn yes() -> bool {
    true
}

impl RunOptions {
    /// The options a run was started with, as its folder keeps them (`options.json`).
    pub fn saved(run_dir: &Path) -> anyhow::Result<RunOptions> {
        let path = run_dir.join("options.json");
        let bytes = crate::files::read(&path, crate::files::STATE, "the run's options")?;
        serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))
    }

    pub fn new(plugins_dir: PathBuf, auto: bool) -> RunOptions {
        RunOptions {
            operation: Operation::Playbook,
            plugins_dir,
            auto,
            inject: Vec::new(),
            workspace: None,
            lock: true,
            interactive: false,
            skip_uat_interactive: false,
            operator: None,
        }
    }
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
    /// The people running the launch: every question and notice goes through it.
    pub operator: Arc<dyn Operator>,
    pub probe_client: reqwest::Client,
    /// Metric windows measured so far, per environment (for SLO gates).
    pub windows: BTreeMap<String, Vec<WindowRecord>>,
    /// Effects that completed in an earlier attempt of this run.
    pub done_effects: HashSet<String>,
    /// Stages that finished in an earlier attempt of this run.
    pub finished: HashSet<String>,
    /// Stage being resumed, with the records it had written.
    pub resumed_stage: Option<(String, Vec<Record>)>,
    /// The flag the current stage is moving and its safe value, set before the first move:
    /// if the host fails mid-stage, the driver puts the flag back there.
    pub flag_guard: Option<FlagGuard>,
    /// How many `window` records the run has journaled: the next one's number.
    pub window_seq: u64,
    /// Where the inputs of every plugin call are recorded.
    pub calls: crate::lab::record::CallStore,
    /// Sends the runbook's notifications (it follows the journal); journals their deliveries.
    pub notifier: Option<crate::notify::Notifier>,
    /// The capability manifest of the whole runbook (whatever this command runs of it): what
    /// a UAT approval must cover.
    pub launch_manifest: crate::manifest::Manifest,
    /// Each shadow's last disagreement told to the operator (so a change is told, not each).
    pub shadows_told: std::collections::HashMap<String, String>,
    /// A mirrored run's lease: every effect checks it first.
    pub lease: Option<crate::lease::Lease>,
    /// Set when this process took the run over: what it does about the stage in progress.
    pub takeover: Option<crate::runbook::Takeover>,
    /// The run's copy in S3, when it is mirrored: flushed before every effect.
    pub mirror: Option<crate::mirror::Shared>,
}

/// A flag a stage is moving, and where it goes back to if the host fails mid-stage (the run
/// driver's guard restores it).
#[derive(Clone)]
pub struct FlagGuard {
    pub environment: String,
    pub flags: Arc<dyn launch_targets::flags::FlagStore>,
    pub flag: String,
    pub safe: u8,
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
            grants: Arc::new(
                Grants::default().with_hosts(allow).with_read_only_dirs(
                    self.runbook.granted_dirs(stage).map_err(|e| {
                        anyhow::anyhow!("stage `{}`: files: {e}", stage.name.get_ref())
                    })?,
                ),
            ),
            http: launch_runtime::HttpSource::Live,
        })
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
        // A runner that lost its lease (a paused VM, a partition) does nothing more.
        self.confirm_lease().await?;
        self.journal.append(Event::EffectStarted {
            stage: stage.into(),
            key: key.into(),
            detail: detail.into(),
        })?;
        // Written ahead to the shared copy: a taker knows this effect may have happened.
        if let Some(m) = &self.mirror {
            m.flush().await.with_context(|| {
                format!("stage `{stage}`: announcing `{detail}` in the run's shared copy")
            })?;
        }
        // The fencing test's zombie: frozen after every check, before its write.
        if crate::fault::active("freeze-before-effect")
            && let Some(lease) = &self.lease
        {
            lease.stop_renewing();
            tokio::time::sleep(lease.ttl() * 2 + std::time::Duration::from_secs(1)).await;
        }
        effect()
            .await
            .with_context(|| format!("stage `{stage}`: {detail}"))?;
        self.journal.append(Event::EffectDone {
            stage: stage.into(),
            key: key.into(),
            detail: detail.into(),
        })?;
        // Every effect's record is signed as soon as it is done.
        self.journal.checkpoint()?;
        self.done_effects.insert(full);
        Ok(())
    }

    /// Whether this runner may still act, by its own clock (cheap: no request).
    pub fn check_lease(&self) -> Result<(), crate::lease::LeaseLost> {
        self.lease.as_ref().map_or(Ok(()), |l| l.check())
    }

    /// `check_lease`, then the lease's generation in S3: what an effect asks first.
    pub async fn confirm_lease(&self) -> Result<(), crate::lease::LeaseLost> {
        match &self.lease {
            Some(l) => l.confirm().await,
            None => Ok(()),
        }
    }

    /// Holds `lease` from now on: every effect checks it, and every flag write carries its
    /// generation as a fencing token.
    pub fn hold(&mut self, lease: crate::lease::Lease) {
        let fence = lease.fence();
        for env in self.envs.values_mut() {
            env.flags = Arc::new(launch_targets::flags::FencedFlags::new(
                env.flags.clone(),
                fence.clone(),
            ));
        }
        self.lease = Some(lease);
    }

    /// Journals the notifications delivered (or given up on) since the last call.
    pub fn journal_notifications(&mut self) -> anyhow::Result<()> {
        let Some(n) = &self.notifier else {
            return Ok(());
        };
        for event in n.finished() {
            self.journal.append(event)?;
        }
        Ok(())
    }

    /// Waits for the notifications still on their way (each within its deadline) and
    /// journals them (the run's last records, as far as the journal can be written); returns
    /// them.
    pub async fn close_notifications(&mut self) -> Vec<Event> {
        let Some(n) = self.notifier.clone() else {
            return Vec::new();
        };
        let events = n.finish().await;
        for event in &events {
            let _ = self.journal.append(event.clone());
        }
        events
    }

    /// Journals a measured window; returns its number in the run (for recorded calls).
    pub fn record_window(
        &mut self,
        stage: &str,
        env: &str,
        window: WindowRecord,
    ) -> anyhow::Result<u64> {
        self.journal.append(Event::Window {
            stage: stage.into(),
            environment: env.into(),
            window: window.clone(),
        })?;
        self.windows
            .entry(env.to_string())
            .or_default()
            .push(window);
        let seq = self.window_seq;
        self.window_seq += 1;
        Ok(seq)
    }
}

pub fn uat_dir(options: &RunOptions, run_dir: &Path) -> PathBuf {
    options
        .workspace
        .as_ref()
        .map_or_else(|| run_dir.join("uat"), |w| crate::workspace::uat_dir(w))
}

/// Where embedded environments keep their store and flags.
pub fn env_dir(options: &RunOptions, run_dir: &Path) -> PathBuf {
    options
        .workspace
        .as_ref()
        .map_or_else(|| run_dir.join("env"), |w| crate::workspace::envs_dir(w))
}
