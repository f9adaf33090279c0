//! The capability manifest: for every stage that calls a plugin (and every shadow), what that
//! plugin may do in this runbook — which build, which network interfaces it imports, the hosts
//! it may reach, its request budget, memory, deadline and read-only folders. The host computes
//! it from the runbook's grants and the component itself, never from what the plugin says
//! alone. `plugins inspect` shows it, a run journals it (so its reports show it), and a UAT
//! approval records it: a change after the approval fails the UAT gate until re-approved.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::runbook::{Runbook, Stage};
use launch_runtime::capabilities::Grants;
use launch_runtime::{Catalog, Plugin};

/// One plugin's grant at one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Grant {
    pub stage: String,
    pub plugin: String,
    /// Called with the live plugin's inputs and journaled, never obeyed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    pub version: String,
    /// The build: sha256 of the component file, or `not installed`.
    pub sha256: String,
    /// For a plugin named by `oci://` reference: the reference at the manifest digest the
    /// build was fetched by (what an approval of it names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<String>,
    /// What the plugin asks for in `describe`.
    pub requested: Vec<String>,
    /// The network interfaces the component imports; none means no network, whatever hosts.
    pub network: Vec<String>,
    /// The environment whose site and API it may reach.
    pub environment: Option<String>,
    /// Hosts it may reach besides its environment's (`allow-hosts`), and the environment's
    /// when the runbook fixes them (an embedded target's port is chosen at start).
    pub hosts: Vec<String>,
    pub requests_per_call: usize,
    pub concurrent_requests: usize,
    pub request_timeout_ms: u64,
    pub response_bytes: usize,
    pub memory_bytes: usize,
    pub deadline_ms: u64,
    /// Folders it may read, relative to the runbook: `dist` (seen at `/dist`).
    pub files: Vec<String>,
}

/// What the manifest needs to know of a plugin's build.
pub struct Build {
    pub version: String,
    pub sha256: String,
    pub oci: Option<String>,
    pub requested: Vec<String>,
    pub network: Vec<String>,
}

impl Build {
    pub fn of(p: &Plugin) -> Build {
        Build {
            version: p.info.version.clone(),
            sha256: p.digest.clone(),
            oci: None,
            requested: p.info.capabilities.clone(),
            network: p.network.iter().map(|n| n.to_string()).collect(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub grants: Vec<Grant>,
}

impl Manifest {
    /// The manifest of every plugin the runbook calls, the builds taken from `catalog`.
    pub fn of_catalog(runbook: &Runbook, catalog: &Catalog) -> Manifest {
        Manifest::of(runbook, |name| {
            catalog.get(name).map(|p| Build {
                oci: catalog.pinned(name).map(str::to_string),
                ..Build::of(p)
            })
        })
    }

    /// The manifest of every plugin the runbook calls, each build looked up by name.
    pub fn of(runbook: &Runbook, build: impl Fn(&str) -> Option<Build>) -> Manifest {
        let mut grants = Vec::new();
        for stage in &runbook.stages {
            let shadows = stage.shadow.iter().map(|s| (s.get_ref().plugin(), true));
            for (name, shadow) in stage
                .plugin_name()
                .map(|p| (p, false))
                .into_iter()
                .chain(shadows)
            {
                grants.push(grant(runbook, stage, name, shadow, build(name)));
            }
        }
        Manifest { grants }
    }

    /// Only the grants of the plugin `name`.
    pub fn of_plugin(&self, name: &str) -> Manifest {
        Manifest {
            grants: self
                .grants
                .iter()
                .filter(|g| g.plugin == name)
                .cloned()
                .collect(),
        }
    }

    /// `sha256:HEX` of the manifest's JSON: what an approval names.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).expect("a manifest serializes");
        format!("sha256:{}", crate::run::digest(&json))
    }

    /// What changed since `before`, one line per grant and field, for people.
    pub fn changes_since(&self, before: &Manifest) -> Vec<String> {
        let key = |g: &Grant| (g.stage.clone(), g.plugin.clone(), g.shadow);
        let mut lines = Vec::new();
        for g in &self.grants {
            match before.grants.iter().find(|b| key(b) == key(g)) {
                None => lines.push(format!("{}: newly granted", who(g))),
                Some(b) => lines.extend(
                    field_changes(b, g)
                        .into_iter()
                        .map(|c| format!("{}: {c}", who(g))),
                ),
            }
        }
        for b in &before.grants {
            if !self.grants.iter().any(|g| key(g) == key(b)) {
                lines.push(format!("{}: no longer called", who(b)));
            }
        }
        lines
    }
}

fn who(g: &Grant) -> String {
    let shadow = if g.shadow { " (shadow)" } else { "" };
    format!("stage `{}`, plugin `{}`{shadow}", g.stage, g.plugin)
}

/// Each field of `now` that differs from `before`: a list as what was added and removed, a
/// value as old → new.
fn field_changes(before: &Grant, now: &Grant) -> Vec<String> {
    let (serde_json::Value::Object(b), serde_json::Value::Object(n)) = (
        serde_json::to_value(before).unwrap_or_default(),
        serde_json::to_value(now).unwrap_or_default(),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (field, new) in &n {
        let old = b.get(field).unwrap_or(&serde_json::Value::Null);
        if old == new {
            continue;
        }
        match (old.as_array(), new.as_array()) {
            (Some(o), Some(n)) => {
                let added: Vec<String> = n.iter().filter(|v| !o.contains(v)).map(show).collect();
                let removed: Vec<String> = o.iter().filter(|v| !n.contains(v)).map(show).collect();
                let mut parts = Vec::new();
                if !added.is_empty() {
                    parts.push(format!("now also {}", added.join(", ")));
                }
                if !removed.is_empty() {
                    parts.push(format!("no longer {}", removed.join(", ")));
                }
                out.push(format!("{field} {}", parts.join("; ")));
            }
            _ => out.push(format!("{field} {} → {}", show(old), show(new))),
        }
    }
    out
}

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "none".into(),
        other => other.to_string(),
    }
}

fn grant(
    runbook: &Runbook,
    stage: &Stage,
    plugin: &str,
    shadow: bool,
    build: Option<Build>,
) -> Grant {
    // The same defaults a call's sandbox gets (`Ctx::sandbox`): the manifest shows what runs.
    let defaults = Grants::default();
    let environment = stage.environment().map(str::to_string);
    let mut hosts: BTreeSet<String> = stage.allow_hosts.iter().cloned().collect();
    if let Some(env) = stage
        .environment()
        .and_then(|e| runbook.environments.get(e))
        && !env.is_embedded()
    {
        let urls: Vec<String> = env.url.iter().chain(env.api_url.iter()).cloned().collect();
        hosts.extend(crate::environment::url_hosts(&urls));
    }
    let files = stage
        .files
        .iter()
        .zip(runbook.read_only_dirs(stage))
        .map(|(f, d)| format!("{} (read-only, at {})", f.get_ref(), d.guest))
        .collect();
    let build = build.unwrap_or(Build {
        version: String::new(),
        sha256: "not installed".into(),
        oci: None,
        requested: Vec::new(),
        network: Vec::new(),
    });
    Grant {
        stage: stage.name.get_ref().clone(),
        plugin: plugin.to_string(),
        shadow,
        version: build.version,
        sha256: build.sha256,
        oci: build.oci,
        requested: build.requested,
        network: build.network,
        environment,
        hosts: hosts.into_iter().collect(),
        requests_per_call: defaults.http_max_requests,
        concurrent_requests: defaults.http_max_concurrency,
        request_timeout_ms: millis(defaults.http_timeout),
        response_bytes: defaults.http_max_body_bytes,
        memory_bytes: stage.memory.unwrap_or(runbook.defaults.memory),
        deadline_ms: millis(stage.deadline.unwrap_or(runbook.defaults.deadline)),
        files,
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn list(v: &[String], none: &str) -> String {
    if v.is_empty() {
        none.to_string()
    } else {
        v.join(", ")
    }
}

/// Where the grant's plugin can reach, in words: its network interfaces and their hosts.
pub fn reach(g: &Grant) -> String {
    if g.network.is_empty() {
        return "none (imports no network interface)".to_string();
    }
    let mut to: Vec<String> = g
        .environment
        .iter()
        .map(|e| format!("environment `{e}`"))
        .collect();
    to.extend(g.hosts.iter().cloned());
    format!("{} to {}", g.network.join(" + "), list(&to, "no host"))
}

/// The grant as lines for a terminal or a report.
pub fn describe(g: &Grant) -> Vec<(&'static str, String)> {
    vec![
        ("build", format!("{} sha256:{}", g.version, g.sha256)),
        ("requests", list(&g.requested, "nothing")),
        ("network", reach(g)),
        (
            "budget",
            format!(
                "{} request(s) per call, {} at once, {} ms each, {} response bytes",
                g.requests_per_call, g.concurrent_requests, g.request_timeout_ms, g.response_bytes
            ),
        ),
        ("memory", format!("{} MiB", g.memory_bytes >> 20)),
        ("deadline", format!("{} ms", g.deadline_ms)),
        ("files", list(&g.files, "none")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runbook(extra: &str) -> Runbook {
        let text = format!(
            r#"
[launch]
name = "t"
flag = "f"
[environments.staging]
target = "embedded"
[environments.prod]
url = "https://app.example.com"
api-url = "https://api.example.com:8443"
[[stage]]
name = "smoke"
plugin = "health-check"
environment = "staging"
{extra}
[[stage]]
name = "prod-smoke"
plugin = "health-check"
environment = "prod"
"#
        );
        Runbook::parse(&text, "t.toml").unwrap()
    }

    fn build(_: &str) -> Option<Build> {
        Some(Build {
            version: "1.0.0".into(),
            sha256: "aa".into(),
            oci: None,
            requested: vec!["http".into()],
            network: vec!["launch:plugin/http".into()],
        })
    }

    #[test]
    fn grants_come_from_the_runbook_and_the_build() {
        let m = Manifest::of(&runbook(r#"allow-hosts = ["cdn.example.com"]"#), build);
        assert_eq!(m.grants.len(), 2);
        assert_eq!(m.grants[0].hosts, ["cdn.example.com"]);
        // A real environment's addresses are fixed by the runbook, so they are in the grant.
        assert_eq!(
            m.grants[1].hosts,
            ["api.example.com:8443", "app.example.com"]
        );
        assert_eq!(
            m.grants[0].requests_per_call,
            Grants::default().http_max_requests
        );
    }

    #[test]
    fn a_changed_allow_list_changes_the_digest_and_says_how() {
        let before = Manifest::of(&runbook(""), build);
        let after = Manifest::of(&runbook(r#"allow-hosts = ["evil.example.com"]"#), build);
        assert_ne!(before.digest(), after.digest());
        assert_eq!(
            after.changes_since(&before),
            ["stage `smoke`, plugin `health-check`: hosts now also evil.example.com"]
        );
        // Reordering what is allowed is not a change.
        let a = Manifest::of(
            &runbook(r#"allow-hosts = ["a.example", "b.example"]"#),
            build,
        );
        let b = Manifest::of(
            &runbook(r#"allow-hosts = ["b.example", "a.example"]"#),
            build,
        );
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn a_new_build_and_a_new_memory_limit_are_changes() {
        let before = Manifest::of(&runbook(""), build);
        let after = Manifest::of(&runbook(r#"memory = "128MiB""#), |_| {
            Some(Build {
                sha256: "bb".into(),
                ..build("").unwrap()
            })
        });
        let changes = after.changes_since(&before);
        assert!(
            changes.iter().any(|c| c.contains("sha256 aa → bb")),
            "{changes:?}"
        );
        assert!(
            changes
                .iter()
                .any(|c| c.starts_with("stage `smoke`") && c.contains("memory-bytes")),
            "{changes:?}"
        );
    }
}
