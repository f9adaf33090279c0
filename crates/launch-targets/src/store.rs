//! Where releases live: a folder per release under `releases/`, and a `current` pointer naming
//! the live one. The local directory store backs the embedded default; S3 implements the same
//! trait in real use.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use anyhow::Context;
use sha2::{Digest, Sha256};

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send + 'a>>;

/// Called once per file as it lands (for a progress bar).
pub type OnUploaded<'a> = &'a (dyn Fn(&ManifestFile) + Send + Sync);

/// A store of site releases with a movable `current` pointer.
pub trait ArtifactStore: Send + Sync {
    /// Copies every file under `build_dir` into release `id`, with its manifest. The release
    /// is invisible until `set_current` names it. Returns the manifest.
    fn publish<'a>(
        &'a self,
        id: &'a str,
        build_dir: &'a Path,
        on_uploaded: OnUploaded<'a>,
    ) -> StoreFuture<'a, Manifest>;
    /// Makes `id` the live release.
    fn set_current<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;
    /// The live release, if any.
    fn current(&self) -> StoreFuture<'_, Option<String>>;
    /// Every published release, oldest first.
    fn releases(&self) -> StoreFuture<'_, Vec<String>>;
    /// Describes the store for messages, e.g. `local:/path` or `s3://bucket/prefix`.
    fn describe(&self) -> String;
}

/// What a release contains: written beside it as `manifest.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub release: String,
    /// Unix milliseconds.
    pub created_ms: u64,
    /// `git rev-parse HEAD` of the working directory, when it is a git checkout.
    pub git_sha: Option<String>,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    pub cache_control: String,
}

/// One file of a build, with its bytes.
pub type BuildFile = (ManifestFile, Vec<u8>);

/// Reads a build folder: every file with its digest and how it must be served.
pub fn read_build(id: &str, build_dir: &Path) -> anyhow::Result<(Manifest, Vec<BuildFile>)> {
    let mut files = Vec::new();
    for file in files_under(build_dir, |_| true)
        .with_context(|| format!("reading build output {}", build_dir.display()))?
    {
        let rel = file
            .strip_prefix(build_dir)
            .expect("under build dir")
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let entry = ManifestFile {
            sha256: hex::encode(Sha256::digest(&bytes)),
            size: bytes.len() as u64,
            content_type: content_type(&rel).to_string(),
            cache_control: cache_control(&rel).to_string(),
            path: rel,
        };
        files.push((entry, bytes));
    }
    anyhow::ensure!(
        !files.is_empty(),
        "build output {} is empty",
        build_dir.display()
    );
    let git_sha = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let manifest = Manifest {
        release: id.to_string(),
        created_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        git_sha,
        files: files.iter().map(|(f, _)| f.clone()).collect(),
    };
    Ok((manifest, files))
}

/// The content type of a site file, by extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Hashed assets (`app.3f9a1c.js`) never change and are cached for a year; entry points
/// (`index.html`, unhashed files) must revalidate so a deploy or rollback shows at once.
pub fn cache_control(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let parts: Vec<&str> = name.split('.').collect();
    let hashed = parts.len() >= 3
        && parts[parts.len() - 2].len() >= 6
        && parts[parts.len() - 2]
            .chars()
            .all(|c| c.is_ascii_alphanumeric());
    if hashed {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
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

/// Every file under `dir`, sorted, descending only into the folders `descend` accepts.
pub fn files_under(dir: &Path, descend: impl Fn(&Path) -> bool) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                if descend(&path) {
                    stack.push(path);
                }
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

impl LocalStore {
    pub fn publish(&self, id: &str, build_dir: &Path) -> anyhow::Result<Manifest> {
        let dest = self.release_dir(id);
        let staging = self.root.join("releases").join(format!(".{id}.partial"));
        let _ = std::fs::remove_dir_all(&staging);
        let (manifest, files) = read_build(id, build_dir)?;
        for (file, bytes) in &files {
            let target = staging.join(&file.path);
            std::fs::create_dir_all(target.parent().expect("has parent"))?;
            std::fs::write(&target, bytes)
                .with_context(|| format!("writing {}", target.display()))?;
        }
        // The manifest sits beside the release, not in it: it is not part of the site.
        std::fs::write(
            self.root
                .join("releases")
                .join(format!(".{id}.manifest.json")),
            serde_json::to_vec_pretty(&manifest)?,
        )?;
        // A half-copied release never appears under its real name.
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::rename(&staging, &dest)
            .with_context(|| format!("publishing release {id} in {}", self.describe()))?;
        Ok(manifest)
    }

    pub fn set_current(&self, id: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.release_dir(id).is_dir(),
            "release {id} does not exist in {}",
            self.describe()
        );
        write_atomically(&self.root.join("current"), id.as_bytes())
            .with_context(|| format!("moving current to {id}"))
    }

    pub fn current(&self) -> anyhow::Result<Option<String>> {
        match std::fs::read_to_string(self.root.join("current")) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("reading the current release pointer"),
        }
    }

    pub fn releases(&self) -> anyhow::Result<Vec<String>> {
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

    /// A file of the live release (`path` relative to the release root).
    pub fn read_current(&self, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
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

    pub fn describe(&self) -> String {
        format!("local:{}", self.root.display())
    }
}

impl ArtifactStore for LocalStore {
    fn publish<'a>(
        &'a self,
        id: &'a str,
        build_dir: &'a Path,
        on_uploaded: OnUploaded<'a>,
    ) -> StoreFuture<'a, Manifest> {
        Box::pin(async move {
            let manifest = LocalStore::publish(self, id, build_dir)?;
            manifest.files.iter().for_each(on_uploaded);
            Ok(manifest)
        })
    }
    fn set_current<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move { LocalStore::set_current(self, id) })
    }
    fn current(&self) -> StoreFuture<'_, Option<String>> {
        Box::pin(async move { LocalStore::current(self) })
    }
    fn releases(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move { LocalStore::releases(self) })
    }
    fn describe(&self) -> String {
        LocalStore::describe(self)
    }
}
