//! Feature-flag providers: a flag is a rollout percentage (0 = off, 100 = everyone). The engine
//! moves flags through `FlagStore` alone; each provider is a file of its own:
//!
//! | provider | where the flag is | fences a stale runner's write? |
//! |---|---|---|
//! | `file` | the run folder's `flags.json` (embedded default) | no: one machine, one lease |
//! | `http` | the StatusBoard app's `/api/admin/feature-flags` | no: its API has no condition |
//! | `s3` | a JSON object of percentages in S3 | yes: conditional writes + metadata |
//! | `flagd` file | a flagd definition on the runner's machine | no: one machine, one lease |
//! | `flagd` object | a flagd definition in S3, synced by flagd | yes: as `s3` |
//! | `unleash` | a feature's gradual rollout, via the Admin API | no: the Admin API has no conditional update |
//!
//! Fencing ([12/16]) backs up the lease: a runner that lost its lease (paused, partitioned)
//! and wakes to write is refused by a store that fences. With one that does not, the lease
//! alone keeps a second copy of a run from writing. `FlagStore::fences` says which.

use std::future::Future;
use std::pin::Pin;

mod document;
pub mod file;
pub mod flagd;
pub mod http;
pub mod s3;
pub mod unleash;

pub use document::Document;
pub use file::LocalFlags;
pub use http::HttpFlags;
pub use s3::S3Flags;
pub use unleash::{OnRollback, UnleashFlags};

pub type FlagFuture<'a, T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send + 'a>>;

pub trait FlagStore: Send + Sync {
    fn get<'a>(&'a self, name: &'a str) -> FlagFuture<'a, u8>;
    fn set<'a>(&'a self, name: &'a str, percent: u8) -> FlagFuture<'a, ()>;
    fn describe(&self) -> String;

    /// `set`, carrying a fencing token: a store that can check it refuses the write when a
    /// newer holder of the same run has written the flag (a runner that lost its lease). The
    /// file and HTTP stores cannot check one, and write as `set` does (`fences` says which).
    fn set_fenced<'a>(
        &'a self,
        name: &'a str,
        percent: u8,
        fence: &'a Fence,
    ) -> FlagFuture<'a, ()> {
        let _ = fence;
        self.set(name, percent)
    }

    /// Whether `set_fenced` checks its token.
    fn fences(&self) -> bool {
        false
    }
}

/// Who writes, and as which holder of its run's lease: a write of generation 2 refuses to
/// be overwritten by generation 1 of the same run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fence {
    pub run_id: String,
    pub generation: u64,
}

/// A flag store whose every write carries `fence`: what a run holding a lease moves its flags
/// through, so a store that can check the token refuses a stale holder's write.
pub struct FencedFlags {
    inner: std::sync::Arc<dyn FlagStore>,
    fence: Fence,
}

impl FencedFlags {
    pub fn new(inner: std::sync::Arc<dyn FlagStore>, fence: Fence) -> FencedFlags {
        FencedFlags { inner, fence }
    }
}

impl FlagStore for FencedFlags {
    fn get<'a>(&'a self, name: &'a str) -> FlagFuture<'a, u8> {
        self.inner.get(name)
    }

    fn set<'a>(&'a self, name: &'a str, percent: u8) -> FlagFuture<'a, ()> {
        self.inner.set_fenced(name, percent, &self.fence)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn fences(&self) -> bool {
        self.inner.fences()
    }
}

/// A fenced write refused: a newer holder of the run wrote the flag.
#[derive(Debug, thiserror::Error)]
#[error(
    "fenced: {flag} was written by generation {newer} of run {run_id}, and this writer holds generation {ours}: it lost its lease, and writes nothing more"
)]
pub struct Fenced {
    pub flag: String,
    pub run_id: String,
    pub ours: u64,
    pub newer: u64,
}
