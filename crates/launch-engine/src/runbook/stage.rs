//! A runbook's stages: what each one does (a built-in action or a plugin), the plugin's config,
//! shadows and grants, and what happens when its verdict is a failure.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::limits;

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

/// What a process that takes a run over (its runner's lease went silent) does about the stage
/// that was in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Takeover {
    /// Go on with it, without repeating a done effect.
    Resume,
    /// Roll back its flag and end the run: a judgement made by the runner that died is stale.
    Rollback,
}

impl Takeover {
    pub fn word(self) -> &'static str {
        match self {
            Takeover::Resume => "resume",
            Takeover::Rollback => "rollback",
        }
    }
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
    /// The role the stage expects its plugin to play (`canary-policy`, `slo-gate`...): a
    /// plugin of another role is refused at its line, not run as something else.
    pub role: Option<Spanned<launch_runtime::Role>>,
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
    /// Canary stages and stability gates: the longest they may go without data (windows no
    /// source could answer, policies holding for lack of traffic) before rolling back
    /// [default: 5 min, or three intervals if longer].
    #[serde(default, with = "limits::no_data_limit::opt")]
    pub no_data_limit: Option<Duration>,
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
    /// What a process that takes the run over does when this stage was in progress
    /// [default: `rollback` for a canary, `resume` for any other stage].
    pub takeover: Option<Takeover>,
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
        serde_json::Value::Object(self.config_map())
    }

    /// `config_value`'s map.
    pub fn config_map(&self) -> serde_json::Map<String, serde_json::Value> {
        self.config
            .as_ref()
            .map(|c| c.get_ref().clone())
            .unwrap_or_default()
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
            role: None,
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
            no_data_limit: None,
            breaches: None,
            signoffs: Vec::new(),
            shadow: Vec::new(),
            takeover: None,
        }
    }

    /// What a taker does when this stage was in progress, the plugin's role deciding the
    /// default (a canary's judgement is stale once its runner died).
    pub fn takeover(&self, role: Option<launch_runtime::Role>) -> Takeover {
        self.takeover.unwrap_or(match role {
            Some(launch_runtime::Role::CanaryPolicy) => Takeover::Rollback,
            _ => Takeover::Resume,
        })
    }

    /// The longest the stage may go without data before rolling back: its `no-data-limit`,
    /// else five minutes, or three check intervals if that is longer (one empty window is
    /// normal right after a promotion; three in a row are not).
    pub fn no_data_limit(&self, interval: Duration) -> Duration {
        self.no_data_limit
            .unwrap_or_else(|| Duration::from_secs(5 * 60).max(interval.saturating_mul(3)))
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
