//! Feature-flag back-ends: a flag is a rollout percentage (0 = off, 100 = everyone). The local
//! file provider backs the embedded default; the HTTP admin API and S3 JSON providers implement
//! the same trait in real use.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;

use super::store::write_atomically;

pub trait FlagStore: Send + Sync {
    fn get(&self, name: &str) -> anyhow::Result<u8>;
    fn set(&self, name: &str, percent: u8) -> anyhow::Result<()>;
    fn all(&self) -> anyhow::Result<BTreeMap<String, u8>>;
    fn describe(&self) -> String;
}

/// Flags in one JSON object on disk: `{"STATUS_BOARD_V2_ENABLED": 10, ...}`.
pub struct LocalFlags {
    path: PathBuf,
}

impl LocalFlags {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LocalFlags { path: path.into() }
    }
}

impl FlagStore for LocalFlags {
    fn get(&self, name: &str) -> anyhow::Result<u8> {
        Ok(self.all()?.get(name).copied().unwrap_or(0))
    }

    fn set(&self, name: &str, percent: u8) -> anyhow::Result<()> {
        anyhow::ensure!(
            percent <= 100,
            "flag {name}: {percent}% is not a percentage"
        );
        let mut flags = self.all()?;
        flags.insert(name.to_string(), percent);
        let json = serde_json::to_vec_pretty(&flags)?;
        write_atomically(&self.path, &json)
            .with_context(|| format!("writing flags {}", self.path.display()))
    }

    fn all(&self) -> anyhow::Result<BTreeMap<String, u8>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a JSON object of percentages",
                    self.path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).with_context(|| format!("reading flags {}", self.path.display())),
        }
    }

    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }
}
