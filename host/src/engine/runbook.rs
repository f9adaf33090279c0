//! The runbook: environments and the stages of a launch, read from TOML (`launch.toml`, or the
//! embedded default — the operator guide's 14-step playbook with compressed durations).
//! Mistakes are reported with the line they are on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// The embedded default runbook.
pub const DEFAULT_RUNBOOK: &str = include_str!("default-runbook.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Runbook {
    pub launch: Launch,
    pub environments: BTreeMap<String, Environment>,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(rename = "stage")]
    pub stages: Vec<Stage>,
    /// Where the runbook came from, for messages: a path, or `(embedded default)`.
    #[serde(skip)]
    pub source: String,
    #[serde(skip)]
    text: String,
}

#[derive(Debug, Deserialize)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Environment {
    /// `embedded` runs the StatusBoardV2 simulator; otherwise `url` and `api-url` are used.
    #[serde(default)]
    pub target: Option<String>,
    pub url: Option<String>,
    pub api_url: Option<String>,
    /// Where releases go: `s3://bucket/prefix` (real deploys); the run folder when absent.
    pub store: Option<String>,
    /// The CloudFront distribution in front of the store, invalidated after every deploy and
    /// full rollback.
    pub cloudfront: Option<String>,
    /// Where flags are moved: `file` (the run folder; default), `http` (the target's
    /// `/api/admin/feature-flags`), or `s3://bucket/path/flags.json` (a JSON object that a
    /// static site reads).
    pub flags: Option<String>,
}

impl Environment {
    pub fn is_embedded(&self) -> bool {
        self.target.as_deref() == Some("embedded")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Defaults {
    #[serde(default = "default_deadline", with = "duration")]
    pub deadline: Duration,
    #[serde(default = "default_memory", with = "bytes")]
    pub memory: usize,
    /// Probe request rate while monitoring or running a canary.
    #[serde(default = "default_rate")]
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
    pub decision: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Stage {
    pub name: Spanned<String>,
    /// A line for people; the name is used when absent.
    pub title: Option<String>,
    pub action: Option<Spanned<Action>>,
    /// The plugin (by its `describe` name) that decides this stage.
    pub plugin: Option<Spanned<String>>,
    pub environment: Option<Spanned<String>>,
    /// The plugin's config (a table, passed as JSON).
    pub config: Option<Spanned<toml::Table>>,
    #[serde(default)]
    pub on_fail: OnFail,
    /// Record the verdict but take no action on it.
    #[serde(default)]
    pub dry_run: bool,
    /// Hosts the plugin may reach besides the stage's environment (which is always granted).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    #[serde(default, with = "opt_duration")]
    pub deadline: Option<Duration>,
    #[serde(default, with = "opt_bytes")]
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
    #[serde(default, with = "opt_duration")]
    pub duration: Option<Duration>,
    /// Canary check interval / monitor window.
    #[serde(default, with = "opt_duration")]
    pub interval: Option<Duration>,
    /// UAT sign-offs recorded by the runbook (automated runs).
    #[serde(default)]
    pub signoffs: Vec<SignoffSpec>,
}

impl Stage {
    pub fn title(&self) -> &str {
        self.title.as_deref().unwrap_or(self.name.get_ref())
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

    /// Structural checks that need no plugins: unique names, known environments, one of
    /// action/plugin per stage, and the fields each action needs.
    fn check_shape(&self) -> Result<(), RunbookError> {
        if self.stages.is_empty() {
            return Err(RunbookError {
                source_name: self.source.clone(),
                line: 0,
                message: "the runbook has no [[stage]]".into(),
            });
        }
        for (name, env) in &self.environments {
            if !env.is_embedded() && (env.url.is_none() || env.api_url.is_none()) {
                return Err(RunbookError {
                    source_name: self.source.clone(),
                    line: 0,
                    message: format!(
                        "environment `{name}` needs `target = \"embedded\"` or both `url` and `api-url`"
                    ),
                });
            }
        }
        let mut seen = std::collections::HashSet::new();
        for stage in &self.stages {
            let at = stage.name.span().start;
            if !seen.insert(stage.name.get_ref().as_str()) {
                return Err(self.error_at(
                    at,
                    format!("stage `{}` is defined twice", stage.name.get_ref()),
                ));
            }
            if let Some(env) = &stage.environment
                && !self.environments.contains_key(env.get_ref())
            {
                let known: Vec<&str> = self.environments.keys().map(String::as_str).collect();
                return Err(self.error_at(
                    env.span().start,
                    format!(
                        "unknown environment `{}` (defined: {})",
                        env.get_ref(),
                        known.join(", ")
                    ),
                ));
            }
            match (&stage.action, &stage.plugin) {
                (None, None) => {
                    return Err(self.error_at(
                        at,
                        format!(
                            "stage `{}` needs an `action` or a `plugin`",
                            stage.name.get_ref()
                        ),
                    ));
                }
                (Some(a), Some(_)) if *a.get_ref() != Action::UatInit => {
                    return Err(self.error_at(a.span().start, format!("stage `{}` has both an `action` and a `plugin`; a stage is one or the other", stage.name.get_ref())));
                }
                _ => {}
            }
            if let Some(action) = &stage.action {
                let needs_env = matches!(
                    action.get_ref(),
                    Action::Deploy
                        | Action::Flag
                        | Action::Monitor
                        | Action::Rollback
                        | Action::RollbackDrill
                        | Action::VerifyRollback
                );
                if needs_env && stage.environment.is_none() {
                    return Err(self.error_at(
                        action.span().start,
                        format!(
                            "stage `{}`: this action needs an `environment`",
                            stage.name.get_ref()
                        ),
                    ));
                }
                if *action.get_ref() == Action::Flag && stage.percent.is_none_or(|p| p > 100) {
                    return Err(self.error_at(
                        action.span().start,
                        format!(
                            "stage `{}`: `flag` needs `percent` between 0 and 100",
                            stage.name.get_ref()
                        ),
                    ));
                }
                if *action.get_ref() == Action::UatInit && stage.plugin.is_none() {
                    return Err(self.error_at(
                        action.span().start,
                        format!(
                            "stage `{}`: `uat-init` needs the UAT `plugin`",
                            stage.name.get_ref()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Replaces `${NAME}` and `${NAME:-default}` outside comments; `$${` is a literal `${`. A
/// variable that is unset (and has no default) is an error at its line, naming it. Values may
/// not contain quotes, backslashes or newlines, so a variable cannot change the runbook's shape.
pub fn expand_vars(
    text: &str,
    source: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, RunbookError> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let error = |message: String| RunbookError {
            source_name: source.to_string(),
            line: i + 1,
            message,
        };
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("${") {
            if rest[..at].ends_with('$') {
                out.push_str(&rest[..at - 1]);
                out.push_str("${");
                rest = &rest[at + 2..];
                continue;
            }
            out.push_str(&rest[..at]);
            let Some(end) = rest[at..].find('}') else {
                return Err(error("`${` without a closing `}`".into()));
            };
            let inner = &rest[at + 2..at + end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(error(format!("`${{{inner}}}` is not a variable name")));
            }
            let value = match (lookup(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => v,
                (None, Some(d)) => d.to_string(),
                (None, None) => {
                    return Err(error(format!(
                        "`${{{name}}}` is not set; export {name}=... (or write `${{{name}:-default}}`)"
                    )));
                }
            };
            if value.contains(['"', '\\', '\n', '\r']) {
                return Err(error(format!(
                    "`${{{name}}}` holds a quote, backslash or newline, which a runbook value cannot take"
                )));
            }
            out.push_str(&value);
            rest = &rest[at + end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{s}` is not a duration ({e}); write e.g. \"500ms\", \"10s\", \"5m\""
            ))
        })
    }
}

mod opt_duration {
    use std::time::Duration;

    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}

mod bytes {
    use serde::{Deserialize, Deserializer};

    pub fn parse(s: &str) -> Option<usize> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(split);
        let n: usize = n.parse().ok()?;
        let mult = match unit.trim() {
            "" | "B" => 1,
            "KiB" | "K" => 1 << 10,
            "MiB" | "M" => 1 << 20,
            "GiB" | "G" => 1 << 30,
            _ => return None,
        };
        n.checked_mul(mult)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("`{s}` is not a size; write e.g. \"64MiB\""))
        })
    }
}

mod opt_bytes {
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        super::bytes::deserialize(d).map(Some)
    }
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

    #[test]
    fn variables_expand_and_a_missing_one_names_its_line() {
        let vars = |n: &str| (n == "S3_BUCKET").then(|| "edgar-site".to_string());
        let text = "# ${IGNORED}\nstore = \"s3://${S3_BUCKET}/staging\"\nurl = \"${STAGING_URL:-http://localhost}\"\nraw = \"$${x}\"\n";
        let out = expand_vars(text, "launch.toml", vars).unwrap();
        assert_eq!(
            out,
            "# ${IGNORED}\nstore = \"s3://edgar-site/staging\"\nurl = \"http://localhost\"\nraw = \"${x}\"\n"
        );
        let e = expand_vars("a = 1\nurl = \"${PROD_URL}\"\n", "launch.toml", vars).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("export PROD_URL="), "{e}");
        let hostile = |_: &str| Some("x\"\n[launch]".to_string());
        assert!(expand_vars("u = \"${A}\"", "l", hostile).is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(bytes::parse("64MiB"), Some(64 << 20));
        assert_eq!(bytes::parse("12"), Some(12));
        assert_eq!(bytes::parse("3 parsecs"), None);
    }
}
