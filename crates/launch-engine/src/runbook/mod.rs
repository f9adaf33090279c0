//! The runbook: environments and the stages of a launch, read from TOML (`launch.toml`, or the
//! embedded default — the operator guide's 14-step playbook with compressed durations).
//! Mistakes are reported with the line they are on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub mod limits;
mod metrics;
mod notify;
mod shape;
mod units;
mod vars;

pub use metrics::Metrics;
pub use notify::{Channel, ChannelSpec, Notify};
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
    /// `/api/admin/feature-flags`), or `s3://bucket/path/flags.json` (a JSON object that a
    /// static site reads).
    pub flags: Option<Spanned<String>>,
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

/// What a stage does when its verdict is a failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFail {
    /// Stop the launch; nothing is undone.
    #[default]
    Abort,
    /// Roll back (primary flag to 0) and stop.
    Rollback,
    /// Record the failure and go on.
    Continue,
}

/// Built-in actions, done by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Preflight,
    Build,
    Deploy,
    Flag,
    Monitor,
    Rollback,
    RollbackDrill,
    /// Host-only health checks after a rollback: flag at 0, health, legacy serving.
    VerifyRollback,
    UatInit,
    Wait,
    Report,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SignoffSpec {
    pub role: String,
    pub name: String,
    pub decision: crate::uat::Decision,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Stage {
    pub name: Spanned<String>,
    /// A line for people; the name is used when absent.
    pub title: Option<String>,
    pub action: Option<Spanned<Action>>,
    /// The plugin (by its `describe` name) that decides this stage.
    pub plugin: Option<Spanned<String>>,
    /// Pins the plugin's build: `sha256:HEX` (what `plugins list --output json` shows). A
    /// plugin file with another digest is refused before the first effect.
    pub digest: Option<Spanned<String>>,
    pub environment: Option<Spanned<String>>,
    /// The plugin's config: read from TOML straight into the JSON value the plugin receives
    /// and its schema is checked against.
    pub config: Option<Spanned<serde_json::Map<String, serde_json::Value>>>,
    #[serde(default)]
    pub on_fail: OnFail,
    /// Record the verdict but take no action on it.
    #[serde(default)]
    pub dry_run: bool,
    /// Hosts the plugin may reach besides the stage's environment (which is always granted).
    #[serde(default, with = "limits::hosts")]
    pub allow_hosts: Vec<String>,
    /// Folders the plugin may read (and nothing else of the file system), e.g. `["dist"]`:
    /// relative to the runbook's folder, each seen by the plugin at `/<its name>`.
    #[serde(default)]
    pub files: Vec<Spanned<String>>,
    #[serde(default, with = "limits::deadline::opt")]
    pub deadline: Option<Duration>,
    #[serde(default, with = "limits::memory::opt")]
    pub memory: Option<usize>,
    /// `build`: a built-in site (`statusboard-v2`) or a shell command with its output folder.
    pub site: Option<String>,
    pub command: Option<String>,
    pub output: Option<PathBuf>,
    /// `flag`: the percentage to set.
    pub percent: Option<u8>,
    /// `flag`: which flag [default: the launch's primary flag].
    pub flag: Option<String>,
    /// `rollback`: why, recorded in the journal and the report.
    pub reason: Option<String>,
    /// `rollback`: also make the previous release current again (a full rollback), not only
    /// the primary flag to 0 (an emergency rollback).
    #[serde(default)]
    pub full: bool,
    /// `monitor`, `wait`: how long. Canary stages: the longest the canary may take before it
    /// is rolled back [default: 6 h].
    #[serde(default, with = "limits::duration::opt")]
    pub duration: Option<Duration>,
    /// Canary check interval / monitor window.
    #[serde(default, with = "limits::interval::opt")]
    pub interval: Option<Duration>,
    /// SLO gates with a `duration` (the stability gate): consecutive failing windows that roll
    /// back [default: 3].
    #[serde(default, with = "limits::breaches")]
    pub breaches: Option<Spanned<u32>>,
    /// UAT sign-offs recorded by the runbook (automated runs).
    #[serde(default)]
    pub signoffs: Vec<SignoffSpec>,
    /// Policies that see exactly the live plugin's inputs and are journaled, never obeyed.
    #[serde(default)]
    pub shadow: Vec<Spanned<Shadow>>,
}

/// A shadow policy: `"canary-ratio"`, or `{ plugin = "canary-ratio", config = { ... } }` to
/// give it a config of its own (otherwise it gets the live plugin's).
/// (Untagged, so no spans inside: the stage keeps each entry's span.)
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Shadow {
    Named(String),
    Configured {
        plugin: String,
        config: Option<serde_json::Map<String, serde_json::Value>>,
    },
}

impl Shadow {
    pub fn plugin(&self) -> &str {
        match self {
            Shadow::Named(p) | Shadow::Configured { plugin: p, .. } => p,
        }
    }

    /// The config the shadow is called with: its own, else the live stage's.
    pub fn config_value(&self, stage: &Stage) -> serde_json::Value {
        match self {
            Shadow::Configured {
                config: Some(c), ..
            } => serde_json::Value::Object(c.clone()),
            _ => stage.config_value(),
        }
    }
}

impl Stage {
    pub fn title(&self) -> &str {
        self.title.as_deref().unwrap_or(self.name.get_ref())
    }

    /// The plugin's config, `{}` when the runbook gives none.
    pub fn config_value(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.config
                .as_ref()
                .map(|c| c.get_ref().clone())
                .unwrap_or_default(),
        )
    }

    /// The plugin's config as the JSON text a plugin call takes.
    pub fn config_json(&self) -> String {
        self.config_value().to_string()
    }

    /// A stage written by the host for an operator command (no line in any file).
    pub fn builtin(name: &str, title: &str, action: Action, environment: Option<&str>) -> Stage {
        let here = |v| Spanned::new(0..0, v);
        Stage {
            name: here(name.to_string()),
            title: Some(title.to_string()),
            action: Some(Spanned::new(0..0, action)),
            plugin: None,
            digest: None,
            environment: environment.map(|e| here(e.to_string())),
            config: None,
            on_fail: OnFail::Abort,
            dry_run: false,
            allow_hosts: Vec::new(),
            files: Vec::new(),
            deadline: None,
            memory: None,
            site: None,
            command: None,
            output: None,
            percent: None,
            flag: None,
            reason: None,
            full: false,
            duration: None,
            interval: None,
            breaches: None,
            signoffs: Vec::new(),
            shadow: Vec::new(),
        }
    }

    /// The built-in action, if the stage is one.
    pub fn action(&self) -> Option<Action> {
        self.action.as_ref().map(|a| *a.get_ref())
    }

    pub fn environment(&self) -> Option<&str> {
        self.environment.as_ref().map(|e| e.get_ref().as_str())
    }

    pub fn plugin_name(&self) -> Option<&str> {
        self.plugin.as_ref().map(|p| p.get_ref().as_str())
    }
}

impl Runbook {
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
        let text = std::fs::read_to_string(path).map_err(|e| RunbookError {
            source_name: path.display().to_string(),
            line: 0,
            message: format!("cannot read the runbook: {e}"),
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
