//! `launch-host verify`: is a run's history the one its runner wrote?
//!
//! What it proves, against whom:
//! - **The chain** (`chain`): every line holds the sha256 of the line before it and its own
//!   number. An edit, a removal, an insertion or a reordering by someone who does not rewrite
//!   every later line is named at its line. On its own this proves consistency only: whoever
//!   can write the folder can rewrite the chain.
//! - **The runner's signatures** (`journal::signing`): `signed` records over the chain's head,
//!   made with the runner's ed25519 key, checked against the keys verify trusts (this
//!   machine's runner key, `--trust KEY.pub`). A writer of the folder or the bucket who does
//!   not hold that key cannot re-sign an edited history, so a consistent forgery fails at the
//!   first signature after the edit; a finished run must end with a signature, so a fabricated
//!   or removed end fails too. Lines after the last signature of an unfinished run are named
//!   as unsigned. Whoever holds the runner key (the runner's machine, its secret store) can
//!   sign anything: protect it like a deploy key.
//! - **The derived files**: report.json, report.md, junit.xml and report.html must be exactly
//!   what the journal says (rebuilt and compared), and each recorded call's inputs
//!   (`calls/<sha256>.json`) must hash to their name.
//! - **Another copy** (`copies`): with `--state`, the S3 copy is fetched into a scratch folder
//!   — never over the local one — both are verified, and any disagreement is named.
//! - Truncation at a signature, or a whole run deleted, cannot be told from a run that stopped
//!   there by the folder alone: compare it with its other copy (`--state`).

mod chain;
pub mod copies;

pub use chain::chain;

use std::path::Path;

use ssh_key::HashAlg;

use crate::journal::{self, Event, Record};
use crate::report::RunReport;

/// A broken run, at the first bad place.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct Broken {
    pub file: String,
    /// 1-based; 0 when the problem is the whole file.
    pub line: usize,
    pub message: String,
}

/// What a verified run holds.
#[derive(Debug)]
pub struct Verified {
    pub records: usize,
    /// The sha256 of the journal's last line.
    pub head: String,
    /// What was checked besides the chain, one line each.
    pub checked: Vec<String>,
}

/// The runner keys whose signatures count, by fingerprint, with where each came from.
#[derive(Debug, Default, Clone)]
pub struct Trusted {
    keys: Vec<(String, String)>,
    /// Any key whose signature holds (what `resume` asks: is the history intact as signed).
    any: bool,
}

impl Trusted {
    /// This machine's runner key (the one its runs sign with), when it has one.
    pub fn here() -> Trusted {
        let mut t = Trusted::default();
        if let Some(k) = crate::journal::signing::runner_public_key() {
            t.keys.push((
                k.fingerprint(HashAlg::Sha256).to_string(),
                "this machine's runner key".into(),
            ));
        }
        t
    }

    /// Also trusts the OpenSSH public key at `path`.
    pub fn add_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let key = crate::trust::read_public_key(path)?;
        self.keys.push((
            key.fingerprint(HashAlg::Sha256).to_string(),
            path.display().to_string(),
        ));
        Ok(())
    }

    fn contains(&self, fingerprint: &str) -> bool {
        self.any || self.keys.iter().any(|(f, _)| f == fingerprint)
    }

    fn described(&self) -> String {
        if self.keys.is_empty() {
            return "no key: this machine has no runner key".into();
        }
        let each: Vec<String> = self
            .keys
            .iter()
            .map(|(f, from)| format!("{f} ({from})"))
            .collect();
        each.join(", ")
    }
}

/// Whether a journal's chain and every signature in it hold, whoever signed (`resume` checks
/// this before it continues a history): the first bad line and why, if not.
pub fn intact(bytes: &[u8]) -> Result<(), (usize, String)> {
    let (records, _) = chain(bytes)?;
    let anyone = Trusted {
        keys: Vec::new(),
        any: true,
    };
    if records
        .iter()
        .any(|r| matches!(r.event, Event::Signed { .. }))
    {
        signatures(bytes, &records, &anyone)?;
    }
    Ok(())
}

/// Verifies the run in `run_dir`: its chain, its runner's signatures against `trusted`, its
/// reports and recorded calls against the journal, and with `plugins` (describe name →
/// sha256 of the plugins at hand) the plugins it started with.
pub fn run(
    run_dir: &Path,
    plugins: Option<&[(String, String)]>,
    trusted: &Trusted,
) -> Result<Verified, Broken> {
    let broken = |file: &str, line: usize, message: String| Broken {
        file: run_dir.join(file).display().to_string(),
        line,
        message,
    };
    let bytes = crate::files::read(
        &run_dir.join("journal.jsonl"),
        journal::MAX_BYTES,
        "the journal",
    )
    .map_err(|e| broken("journal.jsonl", 0, format!("cannot be read: {e:#}")))?;
    let (parsed, head) =
        chain(&bytes).map_err(|(line, message)| broken("journal.jsonl", line, message))?;
    let head = head.ok_or_else(|| broken("journal.jsonl", 0, "holds no record".into()))?;
    let records = parsed.len();
    let mut checked = vec![format!("journal: {records} records chained")];
    checked.push(
        signatures(&bytes, &parsed, trusted).map_err(|(l, m)| broken("journal.jsonl", l, m))?,
    );
    checked.extend(reports(run_dir, &bytes, &parsed).map_err(|(f, l, m)| broken(f, l, m))?);
    checked.extend(calls(run_dir, &parsed).map_err(|(f, m)| broken(&f, 0, m))?);
    if let Some(at_hand) = plugins {
        checked.push(started_with(&parsed, at_hand).map_err(|m| broken("journal.jsonl", 1, m))?);
    }
    Ok(Verified {
        records,
        head,
        checked,
    })
}

/// The runner's signatures: each valid, by a trusted key, over the line before it; a finished
/// run signed to its last line. What they cover, or the first bad one.
fn signatures(
    bytes: &[u8],
    records: &[Record],
    trusted: &Trusted,
) -> Result<String, (usize, String)> {
    let lines = journal::lines(bytes);
    let run_id = match records.first().map(|r| &r.event) {
        Some(Event::RunStarted { run_id, .. }) => run_id.clone(),
        _ => return Err((1, "line 1 is not the run's start".into())),
    };
    let mut signed_upto = 0usize;
    let mut signers: Vec<String> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let Event::Signed {
            line,
            head,
            key,
            signature,
        } = &r.event
        else {
            continue;
        };
        let n = i + 1;
        if n < 2 || usize::try_from(*line).ok() != Some(n - 1) {
            return Err((
                n,
                format!("a signature of line {line}, not of the line before it"),
            ));
        }
        if journal::line_hash(lines[n - 2]) != *head {
            return Err((
                n,
                format!("the signature names another line {line} than the one there"),
            ));
        }
        let signer = crate::journal::signing::check(&run_id, *line, head, key, signature).map_err(|why| {
            (
                n,
                format!("the runner's signature over lines 1–{line} does not hold ({why}): they were rewritten after it was made"),
            )
        })?;
        if !trusted.contains(&signer) {
            return Err((
                n,
                format!(
                    "signed by {signer}, a key verify does not trust (trusted: {}); pass --trust KEY.pub for the runner that ran it",
                    trusted.described()
                ),
            ));
        }
        if !signers.contains(&signer) {
            signers.push(signer);
        }
        signed_upto = n;
    }
    let total = records.len();
    let finished = records
        .iter()
        .position(|r| matches!(r.event, Event::RunFinished { .. }));
    match (finished, signed_upto) {
        (Some(f), 0) => Err((
            f + 1,
            "the run finished, and its journal carries no runner signature: its history cannot be authenticated".into(),
        )),
        (Some(f), s) if s < total => Err((
            total,
            format!(
                "the run finished at line {}, but lines {}–{total} come after its last signature (line {s}): added after the run, or its final signature removed",
                f + 1,
                s + 1
            ),
        )),
        (_, 0) => Ok(format!(
            "signatures: none yet; lines 1–{total} are chained, not authenticated (a run that stopped before its first checkpoint)"
        )),
        (_, s) if s < total => Ok(format!(
            "signatures: lines 1–{s} signed by {}; lines {}–{total} are chained but not signed yet (a run in progress or interrupted)",
            signers.join(", "),
            s + 1
        )),
        _ => Ok(format!(
            "signatures: every line signed by {} (a runner key verify trusts)",
            signers.join(", ")
        )),
    }
}

/// The report files against the journal: rebuilt from the journal as it stood when they were
/// written (report.json names that line) and compared byte for byte.
fn reports(
    run_dir: &Path,
    bytes: &[u8],
    records: &[Record],
) -> Result<Vec<String>, (&'static str, usize, String)> {
    let lines = journal::lines(bytes);
    let total = records.len();
    let finished = records
        .iter()
        .any(|r| matches!(r.event, Event::RunFinished { .. }));
    let stored = match crate::files::read(
        &run_dir.join("report.json"),
        crate::files::FIXTURE,
        "the report",
    ) {
        Ok(s) => s,
        Err(_) if !finished => {
            return Ok(vec![
                "reports: none yet (a run in progress); its last line is not anchored".into(),
            ]);
        }
        Err(_) => {
            return Err((
                "report.json",
                0,
                "is missing, though the run finished: `launch-host report RUN` writes the reports again from the journal".into(),
            ));
        }
    };
    let stored: serde_json::Value = serde_json::from_slice(&stored)
        .map_err(|e| ("report.json", 0, format!("is not JSON: {e}")))?;
    let anchored = stored["journal_sha256"].as_str().unwrap_or_default();
    let at = lines.iter().position(|l| journal::line_hash(l) == anchored);
    let at = match at {
        Some(at) if !finished || at + 1 == total => at,
        _ => {
            return Err((
                "journal.jsonl",
                total,
                format!(
                    "line {total} (the last) is not the one report.json was written after: lines were changed, added or removed at the end"
                ),
            ));
        }
    };
    // The reports as the journal stood when they were written.
    let upto: usize = lines[..=at].iter().map(|l| l.len() + 1).sum();
    let report = RunReport::from_bytes(&bytes[..upto]).map_err(|e| ("journal.jsonl", 0, e))?;
    let complete = report.finished_ms.is_some();
    let files = crate::report::files_of(&report, report.uat.as_ref())
        .map_err(|e| ("journal.jsonl", 0, format!("{e:#}")))?;
    let mut checked = Vec::new();
    for (name, rebuilt) in files {
        // An unfinished run's page shows the UAT data as it was then, which the journal
        // does not hold yet: its other reports are still checked.
        if name == "report.html" && !complete {
            checked.push("report.html: not checked (written before the run's end)".into());
            continue;
        }
        let on_disk = crate::files::read(&run_dir.join(name), crate::files::FIXTURE, "the report")
            .map_err(|_| (name, 0, "is missing".to_string()))?;
        if on_disk != rebuilt.as_bytes() {
            let line = first_difference(&on_disk, rebuilt.as_bytes());
            return Err((
                name,
                line,
                format!(
                    "does not say what the journal says (from line {line}): the report was edited"
                ),
            ));
        }
    }
    checked.push(match at + 1 == total {
        true => "reports: report.json, report.md, junit.xml and report.html match the journal and anchor its last line".into(),
        false => format!(
            "reports: match the journal up to line {}; the {} line(s) after it (a run that did not finish) are not anchored",
            at + 1,
            total - at - 1
        ),
    });
    Ok(checked)
}

/// The first line (1-based) where two texts differ.
fn first_difference(a: &[u8], b: &[u8]) -> usize {
    let same = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    a[..same].iter().filter(|&&c| c == b'\n').count() + 1
}

/// Each recorded call's inputs hash to their content address.
fn calls(run_dir: &Path, records: &[Record]) -> Result<Vec<String>, (String, String)> {
    let mut n = 0;
    for r in records {
        let Event::Call { input, .. } = &r.event else {
            continue;
        };
        if input.is_empty() {
            continue;
        }
        let named = Path::new(input)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = crate::files::read(
            &run_dir.join(input),
            crate::files::FIXTURE,
            "a recorded call",
        )
        .map_err(|e| (input.clone(), format!("{e:#}")))?;
        // Named by the first 128 bits of their sha256 (lab::record).
        let actual = crate::run::digest(&bytes);
        if named.len() < 32 || !actual.starts_with(&named) {
            return Err((
                input.clone(),
                format!(
                    "was changed: its sha256 is {actual}, and its name (what the journal recorded) says {named}…"
                ),
            ));
        }
        n += 1;
    }
    Ok(match n {
        0 => Vec::new(),
        n => vec![format!(
            "recorded calls: {n} input file(s) match their sha256"
        )],
    })
}

/// The plugins at hand are the ones the run started with, by their `describe` name.
fn started_with(records: &[Record], at_hand: &[(String, String)]) -> Result<String, String> {
    let started = records
        .iter()
        .find_map(|r| match &r.event {
            Event::RunStarted { plugins, .. } => Some(plugins.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let mut missing = Vec::new();
    for (name, digest) in &started {
        match at_hand.iter().find(|(n, _)| n == name) {
            Some((_, d)) if d == digest => {}
            Some((_, d)) => {
                return Err(format!(
                    "plugin `{name}` differs from the one the run started with: sha256 {d}, the run recorded {digest}"
                ));
            }
            None => missing.push(name.clone()),
        }
    }
    Ok(match missing.as_slice() {
        [] => format!(
            "plugins: the {} the run started with are the ones at hand",
            started.len()
        ),
        m => format!(
            "plugins: {} compared; not at hand, not checked: {}",
            started.len() - m.len(),
            m.join(", ")
        ),
    })
}
