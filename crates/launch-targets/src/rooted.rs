//! A folder the host reads and writes under — a workspace, a runs folder, a run — opened once
//! as a `cap_std::fs::Dir`. Every path below it is resolved by cap-std, which refuses `..`
//! that climbs out, absolute paths and symlinks that lead outside: a run id, a UAT item id, a
//! plugin-supplied name or an object key fetched from S3 can never name a file elsewhere.

use std::io;
use std::path::{Component, Path, PathBuf};

use cap_std::fs::{Dir, OpenOptions};

pub struct Rooted {
    dir: Dir,
    root: PathBuf,
}

impl std::fmt::Debug for Rooted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Rooted").field(&self.root).finish()
    }
}

/// `name` when it is one plain path component (no separator, not `.` or `..`): a run id, a
/// release id, an item id.
pub fn single_component(name: &str) -> Option<&str> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) if !name.contains(['/', '\\']) => Some(name),
        _ => None,
    }
}

impl Rooted {
    /// Opens `root`, creating it first when `create` says so. This is the one place an
    /// ambient path is opened; everything below goes through the capability.
    pub fn open(root: &Path, create: bool) -> io::Result<Rooted> {
        if create {
            std::fs::create_dir_all(root)?;
        }
        let dir = Dir::open_ambient_dir(root, cap_std::ambient_authority())?;
        Ok(Rooted {
            dir,
            root: root.to_path_buf(),
        })
    }

    /// The folder's path, for messages.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Where `rel` is, for messages.
    pub fn display(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// The sub-folder `rel`, created when `create` says so; it cannot be outside this one.
    pub fn sub(&self, rel: impl AsRef<Path>, create: bool) -> io::Result<Rooted> {
        let rel = rel.as_ref();
        if create {
            self.dir.create_dir_all(rel)?;
        }
        Ok(Rooted {
            dir: self.dir.open_dir(rel)?,
            root: self.root.join(rel),
        })
    }

    pub fn read(&self, rel: impl AsRef<Path>) -> io::Result<Vec<u8>> {
        self.dir.read(rel)
    }

    pub fn exists(&self, rel: impl AsRef<Path>) -> bool {
        self.dir.exists(rel)
    }

    /// Writes `rel` whole or not at all: a temporary beside it, then a rename. Parent folders
    /// are created.
    pub fn write_atomically(&self, rel: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let rel = rel.as_ref();
        let name = rel
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
            .to_string_lossy();
        let parent = rel.parent().unwrap_or(Path::new(""));
        if !parent.as_os_str().is_empty() {
            self.dir.create_dir_all(parent)?;
        }
        // Unique per writer, so two writers of the same file never share a temporary.
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = parent.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        self.dir.write(&tmp, bytes)?;
        self.dir.rename(&tmp, &self.dir, rel).inspect_err(|_| {
            let _ = self.dir.remove_file(&tmp);
        })
    }

    /// Opens `rel` for reading.
    pub fn open_read(&self, rel: impl AsRef<Path>) -> io::Result<std::fs::File> {
        Ok(self.dir.open(rel)?.into_std())
    }

    /// Opens `rel` for reading and appending, creating it.
    pub fn open_append(&self, rel: impl AsRef<Path>) -> io::Result<std::fs::File> {
        let mut options = OpenOptions::new();
        options.create(true).read(true).append(true);
        Ok(self.dir.open_with(rel, &options)?.into_std())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_escapes_the_folder() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("runs");
        let rooted = Rooted::open(&root, true).unwrap();
        rooted.write_atomically("a/b.json", b"{}").unwrap();
        assert_eq!(rooted.read("a/b.json").unwrap(), b"{}");
        for hostile in ["../escaped", "a/../../escaped", "/tmp/escaped-absolute"] {
            assert!(
                rooted.write_atomically(hostile, b"x").is_err(),
                "{hostile} was written"
            );
            assert!(rooted.sub(hostile, true).is_err(), "{hostile} was opened");
        }
        assert!(!outer.path().join("escaped").exists());
        assert!(!Path::new("/tmp/escaped-absolute").exists());
        assert_eq!(
            single_component("20261128T0101Z-ab12"),
            Some("20261128T0101Z-ab12")
        );
        for bad in ["..", ".", "a/b", "/abs", "", "a\\b"] {
            assert_eq!(single_component(bad), None, "{bad}");
        }
    }
}
