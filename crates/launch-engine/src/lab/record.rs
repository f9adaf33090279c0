//! Recording what every plugin call saw, so a run can be replayed against the same or another
//! policy: the inputs as a fixture in the run folder (`calls/<sha256>.json`, content-addressed,
//! secrets masked), and a `call` journal record with the answer. A canary's windows are not
//! copied: the call names the run's `window` records that made up its history.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use super::fixture::Fixture;
use crate::record::{CheckRecord, VerdictRecord};
use launch_runtime::types::Action;

/// The folder of a run that holds recorded inputs.
pub const CALLS: &str = "calls";

/// An action in the fixtures' words, with its reason: (`promote 30`, ""), (`hold`, why)...
pub fn action_answer(action: &Action) -> (String, String) {
    match action {
        Action::Promote(p) => (format!("promote {p}"), String::new()),
        Action::Hold(r) => ("hold".into(), r.clone()),
        Action::Rollback(r) => ("rollback".into(), r.clone()),
        Action::Complete => ("complete".into(), String::new()),
    }
}

/// An action in the journal's words (`promote 30%`, `hold`...), which decisions are recorded
/// and shadows compared in.
pub fn action_word(action: &Action) -> String {
    match action {
        Action::Promote(p) => format!("promote {p}%"),
        other => action_answer(other).0,
    }
}

/// A verdict in the fixtures' words.
pub fn verdict_answer(v: &VerdictRecord) -> String {
    match v {
        VerdictRecord::Pass => "pass",
        VerdictRecord::Fail(_) => "fail",
        VerdictRecord::Inconclusive(_) => "inconclusive",
        VerdictRecord::NoData(_) => "no-data",
    }
    .into()
}

/// Check name → verdict word, as fixtures expect them.
pub fn check_answers(checks: &[CheckRecord]) -> BTreeMap<String, String> {
    checks
        .iter()
        .map(|c| (c.name.clone(), verdict_answer(&c.verdict)))
        .collect()
}

/// Writes `fixture` (the call's inputs) into the run folder once, named by its content;
/// returns its path in the run folder.
pub fn save_input(run_dir: &Path, fixture: &Fixture) -> anyhow::Result<String> {
    let mut value = serde_json::to_value(fixture)?;
    crate::redact::json(&mut value);
    let bytes = serde_json::to_vec_pretty(&value)?;
    let digest = hex::encode(Sha256::digest(&bytes));
    let rel = format!("{CALLS}/{}.json", &digest[..32]);
    let folder = launch_targets::rooted::Rooted::open(run_dir, false)
        .with_context(|| format!("opening {}", run_dir.display()))?;
    if !folder.exists(&rel) {
        folder
            .write_atomically(&rel, &bytes)
            .with_context(|| format!("writing {}", folder.display(&rel).display()))?;
    }
    Ok(rel)
}
