//! Flags in a file on the runner's machine, replaced atomically on every change: the run
//! folder's `flags.json` (the embedded default), or a flagd definition that flagd syncs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;

use super::document::{self, Document};
use super::{FlagFuture, FlagStore};
use crate::store::write_atomically;

/// The most a flag file may hold: larger is refused, not read until memory runs out.
const MAX_FLAGS_BYTES: u64 = 4 << 20;

/// Flags in a file, replaced atomically on every change (a reader never sees half a file).
pub struct LocalFlags {
    path: PathBuf,
    document: Document,
}

impl LocalFlags {
    /// The plain map of percentages: `{"STATUS_BOARD_V2_ENABLED": 10, ...}`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LocalFlags {
            path: path.into(),
            document: Document::Percentages,
        }
    }

    /// A flagd flag definition that flagd syncs (its file provider watches the path).
    pub fn flagd(path: impl Into<PathBuf>) -> Self {
        LocalFlags {
            path: path.into(),
            document: Document::Flagd,
        }
    }

    fn bytes(&self) -> anyhow::Result<Option<Vec<u8>>> {
        use std::io::Read;
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("reading flags {}", self.path.display()));
            }
        };
        let mut bytes = Vec::new();
        file.take(MAX_FLAGS_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading flags {}", self.path.display()))?;
        anyhow::ensure!(
            bytes.len() as u64 <= MAX_FLAGS_BYTES,
            "{} is larger than the {MAX_FLAGS_BYTES} bytes a flag file may be",
            self.path.display()
        );
        Ok(Some(bytes))
    }

    pub fn read(&self, name: &str) -> anyhow::Result<u8> {
        let source = self.path.display().to_string();
        self.document
            .percent(self.bytes()?.as_deref(), name, &source)
    }

    /// Every flag of a plain map (what the embedded target's admin API lists).
    pub fn read_all(&self) -> anyhow::Result<BTreeMap<String, u8>> {
        anyhow::ensure!(
            self.document == Document::Percentages,
            "{} is a flagd definition, not a map of percentages",
            self.path.display()
        );
        match self.bytes()? {
            Some(b) => document::percentages(&b, &self.path.display().to_string()),
            None => Ok(BTreeMap::new()),
        }
    }

    pub fn write(&self, name: &str, percent: u8) -> anyhow::Result<()> {
        let source = self.path.display().to_string();
        let bytes = self
            .document
            .with_percent(self.bytes()?.as_deref(), name, percent, &source)?;
        write_atomically(&self.path, &bytes)
            .with_context(|| format!("writing flags {}", self.path.display()))
    }
}

impl FlagStore for LocalFlags {
    fn get<'a>(&'a self, name: &'a str) -> FlagFuture<'a, u8> {
        Box::pin(async move { self.read(name) })
    }

    fn set<'a>(&'a self, name: &'a str, percent: u8) -> FlagFuture<'a, ()> {
        Box::pin(async move { self.write(name, percent) })
    }

    fn describe(&self) -> String {
        match self.document {
            Document::Percentages => format!("file:{}", self.path.display()),
            Document::Flagd => format!("flagd:{}", self.path.display()),
        }
    }
}
