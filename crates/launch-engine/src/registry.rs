//! Plugins a runbook names by registry reference (`plugin = "oci://HOST/NS/NAME:1.2.0"`).
//!
//! A run fetches by digest only: the stage's own `@sha256:…`, else the manifest digest
//! `plugins lock` recorded for that reference. A tag is read from the registry only by
//! `plugins lock` (and `plugins pull`), which is where an operator accepts a new build; a tag
//! moved afterwards changes nothing a run does. What was pulled is cached by digest, so runs
//! after the first need no registry, and every byte is checked against the digest that named
//! it. A pulled plugin's signature (an OCI referrer) is put beside it in the cache, so
//! `[trust]` judges it exactly as it judges a plugin of the folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use launch_registry::package::{self as pkg, Package};
use launch_registry::{Cache, Cached, PluginRef, Pushed, Registry};
use launch_runtime::{Catalog, Referenced, Runtime};

use crate::runbook::Runbook;
use crate::trust::{self, Signed};

/// Which digest a reference resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// The stage's own digest, else the lock's: what runs and `validate` use.
    Locked,
    /// What its tag names in the registry now: what `plugins lock` records.
    Latest,
}

/// What resolving a runbook's references found.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Each a reference that could not be resolved, fetched or loaded, with the fix.
    pub problems: Vec<String>,
    /// For people: pulls made, tags that moved since the lock.
    pub notes: Vec<String>,
}

fn cache() -> anyhow::Result<Cache> {
    launch_registry::cache::default_dir()
        .map(Cache::new)
        .context("no cache folder for pulled plugins: set LAUNCH_HOST_CACHE_DIR")
}

/// The plugin at `pinned` (a reference at a digest): from the cache, else pulled and cached.
/// Returns it and whether it was pulled now.
pub async fn fetch(pinned: &PluginRef) -> anyhow::Result<(Cached, bool)> {
    let digest = pinned.digest().context("a run fetches by digest only")?;
    let cache = cache()?;
    if let Some(hit) = cache.get(digest) {
        return Ok((hit, false));
    }
    let pulled = Registry::new(pinned).pull(pinned).await?;
    // Beside the component goes a signature that is one of this build (the first, when
    // several keys signed it); `[trust]` then decides whether its key counts.
    let sha = pulled.layer_digest.trim_start_matches("sha256:");
    let signature = pulled
        .signatures
        .iter()
        .find(|pem| matches!(trust::signature_of(pem, sha), Signed::By(_)));
    Ok((cache.put(&pulled, signature.map(String::as_str))?, true))
}

/// Resolves, fetches and loads every `oci://` plugin `runbook` uses into `catalog`.
pub async fn resolve(
    runtime: &Runtime,
    runbook: &Runbook,
    catalog: &mut Catalog,
    mode: Resolve,
) -> Resolution {
    let mut out = Resolution::default();
    // The manifest digests the lock in the catalog's folder records, by reference; read once.
    let locked: Vec<(String, String)> = match crate::pins::read(catalog) {
        Ok(Some((_, lock))) => lock
            .plugins
            .into_iter()
            .filter_map(|l| Some((l.name, l.manifest?)))
            .collect(),
        _ => Vec::new(),
    };
    for name in crate::pins::used(runbook) {
        if !PluginRef::is_oci(name) || catalog.get(name).is_some() {
            continue;
        }
        let locked = locked
            .iter()
            .find(|(reference, _)| reference == name)
            .map(|(_, digest)| digest.clone());
        match resolve_one(
            runtime,
            runbook,
            catalog,
            name,
            locked,
            mode,
            &mut out.notes,
        )
        .await
        {
            Ok(referenced) => catalog.referenced.push(referenced),
            Err(e) => out.problems.push(format!("plugin `{name}`: {e:#}")),
        }
    }
    out
}

async fn resolve_one(
    runtime: &Runtime,
    runbook: &Runbook,
    catalog: &Catalog,
    name: &str,
    locked: Option<String>,
    mode: Resolve,
    notes: &mut Vec<String>,
) -> anyhow::Result<Referenced> {
    let reference = PluginRef::parse(name)?;
    let digest = match (reference.digest(), mode) {
        (Some(d), _) => d.to_string(),
        (None, Resolve::Latest) => {
            let now = Registry::new(&reference).resolve(&reference).await?;
            if let Some(before) = locked.filter(|b| *b != now) {
                notes.push(format!("{name}: the tag moved from {before} to {now}"));
            }
            now
        }
        (None, Resolve::Locked) => locked.with_context(|| {
            format!(
                "a run fetches by digest only, and {} pins no digest for this tag; resolve it with {}, or name it …@sha256:… in the runbook",
                crate::pins::lock_path(&catalog.dir).display(),
                crate::pins::relock_command(runbook, catalog)
            )
        })?,
    };
    let pinned = reference.at(&digest);
    let (cached, pulled_now) = fetch(&pinned).await?;
    if pulled_now {
        notes.push(format!("pulled {pinned}"));
    }
    let plugin = runtime
        .load(&cached.wasm)
        .await
        .with_context(|| format!("{pinned} is not a plugin"))?;
    Ok(Referenced {
        reference: name.to_string(),
        pinned: pinned.to_string(),
        plugin,
    })
}

/// `runtime.discover(dir)` and then the runbook's references, resolved from the lock; any
/// reference that cannot be had is an error naming each.
pub async fn catalog(runtime: &Runtime, dir: &Path, runbook: &Runbook) -> anyhow::Result<Catalog> {
    let mut catalog = runtime.discover(dir).await?;
    let found = resolve(runtime, runbook, &mut catalog, Resolve::Locked).await;
    anyhow::ensure!(
        found.problems.is_empty(),
        "{}: {}",
        runbook.source,
        found.problems.join("; ")
    );
    Ok(catalog)
}

/// What `plugins push` did.
pub struct Published {
    pub name: String,
    pub version: String,
    pub pushed: Pushed,
    /// The signer's key fingerprint, when the component was signed.
    pub signed_by: Option<String>,
    pub credentials: String,
}

/// Publishes the plugin `file` at `reference` (a tag), with its signature when it has one.
pub async fn push(
    runtime: &Runtime,
    file: &Path,
    reference: &PluginRef,
) -> anyhow::Result<Published> {
    let plugin = runtime
        .load(file)
        .await
        .with_context(|| format!("{} is not a plugin", file.display()))?;
    let inspection = runtime.inspect(file).await?;
    let wasm = crate::files::read(
        file,
        launch_registry::client::COMPONENT_MAX,
        "the component",
    )?;
    let (signature, signed_by) = match trust::signature(file, &plugin.digest) {
        Signed::Unsigned => (None, None),
        Signed::By(fp) => (
            Some(crate::files::read_to_string(
                &trust::sig_path(file),
                crate::files::KEY,
                "the signature",
            )?),
            Some(fp),
        ),
        Signed::Bad(why) => anyhow::bail!(
            "{}: {why}; sign it again with `launch-host plugins sign {} --key KEY`, or remove {}",
            file.display(),
            file.display(),
            trust::sig_path(file).display()
        ),
    };
    let info = &plugin.info;
    let annotations = BTreeMap::from([
        (pkg::TITLE.to_string(), info.name.clone()),
        (pkg::VERSION.to_string(), info.version.clone()),
        (pkg::DESCRIPTION.to_string(), info.description.clone()),
        (
            pkg::CREATED.to_string(),
            crate::lock::rfc3339(crate::journal::now_ms()),
        ),
        (pkg::ROLE.to_string(), info.role.to_string()),
        (pkg::CONTRACT.to_string(), plugin.contract.clone()),
        (pkg::CAPABILITIES.to_string(), info.capabilities.join(",")),
    ]);
    let package = Package {
        wasm,
        imports: inspection.imports.clone(),
        exports: inspection.exports.clone(),
        annotations,
        signature,
    };
    let registry = Registry::new(reference);
    let pushed = registry.push(reference, &package).await?;
    Ok(Published {
        name: info.name.clone(),
        version: info.version.clone(),
        pushed,
        signed_by,
        credentials: registry.credentials_source().to_string(),
    })
}

/// What `plugins pull` did.
pub struct Fetched {
    pub pinned: PluginRef,
    pub pulled_now: bool,
    pub cached: Cached,
    /// Where it was copied (`--plugins DIR`), with its signature beside it.
    pub installed: Option<PathBuf>,
}

/// Pulls `reference` (a tag is resolved now) into the cache, compiles it there (where the
/// author waits anyway, not at the first run that calls it; a component that is not a plugin
/// is said here) and, with `into`, copies it there as `NAME.wasm` (its title annotation, else
/// the repository's last segment) with its signature beside it.
pub async fn pull(
    runtime: &Runtime,
    reference: &PluginRef,
    into: Option<&Path>,
) -> anyhow::Result<Fetched> {
    let digest = Registry::new(reference).resolve(reference).await?;
    let pinned = reference.at(&digest);
    let (cached, pulled_now) = fetch(&pinned).await?;
    runtime
        .load(&cached.wasm)
        .await
        .with_context(|| format!("{pinned} is not a plugin"))?;
    let installed = match into {
        None => None,
        Some(dir) => {
            let title = cached
                .entry
                .annotations
                .get(pkg::TITLE)
                .filter(|t| is_file_name(t))
                .map_or(reference.name(), String::as_str);
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let to = dir.join(format!("{title}.wasm"));
            std::fs::copy(&cached.wasm, &to)
                .with_context(|| format!("writing {}", to.display()))?;
            let sig = trust::sig_path(&cached.wasm);
            if sig.exists() {
                std::fs::copy(&sig, trust::sig_path(&to))?;
            } else {
                // A stale signature of another build would make `[trust]` call this one bad.
                let _ = std::fs::remove_file(trust::sig_path(&to));
            }
            Some(to)
        }
    };
    Ok(Fetched {
        pinned,
        pulled_now,
        cached,
        installed,
    })
}

/// A title safe as a file name: no separator, no dot-dot, nothing hidden.
fn is_file_name(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with('.')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_title_becomes_a_file_name_only_when_it_cannot_leave_the_folder() {
        assert!(super::is_file_name("canary-steps"));
        assert!(super::is_file_name("error_budget.v2"));
        for hostile in [
            "",
            "..",
            ".hidden",
            "../etc/passwd",
            "a/b",
            "a\\b",
            "x\0y",
            &"a".repeat(129),
        ] {
            assert!(!super::is_file_name(hostile), "{hostile:?}");
        }
    }
}
