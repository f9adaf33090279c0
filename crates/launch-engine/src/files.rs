//! Every file the host reads is read with a bound: a runbook, a key, a lock or a journal that
//! is `/dev/zero`, a FIFO or a runaway generated file is refused with its name and the limit,
//! never read until memory runs out. Each kind of file has its limit here, far above any
//! real one.

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use launch_targets::rooted::Rooted;

/// A runbook: hand-written TOML.
pub const RUNBOOK: u64 = 1 << 20;
/// An OpenSSH key or signature.
pub const KEY: u64 = 64 << 10;
/// `plugins.lock`, a signoffs or checklist file, a run's small state files.
pub const STATE: u64 = 4 << 20;
/// A fixture or a recorded call's inputs (raw latencies included).
pub const FIXTURE: u64 = 64 << 20;
/// One journal line.
pub const JOURNAL_LINE: usize = 16 << 20;

/// The bytes of `path`, at most `max`; `what` names the file in errors ("the runbook").
pub fn read(path: &Path, max: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("reading {what} {}", path.display()))?;
    capped(file, max, what, path)
}

/// `read`, as UTF-8 text.
pub fn read_to_string(path: &Path, max: u64, what: &str) -> anyhow::Result<String> {
    String::from_utf8(read(path, max, what)?)
        .map_err(|_| anyhow::anyhow!("{what} {} is not UTF-8 text", path.display()))
}

/// `read` of a file inside `folder` (through its capability).
pub fn read_rooted(
    folder: &Rooted,
    rel: impl AsRef<Path>,
    max: u64,
    what: &str,
) -> anyhow::Result<Vec<u8>> {
    let rel = rel.as_ref();
    let shown = folder.display(rel);
    let file = folder
        .open_read(rel)
        .with_context(|| format!("reading {what} {}", shown.display()))?;
    capped(file, max, what, &shown)
}

fn capped(file: std::fs::File, max: u64, what: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = file
        .metadata()
        .with_context(|| format!("reading {what} {}", path.display()))?;
    // A device or a pipe has no length to trust and may never end.
    anyhow::ensure!(
        meta.is_file(),
        "{what} {} is not a regular file",
        path.display()
    );
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len().min(max)).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {what} {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() as u64 <= max,
        "{what} {} is larger than {} bytes, the most one can be; is it the right file?",
        path.display(),
        max
    );
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_a_fifo_and_an_oversized_file_are_refused_by_name() {
        let e = read(Path::new("/dev/zero"), RUNBOOK, "the runbook").unwrap_err();
        assert_eq!(e.to_string(), "the runbook /dev/zero is not a regular file");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; 2048]).unwrap();
        let e = read(&big, 1024, "the runbook").unwrap_err().to_string();
        assert!(e.contains("is larger than 1024 bytes"), "{e}");
        assert_eq!(read(&big, 4096, "the runbook").unwrap().len(), 2048);
        let folder = Rooted::open(dir.path(), false).unwrap();
        assert!(read_rooted(&folder, "big.toml", 1024, "x").is_err());
    }
}
