//! The run journal: one JSON record per line, appended and synced to disk before the effect it
//! announces is treated as done, so a crash at any point leaves a journal that says exactly
//! which effects completed. `resume` replays it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use launch_targets::rooted::Rooted;

mod event;
mod lost;
pub mod rows;
pub mod signing;

pub use event::{CanaryCall, Event, Inputs, Record};
pub use lost::{HOST_FAILED, HostFailed, JournalLost, SALVAGED, mark};

/// The most a journal may hold: a week-long canary at one window a second writes well under.
pub const MAX_BYTES: u64 = 1 << 30;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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
    /// Lines written so far: the next record's `n` is one more.
    lines: u64,
    /// The file the journal is, and how long this process made it (see `lost`).
    place: lost::Place,
    /// Set once the journal was lost: what happened, and where records go instead.
    lost: Option<(JournalLost, Option<lost::Salvage>)>,
    /// Signs the chain's head at each checkpoint (`signing`).
    signer: Option<signing::Signer>,
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
        let bytes = crate::files::read_rooted(&folder, name, MAX_BYTES, "the journal")?;
        let whole = lines(&bytes);
        let last = whole.last().map(|l| line_hash(l));
        let place = lost::Place::of(&file).with_context(context)?;
        let journal = Journal {
            path: path.to_path_buf(),
            file,
            pending: Vec::new(),
            listener: None,
            tap: None,
            last,
            lines: whole.len() as u64,
            place,
            lost: None,
            signer: None,
        };
        Ok((journal, torn))
    }

    /// Signs the chain's head at every `checkpoint` from now on.
    pub fn sign_with(&mut self, signer: signing::Signer) {
        self.signer = Some(signer);
    }

    /// Appends a `signed` record over the last line, when the journal has a signer: the
    /// history up to here (unsynced records included: they are written with it) is the
    /// runner's, and provably so.
    pub fn checkpoint(&mut self) -> anyhow::Result<()> {
        let (Some(signer), Some(head)) = (&self.signer, &self.last) else {
            return Ok(());
        };
        let signed = signer.sign(self.lines, head)?;
        self.append(signed)
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

    /// Appends one record (after any unsynced ones) and syncs it to disk. A journal that
    /// moved under the run (deleted, replaced, written by another) is never written past: the
    /// append fails with `JournalLost`, and this and later records go to the salvage file.
    pub fn append(&mut self, event: Event) -> anyhow::Result<()> {
        let mut record = Record::new(event);
        self.push_line(&mut record)?;
        if self.lost.is_none()
            && let Err(what) = self.place.check(&self.path, &self.file)
        {
            // Still ours when it is gone from its place but untouched: copy it aside.
            let copy = !what.starts_with("was changed");
            let salvage = lost::salvage(&self.path, &self.file, self.place.len, copy);
            let lost = JournalLost {
                path: self.path.clone(),
                what,
            };
            self.lost = Some((lost.clone(), salvage));
            // The record that found it out is kept with the others, where they can be.
            let _ = self.write_salvage();
            return Err(lost.into());
        }
        if let Some((lost, _)) = &self.lost {
            // Kept in the salvage file (and still told to the notifications: a host failure
            // is exactly what they are for), but the run must not go on.
            let lost = lost.clone();
            if self.write_salvage().is_ok()
                && let Some(tap) = &mut self.tap
            {
                tap(&record);
            }
            return Err(lost.into());
        }
        let written = self
            .file
            .write_all(&self.pending)
            .and_then(|_| self.file.sync_data());
        let n = self.pending.len() as u64;
        if let Err(e) = written {
            // Unwritable (a full disk, an immutable file, a vanished folder): the same as
            // lost. What this process wrote is still what it wrote: copied aside with the rest.
            let lost = JournalLost {
                path: self.path.clone(),
                what: format!("cannot be written ({e})"),
            };
            let salvage = lost::salvage(&self.path, &self.file, self.place.len, true);
            self.lost = Some((lost.clone(), salvage));
            let _ = self.write_salvage();
            return Err(lost.into());
        }
        self.pending.clear();
        self.place.len += n;
        if let Some(listener) = &self.listener {
            listener();
        }
        if let Some(tap) = &mut self.tap {
            tap(&record);
        }
        Ok(())
    }

    /// The pending records, into the salvage file of a lost journal (when it has one).
    fn write_salvage(&mut self) -> anyhow::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        match &mut self.lost {
            Some((_, Some(s))) => s
                .file
                .write_all(&pending)
                .and_then(|_| s.file.sync_data())
                .with_context(|| format!("writing {}", s.name)),
            Some((lost, None)) => Err(lost.clone().into()),
            None => Ok(()),
        }
    }

    /// What happened to the journal, once it was lost, and the salvage file's name.
    pub fn lost(&self) -> Option<(&JournalLost, Option<&str>)> {
        self.lost
            .as_ref()
            .map(|(l, s)| (l, s.as_ref().map(|s| s.name.as_str())))
    }

    /// Appends `event` without a write of its own: it reaches the file, durably, with the next
    /// `append` (or when the journal is dropped). For records an effect's own record always
    /// follows — a recorded plugin call, then the decision or verdict it led to — so recording
    /// a call costs no system call on the launch's path.
    pub fn append_unsynced(&mut self, event: Event) -> anyhow::Result<()> {
        self.push_line(&mut Record::new(event))
    }

    /// One record as a line chained to the one before, secrets masked in every string before
    /// it exists on disk, added to the pending bytes (written in place: a canary adds three
    /// lines per window). A record that cannot be written leaves the chain as it was.
    fn push_line(&mut self, record: &mut Record) -> anyhow::Result<()> {
        record.prev = self.last.take();
        record.n = self.lines + 1;
        let start = self.pending.len();
        if let Err(e) = crate::redact::json_line_into(&mut self.pending, record) {
            self.pending.truncate(start);
            self.last = record.prev.take();
            return Err(e.into());
        }
        self.lines += 1;
        self.last = Some(line_hash(&self.pending[start..]));
        self.pending.push(b'\n');
        Ok(())
    }

    /// The sha256 of the last line written: what a report records so that even the last line
    /// cannot be changed unnoticed.
    pub fn head(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// Reads every record. A torn last line (a crash mid-write) is ignored; a bad line
    /// elsewhere is corruption and an error.
    pub fn read(path: &Path) -> anyhow::Result<Vec<Record>> {
        let folder = Rooted::open(path.parent().unwrap_or(Path::new(".")), false)
            .with_context(|| format!("reading the journal {}", path.display()))?;
        let name = path.file_name().unwrap_or_default();
        let bytes = crate::files::read_rooted(&folder, name, MAX_BYTES, "the journal")?;
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
            if line.len() > crate::files::JOURNAL_LINE {
                return Err(format!(
                    "{}: a journal record of {} bytes, more than the {} one can be",
                    i + 1,
                    line.len(),
                    crate::files::JOURNAL_LINE
                ));
            }
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
        if self.lost.is_some() {
            let _ = self.write_salvage();
        } else if !self.pending.is_empty() && self.place.check(&self.path, &self.file).is_ok() {
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
    (&mut *file).take(MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_BYTES} bytes, the most a journal can be"
        )));
    }
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
        use crate::record::Outcome;
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
