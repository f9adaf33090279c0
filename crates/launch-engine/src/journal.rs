//! The run journal: one JSON record per line, appended and synced to disk before the effect it
//! announces is treated as done, so a crash at any point leaves a journal that says exactly
//! which effects completed. `resume` replays it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use launch_targets::rooted::Rooted;
use serde::{Deserialize, Serialize};

use super::record::{CheckRecord, Outcome, VerdictRecord, WindowRecord};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    RunStarted {
        run_id: String,
        runbook: String,
        runbook_sha256: String,
        plugins: Vec<(String, String)>,
        auto: bool,
        /// Who started it: `--operator`, else the login name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_by: Option<String>,
    },
    /// The stages the run means to go through, in order (name, title): what a page shows as
    /// pending before they start.
    Planned {
        stages: Vec<(String, String)>,
    },
    /// The capability manifest the run starts with: each plugin's build and grants.
    Capabilities {
        manifest_sha256: String,
        grants: Vec<crate::manifest::Grant>,
    },
    Resumed {
        pid: u32,
        /// Bytes of a torn last record (a crash mid-write) cut off before resuming.
        #[serde(default, skip_serializing_if = "is_zero")]
        torn_bytes_dropped: u64,
    },
    StageStarted {
        stage: String,
        title: String,
    },
    /// An effect is about to happen; `EffectDone` with the same key says it did.
    EffectStarted {
        stage: String,
        key: String,
        detail: String,
    },
    EffectDone {
        stage: String,
        key: String,
        detail: String,
    },
    Window {
        stage: String,
        environment: String,
        window: WindowRecord,
    },
    Decision {
        stage: String,
        percent: u8,
        action: String,
        summary: String,
        checks: Vec<CheckRecord>,
        plugin: String,
    },
    /// An operator's request to a running canary (`canary pause` ...), as it was obeyed.
    Control {
        stage: String,
        seq: u64,
        /// When the operator asked.
        requested_ms: u64,
        command: crate::control::Command,
        operator: String,
        reason: String,
        /// What the canary did about it.
        outcome: String,
    },
    /// A notification's delivery (never the webhook's URL).
    Notified {
        channel: crate::runbook::Channel,
        /// What it told: `run-started`, `stage-finished`, `auto-rollback`...
        what: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        level: Option<u8>,
        delivered: bool,
        attempts: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        elapsed_ms: u64,
    },
    Log {
        stage: String,
        source: String,
        level: String,
        message: String,
    },
    StageFinished {
        stage: String,
        verdict: VerdictRecord,
        checks: Vec<CheckRecord>,
        summary: String,
        plugin: Option<String>,
        dry_run: bool,
        /// What the host did about the verdict: `continued`, `aborted`, `rolled back`...
        outcome: String,
        elapsed_ms: u64,
    },
    /// A plugin call and what it saw, so it can be replayed: the inputs are a fixture, in the
    /// record when small (`inputs`), else in the run folder (`input`: `calls/<sha256>.json`,
    /// content-addressed, written before this record); a canary's history is the run's
    /// `window` records numbered in `windows` (0 = the run's first window).
    Call {
        stage: String,
        plugin: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        input: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        windows: Vec<u64>,
        /// In the fixtures' words: `promote 30`, `hold`, `pass`, `no-data`... or `failed`.
        answer: String,
        reason: String,
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        checks: std::collections::BTreeMap<String, String>,
    },
    /// A shadow policy's answer to exactly the live plugin's inputs: journaled, never obeyed.
    Shadow {
        stage: String,
        plugin: String,
        /// The canary's percentage when it was asked; absent on other stages.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percent: Option<u8>,
        /// What the live plugin answered, in the same words: `promote 30%`, `hold`, `PASS`...
        live: String,
        shadow: String,
        agrees: bool,
        summary: String,
        checks: Vec<CheckRecord>,
        /// Why the shadow gave no answer (a trap, its deadline): it never touches the run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed: Option<String>,
    },
    /// The host failed mid-stage and put a flag the stage had moved back to its safe value.
    FlagRestored {
        stage: String,
        environment: String,
        flag: String,
        percent: u8,
        /// False when even that failed; the operator must set the flag by hand.
        restored: bool,
        reason: String,
    },
    RunFinished {
        outcome: Outcome,
        summary: String,
    },
}

impl Event {
    /// The stage a record belongs to, for the events that belong to one.
    pub fn stage(&self) -> Option<&str> {
        match self {
            Event::StageStarted { stage, .. }
            | Event::EffectStarted { stage, .. }
            | Event::EffectDone { stage, .. }
            | Event::Window { stage, .. }
            | Event::Decision { stage, .. }
            | Event::Control { stage, .. }
            | Event::Log { stage, .. }
            | Event::StageFinished { stage, .. }
            | Event::FlagRestored { stage, .. }
            | Event::Shadow { stage, .. }
            | Event::Call { stage, .. } => Some(stage),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub at: u64,
    /// The sha256 of the line before this one, as written: the journal is a hash chain, so an
    /// edited, removed or reordered line breaks it (`launch-host verify`). None on a first line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    #[serde(flatten)]
    pub event: Event,
}

impl Record {
    pub fn new(event: Event) -> Record {
        Record {
            at: now_ms(),
            prev: None,
            event,
        }
    }
}

pub struct Journal {
    path: PathBuf,
    file: File,
    /// Records appended unsynced, written with the next synced one.
    pending: Vec<u8>,
    /// Told after every append (the S3 mirror uploads the journal).
    listener: Option<Box<dyn Fn() + Send + Sync>>,
    /// Shown every synced record once it is on disk (notifications follow the journal).
    tap: Option<Tap>,
    /// The sha256 of the last line written (the next record's `prev`).
    last: Option<String>,
}

/// What the journal shows each durable record to.
type Tap = Box<dyn FnMut(&Record) + Send + Sync>;

impl Journal {
    pub fn open(path: &Path) -> anyhow::Result<Journal> {
        Ok(Journal::open_repaired(path)?.0)
    }

    /// Opens the journal for appending after cutting off a torn last record (a crash in the
    /// middle of a write leaves a line without its newline), so the next record starts on a
    /// line of its own. Returns how many bytes were cut.
    pub fn open_repaired(path: &Path) -> anyhow::Result<(Journal, u64)> {
        let context = || format!("opening the journal {}", path.display());
        // Through the run folder's capability, like every file of a run.
        let folder =
            Rooted::open(path.parent().unwrap_or(Path::new(".")), false).with_context(context)?;
        let name = path.file_name().unwrap_or_default();
        let mut file = folder.open_append(name).with_context(context)?;
        let aside = Path::new(name).with_extension("jsonl.torn");
        let torn = cut_torn_tail(&mut file, |tail| {
            let mut kept = folder.open_append(&aside)?;
            kept.write_all(tail)?;
            kept.write_all(b"\n")?;
            kept.sync_data()
        })
        .with_context(context)?;
        // The chain goes on from the last whole line already there.
        let bytes = folder.read(name).with_context(context)?;
        let last = lines(&bytes).last().map(|l| line_hash(l));
        let journal = Journal {
            path: path.to_path_buf(),
            file,
            pending: Vec::new(),
            listener: None,
            tap: None,
            last,
        };
        Ok((journal, torn))
    }

    pub fn on_append(&mut self, listener: impl Fn() + Send + Sync + 'static) {
        self.listener = Some(Box::new(listener));
    }

    /// Shows `tap` every record appended with `append`, after it is durable.
    pub fn tap(&mut self, tap: impl FnMut(&Record) + Send + Sync + 'static) {
        self.tap = Some(Box::new(tap));
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record (after any unsynced ones) and syncs it to disk.
    pub fn append(&mut self, event: Event) -> anyhow::Result<()> {
        let mut record = Record::new(event);
        let line = self.line_of(&mut record)?;
        self.pending.extend_from_slice(&line);
        let written = self
            .file
            .write_all(&self.pending)
            .and_then(|_| self.file.sync_data());
        self.pending.clear();
        written.with_context(|| format!("writing the journal {}", self.path.display()))?;
        if let Some(listener) = &self.listener {
            listener();
        }
        if let Some(tap) = &mut self.tap {
            tap(&record);
        }
        Ok(())
    }

    /// Appends `event` without a write of its own: it reaches the file, durably, with the next
    /// `append` (or when the journal is dropped). For records an effect's own record always
    /// follows — a recorded plugin call, then the decision or verdict it led to — so recording
    /// a call costs no system call on the launch's path.
    pub fn append_unsynced(&mut self, event: Event) -> anyhow::Result<()> {
        let line = self.line_of(&mut Record::new(event))?;
        self.pending.extend_from_slice(&line);
        Ok(())
    }

    /// One record as a line chained to the one before, secrets masked in every string before
    /// it exists on disk.
    fn line_of(&mut self, record: &mut Record) -> anyhow::Result<Vec<u8>> {
        record.prev = self.last.take();
        let mut line = crate::redact::json_line(record)?;
        self.last = Some(line_hash(&line));
        line.push(b'\n');
        Ok(line)
    }

    /// The sha256 of the last line written: what a report records so that even the last line
    /// cannot be changed unnoticed.
    pub fn head(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// Reads every record. A torn last line (a crash mid-write) is ignored; a bad line
    /// elsewhere is corruption and an error.
    pub fn read(path: &Path) -> anyhow::Result<Vec<Record>> {
        let folder = Rooted::open(path.parent().unwrap_or(Path::new(".")), false);
        let bytes = folder
            .and_then(|f| f.read(path.file_name().unwrap_or_default()))
            .with_context(|| format!("reading the journal {}", path.display()))?;
        Journal::parse(&bytes).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))
    }

    /// Reads every record of a journal's bytes. A torn last line is ignored; a bad line
    /// elsewhere is an error naming its line (`N: corrupt journal record: ...`).
    pub fn parse(bytes: &[u8]) -> Result<Vec<Record>, String> {
        // A torn tail may end mid-character, so lines are read as bytes, not text.
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let mut records = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_slice::<Record>(line) {
                Ok(r) => records.push(r),
                Err(_) if i + 1 == lines.len() => break,
                Err(e) => return Err(format!("{}: corrupt journal record: {e}", i + 1)),
            }
        }
        Ok(records)
    }
}

impl Drop for Journal {
    /// Unsynced records are not lost when no synced one follows (a run that stops).
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let _ = self
                .file
                .write_all(&self.pending)
                .and_then(|_| self.file.sync_data());
        }
    }
}

/// The whole lines of a journal's bytes (a torn last line, without its newline, is not one).
pub fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // After the last newline: empty, or a torn record.
    lines.pop();
    lines
}

/// The hash a line is chained by: its sha256 as written, newline excluded, in hex.
pub fn line_hash(line: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(line))
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where a torn tail is kept for whoever wants to look at it: `journal.jsonl.torn`.
pub fn torn_path(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(".torn");
    PathBuf::from(name)
}

/// Hands what follows `file`'s last newline to `aside` and truncates `file` there; returns the
/// bytes moved.
fn cut_torn_tail(
    file: &mut File,
    aside: impl FnOnce(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut bytes)?;
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let tail = &bytes[keep..];
    let torn = tail.len() as u64;
    if torn > 0 {
        aside(tail)?;
        file.set_len(keep as u64)?;
        file.sync_data()?;
    }
    Ok(torn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_line_in_the_middle_is_an_error_naming_it_and_a_torn_tail_is_not() {
        let good = r#"{"at":1,"event":"resumed","pid":1}"#;
        let torn = format!("{good}\n{good}\n{{\"at\":2,\"ev");
        assert_eq!(Journal::parse(torn.as_bytes()).unwrap().len(), 2);
        let middle = format!("{good}\n{{\"at\":2,\"ev\n{good}\n");
        let e = Journal::parse(middle.as_bytes()).unwrap_err();
        assert!(e.starts_with("2: corrupt journal record"), "{e}");
        // A tail torn inside a multi-byte character is still only a torn tail.
        let mut bytes = format!("{good}\n{good}\n").into_bytes();
        bytes.extend_from_slice(&"{\"at\":3,\"summary\":\"é".as_bytes()[..20]);
        assert_eq!(Journal::parse(&bytes).unwrap().len(), 2);
    }

    #[test]
    fn a_torn_last_record_is_cut_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut j = Journal::open(&path).unwrap();
        j.append(Event::Resumed {
            pid: 1,
            torn_bytes_dropped: 0,
        })
        .unwrap();
        drop(j);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(br#"{"at":2,"event":"stage-sta"#).unwrap();
        drop(f);
        let (mut j, torn) = Journal::open_repaired(&path).unwrap();
        assert_eq!(torn, 26);
        assert_eq!(
            std::fs::read_to_string(torn_path(&path)).unwrap(),
            "{\"at\":2,\"event\":\"stage-sta\n"
        );
        j.append(Event::Resumed {
            pid: 2,
            torn_bytes_dropped: torn,
        })
        .unwrap();
        let records = Journal::read(&path).unwrap();
        assert_eq!(
            records.len(),
            2,
            "both whole records read back, nothing corrupt"
        );
        assert!(matches!(
            records[1].event,
            Event::Resumed {
                pid: 2,
                torn_bytes_dropped: 26
            }
        ));
    }

    #[test]
    fn a_run_outcome_is_an_enum_with_the_same_words_as_before() {
        let old = r#"{"at":1,"event":"run-finished","outcome":"rolled-back","summary":"x"}"#;
        let r: Record = serde_json::from_str(old).unwrap();
        assert!(matches!(
            r.event,
            Event::RunFinished {
                outcome: Outcome::RolledBack,
                ..
            }
        ));
        assert_eq!(serde_json::to_string(&r).unwrap(), old);
        let typo = r#"{"at":1,"event":"run-finished","outcome":"rolledback","summary":"x"}"#;
        assert!(serde_json::from_str::<Record>(typo).is_err());
    }
}
