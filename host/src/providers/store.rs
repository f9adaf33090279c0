//! Where releases live: a folder per release under `releases/`, and a `current` pointer naming
//! the live one. The local directory store backs the embedded default; S3 implements the same
//! trait in real use.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// A store of site releases with a movable `current` pointer.
pub trait ArtifactStore: Send + Sync {
    /// Copies every file under `build_dir` into release `id`, then writes its manifest. The
    /// release is invisible until `set_current` names it.
    fn publish(&self, id: &str, build_dir: &Path) -> anyhow::Result<Vec<String>>;
    /// Makes `id` the live release, atomically.
    fn set_current(&self, id: &str) -> anyhow::Result<()>;
    /// The live release, if any.
    fn current(&self) -> anyhow::Result<Option<String>>;
    /// Every published release, oldest first.
    fn releases(&self) -> anyhow::Result<Vec<String>>;
    /// A file of the live release (`path` relative to the release root).
    fn read_current(&self, path: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Describes the store for messages, e.g. `local:/path`.
    fn describe(&self) -> String;
}

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    fn release_dir(&self, id: &str) -> PathBuf {
        self.root.join("releases").join(id)
    }
}

/// Writes a file by renaming a complete temporary file into place.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // Unique per writer, so two writers of the same file never share a temporary.
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

impl ArtifactStore for LocalStore {
    fn publish(&self, id: &str, build_dir: &Path) -> anyhow::Result<Vec<String>> {
        let dest = self.release_dir(id);
        let staging = self.root.join("releases").join(format!(".{id}.partial"));
        let _ = std::fs::remove_dir_all(&staging);
        let mut manifest = Vec::new();
        for file in files_under(build_dir)
            .with_context(|| format!("reading build output {}", build_dir.display()))?
        {
            let rel = file
                .strip_prefix(build_dir)
                .expect("under build dir")
                .to_string_lossy()
                .replace('\\', "/");
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let target = staging.join(&rel);
            std::fs::create_dir_all(target.parent().expect("has parent"))?;
            std::fs::write(&target, &bytes)
                .with_context(|| format!("writing {}", target.display()))?;
            manifest.push(rel);
        }
        anyhow::ensure!(
            !manifest.is_empty(),
            "build output {} is empty",
            build_dir.display()
        );
        // A half-copied release never appears under its real name.
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::rename(&staging, &dest)
            .with_context(|| format!("publishing release {id} in {}", self.describe()))?;
        Ok(manifest)
    }

    fn set_current(&self, id: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.release_dir(id).is_dir(),
            "release {id} does not exist in {}",
            self.describe()
        );
        write_atomically(&self.root.join("current"), id.as_bytes())
            .with_context(|| format!("moving current to {id}"))
    }

    fn current(&self) -> anyhow::Result<Option<String>> {
        match std::fs::read_to_string(self.root.join("current")) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("reading the current release pointer"),
        }
    }

    fn releases(&self) -> anyhow::Result<Vec<String>> {
        let dir = self.root.join("releases");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        ids.sort(); // release ids start with a UTC timestamp
        Ok(ids)
    }

    fn read_current(&self, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(id) = self.current()? else {
            return Ok(None);
        };
        if path
            .split('/')
            .any(|seg| seg == ".." || seg.starts_with('.'))
        {
            return Ok(None);
        }
        match std::fs::read(self.release_dir(&id).join(path)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn describe(&self) -> String {
        format!("local:{}", self.root.display())
    }
}
