//! Operator commands (`deploy staging`, `smoke`, `canary promote 50`, `rollback full`...) run
//! as small runs: each derives a runbook from the workspace's — the stages of it that do the
//! command's job, or stages written for the command — so every command gets a run id, a
//! journal and reports like a full launch, is resumable, and acts on the workspace's
//! environments (embedded targets keep their state in `<workspace>/env/`).

use anyhow::Context;
use toml::{Table, Value};

use super::runbook::Runbook;
use crate::runtime::{Catalog, Role};

/// A runbook derived for one command.
pub struct Derived {
    pub text: String,
    pub source: String,
}

/// One stage of the workspace runbook, as a TOML table, with what a command picks it by.
pub struct StageView<'a> {
    pub table: &'a Table,
    pub name: &'a str,
    pub action: Option<&'a str>,
    pub environment: Option<&'a str>,
    /// The role of the stage's plugin, when the plugin is installed.
    pub role: Option<Role>,
}

/// Builds the runbook of a command: the workspace runbook's launch, environments and
/// defaults, with the stages written for the command (`first`) followed by the stages of the
/// runbook that `pick` keeps (possibly edited). Fails, naming `what`, when no stage remains.
pub fn derive(
    text: &str,
    source: &str,
    command: &str,
    catalog: &Catalog,
    mut pick: impl FnMut(&StageView) -> Option<Table>,
    first: Vec<Table>,
    what: &str,
) -> anyhow::Result<Derived> {
    // Validate the original first, so its errors carry its own lines.
    Runbook::parse(text, source)?;
    let mut doc: Table =
        toml::from_str(text).with_context(|| format!("{source}: not a TOML document"))?;
    let stages = match doc.remove("stage") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let mut chosen: Vec<Value> = first.into_iter().map(Value::Table).collect();
    for stage in &stages {
        let Some(table) = stage.as_table() else {
            continue;
        };
        let get = |k: &str| table.get(k).and_then(Value::as_str);
        let view = StageView {
            table,
            name: get("name").unwrap_or(""),
            action: get("action"),
            environment: get("environment"),
            role: get("plugin").and_then(|p| catalog.get(p)).map(|p| p.role()),
        };
        if let Some(t) = pick(&view) {
            chosen.push(Value::Table(t));
        }
    }
    anyhow::ensure!(
        !chosen.is_empty(),
        "{source} has no stage that {what}; add one to the runbook"
    );
    // Only the environments the command touches are opened: rolling back production must not
    // depend on staging being reachable. A stage bound to none (preflight) needs them all.
    let used: Option<Vec<&str>> = chosen
        .iter()
        .map(|st| st.get("environment").and_then(Value::as_str))
        .collect();
    if let (Some(used), Some(Value::Table(envs))) = (used, doc.get_mut("environments")) {
        envs.retain(|name, _| used.contains(&name));
    }
    doc.insert("stage".into(), Value::Array(chosen));
    let text = format!(
        "# Derived from {source} for `launch-host {command}`.\n{}",
        toml::to_string(&doc).context("writing the derived runbook")?
    );
    Ok(Derived {
        text,
        source: format!("{source} → `{command}`"),
    })
}

/// A stage table from `key = value` pairs.
pub fn stage(pairs: &[(&str, Value)]) -> Table {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

pub fn s(v: &str) -> Value {
    Value::String(v.to_string())
}
