//! A plugin file's sha256, remembered while the file is unchanged.
//!
//! Hashing an 18 MB Python component takes ~13 ms here, most of a warm load. Like git's index,
//! the digest of a file is remembered in the artifact cache under its identity and change
//! stamps (device, inode, size, mtime and ctime in nanoseconds): any write to the file changes
//! its ctime, which no user can set back, so a changed file is always hashed again. A stamp
//! taken within a second of the file's last change is not remembered (a write in the same
//! clock tick could go unseen). The cache folder is trusted as it already is for compiled code.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};

/// What a file is: its first bytes (to classify it), its sha256 and its size.
pub struct FileDigest {
    pub head: Vec<u8>,
    pub sha256: String,
    pub size: u64,
}

const HEAD: usize = 64;

/// How long after its last change a file's digest may be remembered.
const SETTLED: Duration = Duration::from_secs(2);

/// The digest of `path`, from `memo_dir` when the file is unchanged since it was hashed.
pub fn of_file(path: &Path, memo_dir: Option<&Path>) -> std::io::Result<FileDigest> {
    of_file_settled(path, memo_dir, SETTLED)
}

fn of_file_settled(
    path: &Path,
    memo_dir: Option<&Path>,
    settled_after: Duration,
) -> std::io::Result<FileDigest> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let memo = memo_dir.and_then(|dir| stamp(path, &meta, settled_after).map(|s| (dir, s)));
    if let Some((dir, (key, _))) = &memo
        && let Ok(text) = std::fs::read_to_string(dir.join(key))
        && let Some((sha256, head)) = text.split_once('\n')
        && sha256.len() == 64
        && let Ok(head) = hex::decode(head.trim())
    {
        return Ok(FileDigest {
            head,
            sha256: sha256.to_string(),
            size: meta.len(),
        });
    }
    let digest = hash(file)?;
    if let Some((dir, (key, settled))) = memo
        && settled
        && digest.size == meta.len()
    {
        // Best effort: without the memo the next load hashes again.
        let _ = std::fs::create_dir_all(dir).and_then(|_| {
            let text = format!("{}\n{}\n", digest.sha256, hex::encode(&digest.head));
            let tmp = tempfile::NamedTempFile::new_in(dir)?;
            std::fs::write(tmp.path(), text)?;
            tmp.persist(dir.join(&key)).map_err(|e| e.error)?;
            Ok(())
        });
    }
    Ok(digest)
}

/// Hashes a file in small chunks: a fresh buffer the size of the file would cost more in page
/// faults than the copy.
fn hash(mut file: std::fs::File) -> std::io::Result<FileDigest> {
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; 256 << 10];
    let (mut head, mut size) = (Vec::new(), 0u64);
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if head.len() < HEAD {
            let take = (HEAD - head.len()).min(n);
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk[..n]);
        size += n as u64;
    }
    Ok(FileDigest {
        head,
        sha256: hex::encode(hasher.finalize()),
        size,
    })
}

/// The memo's name for this file as it is now, and whether its last change is old enough to
/// be told apart from a change in the same clock tick.
#[cfg(unix)]
fn stamp(path: &Path, meta: &std::fs::Metadata, after: Duration) -> Option<(String, bool)> {
    use std::os::unix::fs::MetadataExt;
    let canonical = std::fs::canonicalize(path).ok()?;
    let identity = format!(
        "{}\n{}:{}:{}:{}.{}:{}.{}",
        canonical.display(),
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    );
    let changed = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(meta.ctime().max(meta.mtime())).ok()?);
    let settled = SystemTime::now()
        .duration_since(changed)
        .is_ok_and(|age| age >= after);
    let key = hex::encode(&Sha256::digest(identity.as_bytes())[..16]);
    Some((format!("{key}.sha256"), settled))
}

#[cfg(not(unix))]
fn stamp(_: &Path, _: &std::fs::Metadata, _: Duration) -> Option<(String, bool)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_file_is_remembered_and_a_changed_one_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let memo = dir.path().join("memo");
        let file = dir.path().join("p.wasm");
        std::fs::write(&file, b"\0asm\x0d\0\x01\0one").unwrap();
        let fresh = of_file(&file, Some(&memo)).unwrap();
        assert!(
            !memo.exists(),
            "a file changed a moment ago is not remembered"
        );
        let first = of_file_settled(&file, Some(&memo), Duration::ZERO).unwrap();
        assert_eq!(first.sha256, fresh.sha256);
        assert_eq!(
            first.sha256,
            hex::encode(Sha256::digest(b"\0asm\x0d\0\x01\0one"))
        );
        assert_eq!(std::fs::read_dir(&memo).unwrap().count(), 1, "remembered");
        let again = of_file_settled(&file, Some(&memo), Duration::ZERO).unwrap();
        assert_eq!(
            (again.sha256, again.head, again.size),
            (first.sha256.clone(), first.head, first.size)
        );

        // Same size, mtime set back: the ctime still moved, so it is hashed again.
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, b"\0asm\x0d\0\x01\0two").unwrap();
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(mtime).unwrap();
        let changed = of_file_settled(&file, Some(&memo), Duration::ZERO).unwrap();
        assert_eq!(
            changed.sha256,
            hex::encode(Sha256::digest(b"\0asm\x0d\0\x01\0two"))
        );
    }
}
