//! `launch-host verify`: is a run's history as it was written? The journal is a hash chain —
//! each record carries the sha256 of the line before it — and report.json records the sha256
//! of the journal's last line, so an edited, removed, inserted or reordered line is found and
//! named, the last one included. The reports must be what the journal says, and, given the
//! plugins, each must be the one the run started with.

use std::path::Path;

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

/// Checks the chain of a journal's bytes: its records and the last line's hash, or the first
/// line that breaks it. A torn last line (a crash mid-write) is not a record.
pub fn chain(bytes: &[u8]) -> Result<(Vec<Record>, Option<String>), (usize, String)> {
    let lines = journal::lines(bytes);
    let mut records = Vec::with_capacity(lines.len());
    let mut before: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let record: Record = serde_json::from_slice(line)
            .map_err(|e| (n, format!("line {n} is not a journal record ({e})")))?;
        match (&before, &record.prev) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err((
                    n,
                    format!(
                        "line {n} names a line before it, and there is none: the journal's first lines were removed"
                    ),
                ));
            }
            (Some(_), None) => {
                return Err((
                    n,
                    format!(
                        "line {n} holds no hash of line {}: it was inserted, or the journal was written before records were chained",
                        n - 1
                    ),
                ));
            }
            (Some(expected), Some(held)) if expected != held => {
                return Err((
                    n - 1,
                    format!(
                        "line {} was changed or removed: line {n} holds another hash of the line before it",
                        n - 1
                    ),
                ));
            }
            _ => {}
        }
        before = Some(journal::line_hash(line));
        records.push(record);
    }
    Ok((records, before))
}

/// Verifies the run in `run_dir`: its chain, its report against the journal, and with
/// `plugins` (name → sha256 of the files at hand) the plugins it started with.
pub fn run(run_dir: &Path, plugins: Option<&[(String, String)]>) -> Result<Verified, Broken> {
    let broken = |file: &str, line: usize, message: String| Broken {
        file: run_dir.join(file).display().to_string(),
        line,
        message,
    };
    let bytes = std::fs::read(run_dir.join("journal.jsonl"))
        .map_err(|e| broken("journal.jsonl", 0, format!("cannot be read: {e}")))?;
    let (parsed, head) =
        chain(&bytes).map_err(|(line, message)| broken("journal.jsonl", line, message))?;
    let head = head.ok_or_else(|| broken("journal.jsonl", 0, "holds no record".into()))?;
    let records = parsed.len();
    let mut checked = vec![format!("journal: {records} records chained")];

    // The report anchors the line it was written after: the last one of a finished run.
    let lines = journal::lines(&bytes);
    let finished = parsed
        .iter()
        .any(|r| matches!(r.event, Event::RunFinished { .. }));
    match std::fs::read(run_dir.join("report.json")) {
        Err(_) => checked.push(
            "report.json: none yet (a run in progress); its last line is not anchored".into(),
        ),
        Ok(stored) => {
            let stored: serde_json::Value = serde_json::from_slice(&stored)
                .map_err(|e| broken("report.json", 0, format!("is not JSON: {e}")))?;
            let anchored = stored["journal_sha256"].as_str().unwrap_or_default();
            let at = lines.iter().position(|l| journal::line_hash(l) == anchored);
            let at = match at {
                Some(at) if !finished || at + 1 == records => at,
                _ => {
                    return Err(broken(
                        "journal.jsonl",
                        records,
                        format!(
                            "line {records} (the last) is not the one report.json was written after: lines were changed, added or removed at the end"
                        ),
                    ));
                }
            };
            // The report as the journal stood when it was written.
            let upto: usize = lines[..=at].iter().map(|l| l.len() + 1).sum();
            let rebuilt = RunReport::from_bytes(&bytes[..upto])
                .and_then(|r| serde_json::to_string(&r).map_err(|e| e.to_string()))
                .map_err(|e| broken("journal.jsonl", 0, e))?;
            let rebuilt: serde_json::Value =
                serde_json::from_str(&crate::redact::text(&rebuilt)).unwrap_or_default();
            if rebuilt != stored {
                return Err(broken(
                    "report.json",
                    0,
                    "does not say what the journal says: the report was edited".into(),
                ));
            }
            checked.push(match at + 1 == records {
                true => "report.json: matches the journal and anchors its last line".into(),
                false => format!(
                    "report.json: matches the journal up to line {}; the {} line(s) after it (a run that did not finish) are chained but not anchored",
                    at + 1,
                    records - at - 1
                ),
            });
        }
    }

    if let Some(at_hand) = plugins {
        let started = parsed
            .iter()
            .find_map(|r| match &r.event {
                Event::RunStarted { plugins, .. } => Some(plugins.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for (name, digest) in &started {
            match at_hand.iter().find(|(n, _)| n == name) {
                Some((_, d)) if d == digest => {}
                Some((_, d)) => {
                    return Err(broken(
                        "journal.jsonl",
                        1,
                        format!(
                            "plugin `{name}` differs from the one the run started with: sha256 {d}, the run recorded {digest}"
                        ),
                    ));
                }
                None => checked.push(format!("plugin `{name}`: not at hand, not checked")),
            }
        }
        checked.push(format!(
            "plugins: {} recorded, compared with the plugins at hand",
            started.len()
        ));
    }
    Ok(Verified {
        records,
        head,
        checked,
    })
}

/// The plugins of a folder as a run records them: each `NAME.wasm`'s name and sha256, hashed
/// afresh (no remembered digest: this is the check).
pub fn plugins_in(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("reading the plugins folder {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "wasm")
            && let Some(stem) = path.file_stem()
        {
            let digest = launch_runtime::digest::of_file(&path, None)
                .map_err(|e| anyhow::anyhow!("hashing {}: {e}", path.display()))?;
            out.push((stem.to_string_lossy().into_owned(), digest.sha256));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(n: usize) -> (tempfile::TempDir, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut j = journal::Journal::open(&path).unwrap();
        for i in 0..n {
            j.append(Event::Resumed {
                pid: i as u32,
                torn_bytes_dropped: 0,
            })
            .unwrap();
        }
        drop(j);
        let bytes = std::fs::read(&path).unwrap();
        (dir, bytes)
    }

    #[test]
    fn a_written_journal_chains_and_every_kind_of_edit_is_named() {
        let (_d, bytes) = journal(4);
        let (records, head) = chain(&bytes).unwrap();
        assert_eq!(records.len(), 4);
        assert_eq!(head.unwrap(), journal::line_hash(journal::lines(&bytes)[3]));
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let edited = text.replacen("\"pid\":1}", "\"pid\":7}", 1);
        assert_ne!(edited, text);
        assert_eq!(
            chain(edited.as_bytes()).unwrap_err().0,
            2,
            "the edited line"
        );
        let removed = [lines[0], lines[2], lines[3]].join("\n") + "\n";
        assert_eq!(chain(removed.as_bytes()).unwrap_err().0, 1);
        let swapped = [lines[0], lines[2], lines[1], lines[3]].join("\n") + "\n";
        assert!(chain(swapped.as_bytes()).is_err());
        let headless = [lines[1], lines[2]].join("\n") + "\n";
        assert_eq!(chain(headless.as_bytes()).unwrap_err().0, 1);
        // A torn last line is a crash, not an edit.
        let torn = text.clone() + "{\"at\":1,\"ev";
        assert_eq!(chain(torn.as_bytes()).unwrap().0.len(), 4);
    }

    #[test]
    fn reopening_a_journal_continues_its_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        for pid in 0..3 {
            let mut j = journal::Journal::open(&path).unwrap();
            j.append(Event::Resumed {
                pid,
                torn_bytes_dropped: 0,
            })
            .unwrap();
        }
        assert_eq!(chain(&std::fs::read(&path).unwrap()).unwrap().0.len(), 3);
    }
}
