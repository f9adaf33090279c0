//! Which builds of its plugins a launch may run: `plugins.lock` beside the plugins (written by
//! `launch-host plugins lock`) and a stage's own `digest` pin. With either present, a plugin
//! whose sha256 differs is refused before the first effect, naming both digests, the file and
//! the command that accepts the new build; `validate` and pre-flight report the same drift.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runbook::Runbook;
use launch_runtime::{Catalog, Plugin};

/// The lock's file name, in the plugins folder.
pub const LOCK_FILE: &str = "plugins.lock";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// The format's version.
    pub version: u32,
    #[serde(rename = "plugin", default)]
    pub plugins: Vec<Locked>,
}

/// One plugin as it was accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Locked {
    pub name: String,
    pub version: String,
    pub role: String,
    pub sha256: String,
    /// The contract (WIT package) version it was built against.
    pub contract: String,
    /// What it asks for (`describe`): the host grants no more than the runbook allows.
    pub capabilities: Vec<String>,
    /// For a plugin named by `oci://` reference (its `name`): the manifest digest the tag
    /// named when locked, the only build a run fetches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

impl Locked {
    fn of(p: &Plugin) -> Locked {
        Locked {
            name: p.info.name.clone(),
            version: p.info.version.clone(),
            role: p.info.role.to_string(),
            sha256: p.digest.clone(),
            contract: p.contract.clone(),
            capabilities: p.info.capabilities.clone(),
            manifest: None,
        }
    }
}

pub fn lock_path(plugins_dir: &Path) -> PathBuf {
    plugins_dir.join(LOCK_FILE)
}

/// The names of the plugins a runbook uses: its stages' and their shadows', in order.
pub fn used(runbook: &Runbook) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for stage in &runbook.stages {
        let shadows = stage.shadow.iter().map(|s| s.get_ref().plugin());
        for name in stage.plugin_name().into_iter().chain(shadows) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// Writes the lock of the plugins `runbook` uses; returns where and what. A used plugin that
/// is not in the catalog is an error: a lock names only what exists.
pub fn write(runbook: &Runbook, catalog: &Catalog) -> anyhow::Result<(PathBuf, Lock)> {
    let mut plugins = Vec::new();
    for name in used(runbook) {
        let p = catalog.get(name).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: the runbook uses `{name}`, which is not in {}",
                runbook.source,
                catalog.dir.display()
            )
        })?;
        let mut locked = Locked::of(p);
        if let Some(pinned) = catalog.pinned(name) {
            locked.name = name.to_string();
            locked.manifest = launch_registry::PluginRef::parse(pinned)
                .ok()
                .and_then(|r| r.digest().map(str::to_string));
        }
        plugins.push(locked);
    }
    let lock = Lock {
        version: 1,
        plugins,
    };
    let text = format!(
        "# Written by `launch-host plugins lock`: a run refuses a plugin whose sha256 differs, and\n# fetches an oci:// plugin by the manifest digest recorded here, whatever its tag names now.\n# Accept new builds by running it again.\n{}",
        toml::to_string(&lock)?
    );
    let path = lock_path(&catalog.dir);
    std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok((path, lock))
}

/// The lock in the catalog's folder, if there is one.
pub fn read(catalog: &Catalog) -> Result<Option<(PathBuf, Lock)>, String> {
    let path = lock_path(&catalog.dir);
    if !path.exists() && path.symlink_metadata().is_err() {
        return Ok(None);
    }
    let text = crate::files::read_to_string(&path, crate::files::STATE, "the plugins lock")
        .map_err(|e| format!("{e:#}"))?;
    let lock: Lock = toml::from_str(&text).map_err(|e| {
        format!(
            "{}: not a plugins lock ({e}); write it again with `launch-host plugins lock`",
            path.display()
        )
    })?;
    Ok(Some((path, lock)))
}

/// `sha256:HEX` of the lock file in the catalog's folder, if there is one.
pub fn lock_digest(catalog: &Catalog) -> Option<String> {
    let bytes = crate::files::read(
        &lock_path(&catalog.dir),
        crate::files::STATE,
        "the plugins lock",
    )
    .ok()?;
    Some(format!("sha256:{}", crate::run::digest(&bytes)))
}

/// The command that writes the lock again, as the operator would type it.
pub fn relock_command(runbook: &Runbook, catalog: &Catalog) -> String {
    format!(
        "`launch-host plugins lock --plugins {}{}`",
        catalog.dir.display(),
        match runbook.source.as_str() {
            s if s.starts_with('(') => String::new(),
            s => format!(" --runbook {s}"),
        }
    )
}

/// Every plugin the runbook uses that its lock or its stage's pin does not allow, each a
/// problem naming both digests, the file and the fix.
pub fn check(runbook: &Runbook, catalog: &Catalog) -> Vec<String> {
    let mut problems = Vec::new();
    let relock = relock_command(runbook, catalog);
    for stage in &runbook.stages {
        let (Some(pin), Some(name)) = (&stage.digest, stage.plugin_name()) else {
            continue;
        };
        let Some(p) = catalog.get(name) else { continue };
        let pinned = pin.get_ref().trim_start_matches("sha256:");
        if p.digest != pinned {
            let at = runbook.error_at(pin.span().start, format!(
                "stage `{}`: plugin `{name}` is pinned to sha256 {pinned}, but {} has sha256 {}; restore the pinned build, or pin the new one",
                stage.name.get_ref(),
                p.path.display(),
                p.digest
            ));
            problems.push(at.to_string());
        }
    }
    let (path, lock) = match read(catalog) {
        Ok(Some(found)) => found,
        Ok(None) => return problems,
        Err(e) => {
            problems.push(e);
            return problems;
        }
    };
    for name in used(runbook) {
        let Some(p) = catalog.get(name) else { continue };
        match lock.plugins.iter().find(|l| l.name == name) {
            None => problems.push(format!(
                "{}: plugin `{name}` is used by the runbook but not locked; lock it with {relock}",
                path.display()
            )),
            Some(l) if l.sha256 != p.digest => problems.push(format!(
                "{}: plugin `{name}` is locked at sha256 {}, but {} has sha256 {}; restore the locked build, or accept this one with {relock}",
                path.display(),
                l.sha256,
                p.path.display(),
                p.digest
            )),
            Some(_) => {}
        }
    }
    problems
}
