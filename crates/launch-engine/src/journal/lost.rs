//! A journal that moves under a running run — deleted, replaced by another file, written by
//! someone else, or no longer writable — is noticed at the next append, never written past:
//! appending into a deleted file would lose the run's history silently. The run then ends as
//! a host failure (its flag put back), and the records it could not write where they belong
//! go to `journal.salvaged.jsonl` — after the journal as this process wrote it, when its file
//! is still the one this process wrote — with `host-failed.json` saying what happened, so the
//! run folder tells the truth even when its journal does not.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use launch_targets::rooted::Rooted;
use serde::{Deserialize, Serialize};

/// The journal can no longer be written where it belongs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the journal {} {what}: the run's history cannot be written where it belongs, so the run stops", path.display())]
pub struct JournalLost {
    pub path: PathBuf,
    /// What happened to it, in words: "was deleted", "was replaced by another file"...
    pub what: String,
}

/// What a run folder says about a run whose journal was lost (`host-failed.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostFailed {
    pub at_ms: u64,
    pub reason: String,
    /// The file holding what the run wrote (when it could be saved) and its last records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salvaged: Option<String>,
}

/// The marker a run folder keeps when its journal was lost.
pub const HOST_FAILED: &str = "host-failed.json";
/// Where the records go once the journal is lost.
pub const SALVAGED: &str = "journal.salvaged.jsonl";

impl HostFailed {
    /// The marker of `run_dir`, if its journal was lost.
    pub fn of_run(run_dir: &Path) -> Option<HostFailed> {
        let bytes = crate::files::read(
            &run_dir.join(HOST_FAILED),
            64 << 10,
            "a run's failure marker",
        )
        .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// The file a journal was opened as: which one, and how long this process made it.
pub(super) struct Place {
    dev: u64,
    ino: u64,
    pub len: u64,
}

impl Place {
    pub fn of(file: &File) -> std::io::Result<Place> {
        let m = file.metadata()?;
        Ok(Place {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
        })
    }

    /// Whether the journal is still the file this process writes, as long as it left it;
    /// what happened to it when not.
    pub fn check(&self, path: &Path, file: &File) -> Result<(), String> {
        let here = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("was deleted".into());
            }
            Err(e) => return Err(format!("cannot be looked at ({e})")),
        };
        if (here.dev(), here.ino()) != (self.dev, self.ino) {
            return Err("was replaced by another file".into());
        }
        let len = file
            .metadata()
            .map_err(|e| format!("cannot be looked at ({e})"))?
            .len();
        if len != self.len {
            return Err(format!(
                "was changed by another writer ({len} bytes where this run wrote {})",
                self.len
            ));
        }
        Ok(())
    }
}

/// Where the records go once the journal is lost.
pub(super) struct Salvage {
    pub file: File,
    pub name: String,
}

/// Opens the salvage file beside the lost journal and copies into it the journal as this
/// process wrote it — when `copy` says its file still holds that (deleted, or renamed
/// away, the file this process holds open is intact).
pub(super) fn salvage(path: &Path, file: &File, len: u64, copy: bool) -> Option<Salvage> {
    let folder = Rooted::open(path.parent().unwrap_or(Path::new(".")), false).ok()?;
    let mut out = folder.open_append(SALVAGED).ok()?;
    if copy && out.metadata().ok()?.len() == 0 {
        let mut bytes = vec![0u8; usize::try_from(len).ok()?];
        file.read_exact_at(&mut bytes, 0).ok()?;
        out.write_all(&bytes).ok()?;
    }
    out.sync_data().ok()?;
    Some(Salvage {
        file: out,
        name: SALVAGED.into(),
    })
}

/// Writes the failure marker into the run folder; whether it could be.
pub fn mark(run_dir: &Path, marker: &HostFailed) -> bool {
    let Ok(folder) = Rooted::open(run_dir, false) else {
        return false;
    };
    let bytes = serde_json::to_vec_pretty(marker).expect("a marker serializes");
    folder.write_atomically(HOST_FAILED, &bytes).is_ok()
}
