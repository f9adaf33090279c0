//! UAT data of a workspace (or run): the checklist the plugin defines, results (automated probes
//! and testers) and sign-offs, kept as JSON files in `uat/`. Outcomes and decisions are enums
//! from the command line to the plugin: a typo is refused where it is typed, never guessed.

use std::path::Path;

use launch_targets::rooted::Rooted;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// What a test of one item found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Blocked,
    /// Nobody tested it (or chose not to): never shown as a pass.
    Skipped,
}

impl Outcome {
    pub fn wit(self) -> launch_runtime::types::UatOutcome {
        use launch_runtime::types::UatOutcome as W;
        match self {
            Outcome::Pass => W::Pass,
            Outcome::Fail => W::Fail,
            Outcome::Blocked => W::Blocked,
            Outcome::Skipped => W::Skipped,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Blocked => "blocked",
            Outcome::Skipped => "skipped",
        }
    }
}

/// A stakeholder's sign-off decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approved,
    Rejected,
    Conditional,
}

impl Decision {
    pub fn wit(self) -> launch_runtime::types::SignoffDecision {
        use launch_runtime::types::SignoffDecision as W;
        match self {
            Decision::Approved => W::Approved,
            Decision::Rejected => W::Rejected,
            Decision::Conditional => W::Conditional,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
            Decision::Conditional => "conditional",
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct ItemFile {
    pub id: String,
    pub category: String,
    pub title: String,
    pub steps: Vec<String>,
    pub expected: String,
    pub blocking: bool,
    pub automated_probe: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct ResultFile {
    pub id: String,
    pub outcome: Outcome,
    pub tester: String,
    pub notes: String,
    pub at_ms: u64,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct SignoffFile {
    pub role: String,
    pub name: String,
    pub decision: Decision,
    pub note: String,
    pub at_ms: u64,
    /// What was approved: the plugins' builds and grants when the sign-off was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Recorded from the runbook's `signoffs` (again at every run: the file that states the
    /// grants states the approval), not by a person with `uat approve`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_runbook: bool,
}

/// The capability manifest an approval covers, and the plugins lock then in force.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Scope {
    pub manifest_sha256: String,
    /// sha256 of `plugins.lock` when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_sha256: Option<String>,
    pub manifest: crate::manifest::Manifest,
}

impl Scope {
    pub fn of(manifest: crate::manifest::Manifest, catalog: &launch_runtime::Catalog) -> Scope {
        Scope {
            manifest_sha256: manifest.digest(),
            lock_sha256: crate::pins::lock_digest(catalog),
            manifest,
        }
    }
}

/// Whether an approval still covers `now`; otherwise what changed since, for people.
pub fn stale(signoff: &SignoffFile, now: &crate::manifest::Manifest) -> Option<String> {
    if signoff.decision == Decision::Rejected {
        return None;
    }
    let Some(scope) = &signoff.scope else {
        return Some("it was recorded without the plugins and grants it approves".into());
    };
    if scope.manifest_sha256 == now.digest() {
        return None;
    }
    let changes = now.changes_since(&scope.manifest);
    Some(if changes.is_empty() {
        format!(
            "it approved {}, not {}",
            scope.manifest_sha256,
            now.digest()
        )
    } else {
        format!("since then, {}", changes.join("; "))
    })
}

/// The UAT file `name` of `dir`, empty when it does not exist yet.
pub(crate) fn read<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
) -> anyhow::Result<Vec<T>> {
    let path = dir.join(name);
    let folder = match Rooted::open(dir, false) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
    };
    if !folder.exists(name) {
        return Ok(Vec::new());
    }
    let b = crate::files::read_rooted(&folder, name, crate::files::STATE, "UAT data")?;
    serde_json::from_slice(&b).with_context(|| format!("{} is not valid UAT data", path.display()))
}

/// Writes the UAT file `name` of `dir` (created when missing) whole.
pub(crate) fn write<T: serde::Serialize>(dir: &Path, name: &str, v: &T) -> anyhow::Result<()> {
    // Notes and names are people's words: a pasted secret is masked before it is kept.
    let mut value = serde_json::to_value(v)?;
    crate::redact::json(&mut value);
    Rooted::open(dir, true)
        .and_then(|d| d.write_atomically(name, &serde_json::to_vec_pretty(&value)?))
        .with_context(|| format!("writing {}", dir.join(name).display()))
}

/// The UAT data of a workspace (or run) folder.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, Default)]
pub struct UatData {
    pub items: Vec<ItemFile>,
    pub results: Vec<ResultFile>,
    pub signoffs: Vec<SignoffFile>,
}

impl UatData {
    pub fn load(dir: &Path) -> anyhow::Result<UatData> {
        Ok(UatData {
            items: read(dir, "checklist.json")?,
            results: read(dir, "results.json")?,
            signoffs: read(dir, "signoffs.json")?,
        })
    }

    /// The latest result of an item.
    pub fn result(&self, id: &str) -> Option<&ResultFile> {
        self.results.iter().rev().find(|r| r.id == id)
    }
}

/// Records a tester's result; it replaces an earlier result of the same item.
pub fn record_result(dir: &Path, result: ResultFile) -> anyhow::Result<()> {
    let mut results: Vec<ResultFile> = read(dir, "results.json")?;
    results.retain(|r| r.id != result.id);
    results.push(result);
    write(dir, "results.json", &results)
}

/// Records a sign-off; it replaces an earlier one by the same person in the same role.
pub fn record_signoff(dir: &Path, signoff: SignoffFile) -> anyhow::Result<()> {
    let mut signoffs: Vec<SignoffFile> = read(dir, "signoffs.json")?;
    signoffs.retain(|s| !(s.role == signoff.role && s.name == signoff.name));
    signoffs.push(signoff);
    write(dir, "signoffs.json", &signoffs)
}
