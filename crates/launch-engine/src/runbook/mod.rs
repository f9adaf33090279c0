//! The runbook: environments and the stages of a launch, read from TOML (`launch.toml`, or the
//! embedded default — the operator guide's 14-step playbook with compressed durations).
//! Mistakes are reported with the line they are on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

mod flags;
pub mod limits;
mod metrics;
mod notify;
mod shape;
mod stage;
mod units;
mod vars;

pub use flags::{FlagProvider, FlagdSpec, UnleashSpec};
pub use metrics::Metrics;
pub use notify::{Channel, ChannelSpec, Notify};
pub use stage::{Action, OnFail, Shadow, SignoffSpec, Stage, Takeover};
pub use vars::expand_vars;

/// The embedded default runbook.
pub const DEFAULT_RUNBOOK: &str = include_str!("default-runbook.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Runbook {
    pub launch: Launch,
    pub environments: BTreeMap<String, Environment>,
    #[serde(default)]
    pub defaults: Defaults,
    /// Notifications: the guide's Slack channels and escalation.
    pub notify: Option<Notify>,
    /// Which plugin signatures the launch trusts.
    pub trust: Option<Trust>,
    #[serde(rename = "stage")]
    pub stages: Vec<Stage>,
    /// Where the runbook came from, for messages: a path, or `(embedded default)`.
    #[serde(skip)]
    pub source: String,
    #[serde(skip)]
    text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Launch {
    pub name: String,
    /// The primary feature flag the canary moves.
    pub flag: String,
    /// Component flags, OFF until the primary flag reaches 100 %.
    #[serde(default)]
    pub component_flags: Vec<String>,
    /// Where runs (journal, reports, UAT data) are mirrored so `status`, `report` and `resume`
    /// work from another machine: an `s3://bucket/prefix`. Defaults to the S3 store of the
    /// first environment (by name) that has one; local only when none has.
    pub state: Option<String>,
    /// How long a mirrored run's lease holds without renewal: past it a standby agent takes
    /// the run over [default: 30 s].
    #[serde(default, with = "limits::lease_ttl::opt")]
    pub lease_ttl: Option<Duration>,
}

impl Launch {
    /// The lease's time to live.
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl.unwrap_or(crate::lease::DEFAULT_TTL)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Environment {
    /// `embedded` runs the StatusBoardV2 simulator; otherwise `url` and `api-url` are used.
    #[serde(default)]
    pub target: Option<String>,
    pub url: Option<String>,
    pub api_url: Option<String>,
    /// Where releases go: `s3://bucket/prefix` (real deploys); the run folder when absent.
    pub store: Option<Spanned<String>>,
    /// The CloudFront distribution in front of the store, invalidated after every deploy and
    /// full rollback.
    pub cloudfront: Option<String>,
    /// Where flags are moved: `file` (the run folder; default), `http` (the target's
    /// `/api/admin/feature-flags`), `s3://bucket/path/flags.json` (a JSON object that a
    /// static site reads), `unleash` or `flagd` (with their table below).
    pub flags: Option<Spanned<String>>,
    /// `flags = "unleash"`: the server, token, project and Unleash environment.
    pub unleash: Option<Spanned<UnleashSpec>>,
    /// `flags = "flagd"`: the flag definition flagd syncs, a file or an S3 object.
    pub flagd: Option<Spanned<FlagdSpec>>,
    /// Embedded targets: the loopback address to serve on (e.g. `127.0.0.1:9464`), so a
    /// metrics system can scrape its `/metrics` [default: an ephemeral port].
    pub listen: Option<Spanned<String>>,
    /// Embedded targets: simulated users' requests per second to the API — the real traffic
    /// a Prometheus source measures when no probe runs [default: none].
    #[serde(default, with = "limits::traffic")]
    pub traffic: Option<Spanned<u32>>,
    /// Where canary and monitor windows come from: the probe [default], Prometheus, or both.
    pub metrics: Option<Metrics>,
}

impl Environment {
    pub fn is_embedded(&self) -> bool {
        self.target.as_deref() == Some("embedded")
    }

    /// Why only the machine that runs the launch can reach this environment, if so: its
    /// target or its flags live in that machine's workspace.
    pub fn local_to_runner(&self) -> Option<&'static str> {
        if self.is_embedded() {
            Some("its target is embedded (it runs inside the runner)")
        } else if matches!(self.flag_provider(), None | Some(FlagProvider::File)) {
            Some("its flags are a file in the runner's workspace")
        } else if matches!(self.flag_provider(), Some(FlagProvider::FlagdFile(_))) {
            Some("its flags are a flagd file on the runner's machine")
        } else {
            None
        }
    }

    pub fn store_url(&self) -> Option<&str> {
        self.store.as_ref().map(|s| s.get_ref().as_str())
    }

    /// The store, when it is in S3.
    pub fn s3_store(&self) -> Option<&str> {
        self.store_url().filter(|s| s.starts_with("s3://"))
    }

    /// The embedded target's fixed address, when it has one (checked at parse time).
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen.as_ref().and_then(|l| l.get_ref().parse().ok())
    }

    pub fn flags_spec(&self) -> Option<&str> {
        self.flags.as_ref().map(|s| s.get_ref().as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Defaults {
    #[serde(default = "default_deadline", with = "limits::deadline")]
    pub deadline: Duration,
    #[serde(default = "default_memory", with = "limits::memory")]
    pub memory: usize,
    /// Probe request rate while monitoring or running a canary.
    #[serde(default = "default_rate", with = "limits::probe_rate")]
    pub probe_rate: u32,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            deadline: default_deadline(),
            memory: default_memory(),
            probe_rate: default_rate(),
        }
    }
}

fn default_deadline() -> Duration {
    Duration::from_secs(5)
}
fn default_memory() -> usize {
    64 << 20
}
fn default_rate() -> u32 {
    200
}

/// `[trust]`: the OpenSSH public keys whose plugin signatures count, and whether every plugin
/// the runbook uses must carry one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Trust {
    /// Public key files (`.pub`), relative to the runbook's folder.
    #[serde(default)]
    pub keys: Vec<Spanned<String>>,
    #[serde(default)]
    pub require_signatures: bool,
}

impl Runbook {
    /// Whether any stage is decided (or shadowed) by a plugin. A runbook of built-in actions
    /// alone — flag moves, waits, deploys — runs and validates without a plugin folder.
    pub fn names_plugins(&self) -> bool {
        self.stages
            .iter()
            .any(|s| s.plugin.is_some() || !s.shadow.is_empty())
    }

    /// The terms of a mirrored run's lease: its TTL, and whether an agent on another machine
    /// could continue it (not when an environment lives on the runner's machine).
    pub fn lease_terms(&self) -> crate::lease::Terms {
        crate::lease::Terms {
            ttl: self.launch.lease_ttl(),
            stays: self.environments.iter().find_map(|(name, e)| {
                e.local_to_runner()
                    .map(|why| format!("environment `{name}`: {why}"))
            }),
        }
    }

    /// The folder relative paths in the runbook are read from: the runbook file's, or the
    /// working directory for the embedded default.
    pub fn folder(&self) -> PathBuf {
        Path::new(&self.source)
            .parent()
            .filter(|_| !self.source.starts_with('('))
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// A stage's read-only folders: each `files` entry resolved against the runbook's folder,
    /// seen by the plugin at `/<its name>`.
    pub fn read_only_dirs(&self, stage: &Stage) -> Vec<launch_runtime::capabilities::ReadOnlyDir> {
        let base = self.folder();
        stage
            .files
            .iter()
            .map(|f| {
                let host = base.join(f.get_ref());
                let name = host
                    .file_name()
                    .map_or_else(|| "files".into(), |n| n.to_string_lossy().into_owned());
                launch_runtime::capabilities::ReadOnlyDir {
                    host,
                    guest: format!("/{name}"),
                }
            })
            .collect()
    }
}

impl Runbook {
    /// Where a granted folder really is: resolved on disk (symlinks followed) and required to
    /// stay inside the runbook's folder, so neither a symlink nor a folder swapped after
    /// `validate` leads a plugin out of it.
    pub fn granted(
        &self,
        dir: &launch_runtime::capabilities::ReadOnlyDir,
    ) -> Result<PathBuf, String> {
        let base = self.folder();
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base.as_path()
        };
        let root = std::fs::canonicalize(base).map_err(|e| {
            format!(
                "the runbook's folder {} cannot be opened ({e})",
                base.display()
            )
        })?;
        let real = std::fs::canonicalize(&dir.host).map_err(|e| {
            format!(
                "{} is not a folder ({e}); a granted folder must exist before the run",
                dir.host.display()
            )
        })?;
        if !real.starts_with(&root) {
            return Err(format!(
                "{} leads to {}, outside the runbook's folder {}: a granted folder must be inside it (a symlink that leads out is not followed)",
                dir.host.display(),
                real.display(),
                root.display()
            ));
        }
        if !real.is_dir() {
            return Err(format!("{} is not a folder", dir.host.display()));
        }
        Ok(real)
    }

    /// A stage's read-only folders as the sandbox opens them (see `granted`).
    pub fn granted_dirs(
        &self,
        stage: &Stage,
    ) -> Result<Vec<launch_runtime::capabilities::ReadOnlyDir>, String> {
        self.read_only_dirs(stage)
            .into_iter()
            .map(|d| {
                Ok(launch_runtime::capabilities::ReadOnlyDir {
                    host: self.granted(&d)?,
                    guest: d.guest,
                })
            })
            .collect()
    }
}

/// A runbook problem, with the place it is at.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}:{line}: {message}")]
pub struct RunbookError {
    pub source_name: String,
    pub line: usize,
    pub message: String,
}

impl Runbook {
    pub fn embedded() -> Result<Runbook, RunbookError> {
        Runbook::parse(DEFAULT_RUNBOOK, "(embedded default runbook)")
    }

    pub fn load(path: &Path) -> Result<Runbook, RunbookError> {
        let text = crate::files::read_to_string(path, crate::files::RUNBOOK, "the runbook")
            .map_err(|e| RunbookError {
                source_name: path.display().to_string(),
                line: 0,
                message: format!("cannot read the runbook: {e:#}"),
            })?;
        Runbook::parse(&text, &path.display().to_string())
    }

    /// Parses a runbook after expanding `${VAR}` from the process environment (the guide's
    /// `STAGING_URL`, `S3_BUCKET`, `CLOUDFRONT_DIST_ID`...). The run folder keeps the text
    /// unexpanded, so no value read from the environment is written to disk.
    pub fn parse(text: &str, source: &str) -> Result<Runbook, RunbookError> {
        let expanded = expand_vars(text, source, |name| std::env::var(name).ok())?;
        let text = expanded.as_str();
        let mut rb: Runbook = toml::from_str(text).map_err(|e| RunbookError {
            source_name: source.to_string(),
            line: e.span().map_or(0, |s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        rb.source = source.to_string();
        rb.text = text.to_string();
        rb.check_shape()?;
        Ok(rb)
    }

    /// An error at the byte offset `at` of the runbook.
    pub fn error_at(&self, at: usize, message: impl Into<String>) -> RunbookError {
        RunbookError {
            source_name: self.source.clone(),
            line: line_of(&self.text, at),
            message: message.into(),
        }
    }
}

pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses_with_fourteen_stages() {
        let rb = Runbook::embedded().expect("the embedded runbook is valid");
        assert_eq!(rb.stages.len(), 14);
    }

    #[test]
    fn errors_name_the_line() {
        let text = "[launch]\nname = \"x\"\nflag = \"F\"\n[environments.staging]\ntarget = \"embedded\"\n[[stage]]\nname = \"a\"\naction = \"deploi\"\nenvironment = \"staging\"\n";
        let e = Runbook::parse(text, "launch.toml").unwrap_err();
        assert_eq!(e.line, 8, "{e}");
        assert!(e.to_string().starts_with("launch.toml:8:"), "{e}");
        assert!(e.message.contains("deploi"), "{e}");
    }

    #[test]
    fn unknown_environment_is_reported_at_its_line() {
        let text = "[launch]\nname = \"x\"\nflag = \"F\"\n[environments.staging]\ntarget = \"embedded\"\n[[stage]]\nname = \"a\"\naction = \"deploy\"\nenvironment = \"prod\"\n";
        let e = Runbook::parse(text, "launch.toml").unwrap_err();
        assert_eq!(e.line, 9, "{e}");
        assert!(e.message.contains("unknown environment `prod`"), "{e}");
    }

    const HEAD: &str =
        "[launch]\nname = \"x\"\nflag = \"F\"\n[environments.staging]\ntarget = \"embedded\"\n";
    const STAGE: &str = "[[stage]]\nname = \"a\"\naction = \"deploy\"\nenvironment = \"staging\"\n";

    #[test]
    fn an_over_long_list_is_refused_at_its_own_line() {
        let signoffs: Vec<String> = (0..101)
            .map(|i| format!("{{ role = \"r{i}\", name = \"n\", decision = \"approved\" }}"))
            .collect();
        let text = format!(
            "{HEAD}[[stage]]\nname = \"uat\"\nplugin = \"uat-signoff\"\nenvironment = \"staging\"\nsignoffs = [{}]\n",
            signoffs.join(", ")
        );
        let e = Runbook::parse(&text, "launch.toml").unwrap_err();
        assert_eq!(e.line, 7, "the stage's line, not 0: {e}");
        assert!(
            e.message.contains("stage `uat`: signoffs has 101 entries"),
            "{e}"
        );
    }

    #[test]
    fn a_webhook_written_in_the_runbook_is_refused_at_its_line() {
        let text = format!(
            "{HEAD}[notify.channels.alerts]\nslack = \"https://hooks.example.com/T0/B0/abc\"\n{STAGE}"
        );
        let e = Runbook::parse(&text, "launch.toml").unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        assert!(e.message.contains("a webhook URL is a secret"), "{e}");
        let text = format!(
            "{HEAD}[notify.channels.alerts]\nslack = \"https://a\"\nwebhook = \"https://b\"\n{STAGE}"
        );
        let e = Runbook::parse(&text, "launch.toml").unwrap_err();
        assert!(e.message.contains("exactly one of"), "{e}");
    }

    #[test]
    fn a_prometheus_source_needs_its_server_and_a_loopback_listen() {
        let text =
            format!("{HEAD}[environments.staging.metrics]\nsource = \"prometheus\"\n{STAGE}");
        let e = Runbook::parse(&text, "launch.toml").unwrap_err();
        assert!(
            e.message.contains("the prometheus source needs the server"),
            "{e}"
        );
        assert_eq!(e.line, 7, "{e}");
        let text = HEAD.replace(
            "target = \"embedded\"\n",
            "target = \"embedded\"\nlisten = \"0.0.0.0:9464\"\n",
        ) + STAGE;
        let e = Runbook::parse(&text, "launch.toml").unwrap_err();
        assert!(e.message.contains("not a loopback address"), "{e}");
        let text = format!(
            "{HEAD}[environments.staging.metrics]\nsource = [\"probe\", \"prometheus\"]\nprometheus = \"http://127.0.0.1:9090\"\n{STAGE}"
        );
        let rb = Runbook::parse(&text, "launch.toml").unwrap();
        let m = rb.environments["staging"].metrics.as_ref().unwrap();
        assert_eq!(Metrics::sources(Some(m)).len(), 2);
        assert!(
            m.prometheus_config()
                .unwrap()
                .queries
                .p95_ms
                .contains("histogram_quantile(0.95")
        );
    }
}
