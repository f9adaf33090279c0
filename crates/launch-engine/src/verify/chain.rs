//! The journal's hash chain, line by line: each record holds the sha256 of the line before it
//! and its own line number, so an edited line is named, and so is the gap a removed line
//! leaves or the place a moved one took — never the intact line before them.

use crate::journal::{self, Record};

/// Checks the chain of a journal's bytes: its records and the last line's hash, or the first
/// line that breaks it. A torn last line (a crash mid-write) is not a record.
pub fn chain(bytes: &[u8]) -> Result<(Vec<Record>, Option<String>), (usize, String)> {
    let lines = journal::lines(bytes);
    let mut records = Vec::with_capacity(lines.len());
    let mut before: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        if line.len() > crate::files::JOURNAL_LINE {
            return Err((
                n,
                format!("line {n} is longer than a journal record can be"),
            ));
        }
        let record: Record = serde_json::from_slice(line)
            .map_err(|e| (n, format!("line {n} is not a journal record ({e})")))?;
        // Journals written before records were numbered hold 0: the hashes alone speak.
        let held = usize::try_from(record.n).unwrap_or(usize::MAX);
        if held != 0 && held > n {
            let missing = if held == n + 1 {
                format!("record {n} is missing")
            } else {
                format!("records {n}–{} are missing", held - 1)
            };
            return Err((
                n,
                format!(
                    "line {n} is record {held}: {missing} (removed between lines {} and {n})",
                    n - 1
                ),
            ));
        }
        if held != 0 && held < n {
            return Err((
                n,
                format!(
                    "line {n} is record {held}, which belongs earlier: lines were reordered or copied"
                ),
            ));
        }
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
                        "line {} was changed: line {n} holds another hash of it",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Event;

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
    fn a_written_journal_chains_and_every_kind_of_edit_is_named_where_it_is() {
        let (_d, bytes) = journal(5);
        let (records, head) = chain(&bytes).unwrap();
        assert_eq!(records.len(), 5);
        assert_eq!(head.unwrap(), journal::line_hash(journal::lines(&bytes)[4]));
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let edited = text.replacen("\"pid\":1}", "\"pid\":7}", 1);
        assert_ne!(edited, text);
        assert_eq!(
            chain(edited.as_bytes()).unwrap_err().0,
            2,
            "the edited line"
        );
        // Line 3 removed: blamed on the gap, not on intact line 2.
        let removed = [lines[0], lines[1], lines[3], lines[4]].join("\n") + "\n";
        let (at, why) = chain(removed.as_bytes()).unwrap_err();
        assert_eq!(at, 3, "{why}");
        assert!(why.contains("record 3 is missing"), "{why}");
        let swapped = [lines[0], lines[2], lines[1], lines[3]].join("\n") + "\n";
        let (at, why) = chain(swapped.as_bytes()).unwrap_err();
        assert_eq!(at, 2, "{why}");
        assert!(why.contains("line 2 is record 3"), "{why}");
        let headless = [lines[1], lines[2]].join("\n") + "\n";
        assert_eq!(chain(headless.as_bytes()).unwrap_err().0, 1);
        // A torn last line is a crash, not an edit.
        let torn = text.clone() + "{\"at\":1,\"ev";
        assert_eq!(chain(torn.as_bytes()).unwrap().0.len(), 5);
    }

    #[test]
    fn reopening_a_journal_continues_its_chain_and_its_numbers() {
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
        let (records, _) = chain(&std::fs::read(&path).unwrap()).unwrap();
        let numbers: Vec<u64> = records.iter().map(|r| r.n).collect();
        assert_eq!(numbers, [1, 2, 3]);
    }
}
