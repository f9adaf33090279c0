//! Structural checks of a parsed runbook that need no plugins: unique stage names, known
//! environments, one of action/plugin per stage, the fields each action needs, and stores and
//! flag providers of a known kind — each error at its line.

use toml::Spanned;

use super::{Action, Environment, Runbook, RunbookError, limits};

impl Runbook {
    /// An environment's store and flag provider are of a known kind, so a run never finds out
    /// after its folder exists.
    fn check_environment(&self, name: &str, env: &Environment) -> Result<(), RunbookError> {
        if let Some(store) = &env.store {
            if !store.get_ref().starts_with("s3://") {
                return Err(self.error_at(
                    store.span().start,
                    format!(
                        "environment `{name}`: store `{}` is not an s3:// URL (write s3://bucket/prefix, or drop `store` to keep releases locally)",
                        store.get_ref()
                    ),
                ));
            }
            if env.is_embedded() {
                return Err(self.error_at(
                    store.span().start,
                    format!("environment `{name}`: an embedded target serves its own local store; drop `store` or point `url` at the real site"),
                ));
            }
        }
        if !env.is_embedded() {
            let embedded_only = [
                env.listen.as_ref().map(|l| (l.span().start, "listen")),
                env.traffic.as_ref().map(|t| (t.span().start, "traffic")),
            ];
            if let Some((at, key)) = embedded_only.into_iter().flatten().next() {
                return Err(self.error_at(
                    at,
                    format!("environment `{name}`: `{key}` is for embedded targets (`target = \"embedded\"`); a real site's address and traffic are its own"),
                ));
            }
        }
        if let Some(listen) = &env.listen {
            let ok = listen
                .get_ref()
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback());
            if !ok {
                return Err(self.error_at(
                    listen.span().start,
                    format!(
                        "environment `{name}`: listen `{}` is not a loopback address and port (write e.g. \"127.0.0.1:9464\")",
                        listen.get_ref()
                    ),
                ));
            }
        }
        if let Some(metrics) = &env.metrics {
            self.check_metrics(name, metrics)?;
        }
        self.check_flags(name, env)?;
        Ok(())
    }

    /// Each channel has one http(s) webhook, given through a secret-named variable: a URL
    /// written in the runbook would be copied into every run folder, and one in a variable
    /// whose name does not look secret would not be masked.
    fn check_notify(&self, notify: &super::Notify) -> Result<(), RunbookError> {
        for (channel, spec) in &notify.channels {
            let Some((url, _)) = spec.target() else {
                let at = spec
                    .slack
                    .as_ref()
                    .or(spec.webhook.as_ref())
                    .map_or(0, |u| u.span().start);
                return Err(self.error_at(
                    at,
                    format!("notify channel `{}`: give exactly one of `slack = \"${{VAR}}\"` or `webhook = \"${{VAR}}\"`", channel.word()),
                ));
            };
            let at = url.span().start;
            let value = url.get_ref();
            if !reqwest::Url::parse(value).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Err(self.error_at(
                    at,
                    format!(
                        "notify channel `{}`: the webhook is not an http(s) URL",
                        channel.word()
                    ),
                ));
            }
            if crate::redact::text(value) == value.as_str() {
                return Err(self.error_at(
                    at,
                    format!(
                        "notify channel `{}`: a webhook URL is a secret; write it as ${{VAR}} with a variable whose name says so (e.g. SLACK_{}_WEBHOOK), or list the variable in {}",
                        channel.word(),
                        channel.word().to_ascii_uppercase().replace('-', "_"),
                        crate::redact::NAMES_VAR
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A Prometheus source has a URL, endpoints and no empty query.
    fn check_metrics(&self, name: &str, m: &super::Metrics) -> Result<(), RunbookError> {
        use launch_targets::metrics::Source;
        let at = m.source.as_ref().map_or(0, |s| s.span().start);
        if !super::Metrics::uses(Some(m), Source::Prometheus) {
            if let Some(p) = &m.prometheus {
                return Err(self.error_at(
                    p.span().start,
                    format!("environment `{name}`: `prometheus` is set but the metrics source is the probe only; add it: source = [\"probe\", \"prometheus\"]"),
                ));
            }
            return Ok(());
        }
        let Some(url) = &m.prometheus else {
            return Err(self.error_at(
                at,
                format!("environment `{name}`: the prometheus source needs the server: prometheus = \"http://127.0.0.1:9090\""),
            ));
        };
        let parsed = reqwest::Url::parse(url.get_ref());
        if !parsed.is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            return Err(self.error_at(
                url.span().start,
                format!(
                    "environment `{name}`: prometheus `{}` is not an http(s) URL",
                    url.get_ref()
                ),
            ));
        }
        if m.endpoints.is_empty() {
            return Err(self.error_at(
                at,
                format!("environment `{name}`: metrics.endpoints is empty; name each endpoint and its route label"),
            ));
        }
        let q = &m.queries;
        for (key, text) in [
            ("requests", &q.requests),
            ("errors", &q.errors),
            ("conflicts", &q.conflicts),
            ("p50-ms", &q.p50_ms),
            ("p95-ms", &q.p95_ms),
            ("p99-ms", &q.p99_ms),
            ("avg-ms", &q.avg_ms),
            ("max-ms", &q.max_ms),
        ] {
            if text.trim().is_empty() {
                return Err(self.error_at(
                    at,
                    format!("environment `{name}`: metrics.queries.{key} is empty; drop it to use the default"),
                ));
            }
        }
        Ok(())
    }

    /// Structural checks that need no plugins: unique names, known environments, one of
    /// action/plugin per stage, and the fields each action needs.
    pub(super) fn check_shape(&self) -> Result<(), RunbookError> {
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
        for (name, env) in &self.environments {
            self.check_environment(name, env)?;
        }
        if let Some(notify) = &self.notify {
            self.check_notify(notify)?;
        }
        self.check_counts()?;
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
            if let Some(p) = &stage.plugin
                && launch_registry::PluginRef::is_oci(p.get_ref())
                && let Err(e) = launch_registry::PluginRef::parse(p.get_ref())
            {
                return Err(self.error_at(
                    p.span().start,
                    format!("stage `{}`: {e}", stage.name.get_ref()),
                ));
            }
            if let Some(config) = &stage.config {
                self.check_steps(config)?;
            }
            if let (Some(role), None) = (&stage.role, &stage.plugin) {
                return Err(self.error_at(
                    role.span().start,
                    format!(
                        "stage `{}`: `role` says what the stage's plugin must play; this stage has no plugin",
                        stage.name.get_ref()
                    ),
                ));
            }
            self.check_files(stage)?;
            if let (Some(first), None) = (stage.files.first(), &stage.plugin) {
                return Err(self.error_at(
                    first.span().start,
                    format!(
                        "stage `{}`: `files` grants folders to a plugin; this stage has none",
                        stage.name.get_ref()
                    ),
                ));
            }
            if let Some(pin) = &stage.digest {
                let hex = pin.get_ref().trim_start_matches("sha256:");
                let well_formed = hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if stage.plugin.is_none() || !well_formed {
                    return Err(self.error_at(
                        pin.span().start,
                        format!(
                            "stage `{}`: `digest` pins a plugin stage's build: write digest = \"sha256:<64 lowercase hex digits>\" (`launch-host plugins list --output json` shows each plugin's)",
                            stage.name.get_ref()
                        ),
                    ));
                }
            }
            self.check_shadows(stage)?;
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

impl Runbook {
    /// Lists written by hand stay short; more is a generated file gone wrong.
    fn check_counts(&self) -> Result<(), RunbookError> {
        if self.stages.len() > limits::MAX_STAGES {
            let at = self.stages[limits::MAX_STAGES].name.span().start;
            return Err(self.error_at(
                at,
                format!(
                    "the runbook has {} stages; at most {} are allowed",
                    self.stages.len(),
                    limits::MAX_STAGES
                ),
            ));
        }
        // Each list is named at its own line (the key, or the stage it belongs to).
        let key_at = |key: &str| self.text.find(key).unwrap_or(0);
        let lists = [(
            "component-flags".to_string(),
            self.launch.component_flags.len(),
            key_at("component-flags"),
        )]
        .into_iter()
        .chain(self.stages.iter().map(|s| {
            (
                format!("stage `{}`: signoffs", s.name.get_ref()),
                s.signoffs.len(),
                s.name.span().start,
            )
        }));
        for (what, n, at) in lists {
            if n > limits::MAX_LIST {
                return Err(self.error_at(
                    at,
                    format!(
                        "{what} has {n} entries; at most {} are allowed",
                        limits::MAX_LIST
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A canary's `steps` are percentages from 0 to 100, each above the one before.
    fn check_steps(
        &self,
        config: &Spanned<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<(), RunbookError> {
        let Some(steps) = config.get_ref().get("steps") else {
            return Ok(());
        };
        let at = config.span().start;
        let bad = |why: String| {
            self.error_at(
                at,
                format!("config.steps: {why}; write increasing percentages, e.g. steps = [10, 30, 50, 100]"),
            )
        };
        let serde_json::Value::Array(steps) = steps else {
            return Err(bad(format!("`{steps}` is not a list")));
        };
        if steps.is_empty() || steps.len() > limits::MAX_LIST {
            return Err(bad(format!("{} steps", steps.len())));
        }
        let mut last: Option<u64> = None;
        for step in steps {
            let Some(p) = step.as_u64().filter(|p| *p <= 100) else {
                return Err(bad(format!("`{step}` is not a percentage from 0 to 100")));
            };
            if last.is_some_and(|l| p <= l) {
                return Err(bad(format!(
                    "{p} does not come after {}",
                    last.unwrap_or(0)
                )));
            }
            last = Some(p);
        }
        Ok(())
    }

    /// A stage's `files`: a short list of folders, each a plain path inside the runbook's
    /// folder (no absolute path, no `..`, not empty, not the folder itself), each named once.
    /// Where a name leads on disk (a symlink out) is checked before the run (`granted`).
    fn check_files(&self, stage: &super::Stage) -> Result<(), RunbookError> {
        use std::path::{Component, Path};
        if stage.files.len() > limits::MAX_FILES {
            return Err(self.error_at(
                stage.files[limits::MAX_FILES].span().start,
                format!(
                    "stage `{}`: files grants {} folders; at most {} are allowed",
                    stage.name.get_ref(),
                    stage.files.len(),
                    limits::MAX_FILES
                ),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for f in &stage.files {
            let written = f.get_ref();
            let path = Path::new(written);
            let why = if written.trim().is_empty() {
                Some("is empty")
            } else if path.has_root() || written.starts_with('~') {
                Some("is an absolute path")
            } else if path.components().any(|c| c == Component::ParentDir) {
                Some("climbs out with `..`")
            } else if path.components().all(|c| c == Component::CurDir) {
                Some("is the runbook's folder itself")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(self.error_at(
                    f.span().start,
                    format!(
                        "stage `{}`: files: `{written}` {why}; grant a folder inside the runbook's folder by its relative path, e.g. files = [\"dist\"]",
                        stage.name.get_ref()
                    ),
                ));
            }
            let normal: std::path::PathBuf = path
                .components()
                .filter(|c| *c != Component::CurDir)
                .collect();
            if !seen.insert(normal) {
                return Err(self.error_at(
                    f.span().start,
                    format!(
                        "stage `{}`: files: `{written}` is granted twice",
                        stage.name.get_ref()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Shadows go on plugin stages, each once, none the live plugin itself.
    fn check_shadows(&self, stage: &super::Stage) -> Result<(), RunbookError> {
        let mut seen = std::collections::HashSet::new();
        if stage.shadow.len() > limits::MAX_SHADOWS {
            let at = stage.shadow[limits::MAX_SHADOWS].span().start;
            return Err(self.error_at(
                at,
                format!("at most {} shadows per stage", limits::MAX_SHADOWS),
            ));
        }
        for shadow in &stage.shadow {
            let (name, at) = (shadow.get_ref().plugin(), shadow.span().start);
            let Some(live) = stage.plugin_name() else {
                return Err(self.error_at(
                    at,
                    format!(
                        "stage `{}`: `shadow` needs a live `plugin` whose inputs it shares",
                        stage.name.get_ref()
                    ),
                ));
            };
            if name == live || !seen.insert(name) {
                return Err(self.error_at(
                    at,
                    format!(
                        "stage `{}`: shadow `{}` is the live plugin or named twice",
                        stage.name.get_ref(),
                        name
                    ),
                ));
            }
        }
        Ok(())
    }
}
