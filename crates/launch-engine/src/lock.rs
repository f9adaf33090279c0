//! One launch per environment at a time. A run takes a lock for every environment its stages
//! touch before its first effect; a second run is refused with the holder's name and since
//! when.
//!
//! - Every environment has a local lock: a file created atomically (`O_EXCL`) in the runs
//!   folder. A lock whose holder process is gone, or that expired, is taken over (that is how
//!   `resume` after `kill -9` works).
//! - An environment whose store is S3 also has a lock object, `launch/lock` under the store's
//!   prefix, written with `If-None-Match: *`, so runs on different machines exclude each other.
//!   A remote holder's process cannot be checked, so only its expiry (or the same run id, a
//!   resume) frees it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::journal::now_ms;
use super::owner::Process;
use launch_targets::s3::{S3Location, Written};

/// How long a lock holds without its holder releasing it.
const TTL_MS: u64 = 6 * 60 * 60 * 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub run_id: String,
    /// The process holding it (host, pid, start time, boot), so a pid reused by another
    /// process is not mistaken for the holder.
    #[serde(flatten)]
    pub process: Process,
    pub since_ms: u64,
    pub expires_ms: u64,
}

impl Holder {
    fn new(run_id: &str) -> Holder {
        let now = now_ms();
        Holder {
            run_id: run_id.to_string(),
            process: Process::me(),
            since_ms: now,
            expires_ms: now + TTL_MS,
        }
    }

    fn unknown() -> Holder {
        Holder {
            run_id: "(unknown)".into(),
            process: Process::default(),
            since_ms: 0,
            expires_ms: 0,
        }
    }

    fn who(&self) -> String {
        self.process.who()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("environment `{environment}` is locked by run {} ({}) since {} (lock {place}); wait for it to finish, resume it (`launch-host resume {}`), or remove the lock if that run is gone", holder.run_id, holder.who(), since(holder.since_ms), holder.run_id)]
    Held {
        environment: String,
        holder: Box<Holder>,
        place: String,
    },
    #[error("cannot lock environment `{environment}` ({place}): {reason}")]
    Unavailable {
        environment: String,
        place: String,
        reason: String,
    },
}

fn since(ms: u64) -> String {
    rfc3339(ms)
}

/// A time in milliseconds since the epoch, as RFC 3339 to the second.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// An environment to lock: its name, and its S3 store when it has one.
pub struct Target {
    pub environment: String,
    pub remote: Option<S3Location>,
}

/// Held locks. Local ones are released when dropped; remote ones by `release`.
pub struct Locks {
    held: Vec<PathBuf>,
    remote: Vec<(S3Location, String)>,
    run_id: String,
}

impl Drop for Locks {
    fn drop(&mut self) {
        for path in &self.held {
            // Only remove a lock that is still ours.
            if read(path).is_some_and(|h| h.run_id == self.run_id) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

impl Locks {
    /// Releases every lock; a remote lock is deleted only while it is still this run's.
    pub async fn release(mut self) {
        for (loc, key) in std::mem::take(&mut self.remote) {
            if let Ok(Some((bytes, etag))) = loc.get(&key).await
                && serde_json::from_slice::<Holder>(&bytes).is_ok_and(|h| h.run_id == self.run_id)
            {
                let _ = loc.delete(&key, etag.as_deref()).await;
            }
        }
    }
}

fn read(path: &Path) -> Option<Holder> {
    serde_json::from_slice(&crate::files::read(path, crate::files::STATE, "a lock").ok()?).ok()
}

/// Takes the lock of every target, all or none: local locks in `dir`, then remote ones.
pub async fn acquire(dir: &Path, run_id: &str, targets: &[Target]) -> Result<Locks, LockError> {
    let mut locks = Locks {
        held: Vec::new(),
        remote: Vec::new(),
        run_id: run_id.to_string(),
    };
    for t in targets {
        locks.held.push(acquire_local(dir, run_id, &t.environment)?);
    }
    for t in targets {
        if let Some(loc) = &t.remote {
            match acquire_remote(loc, run_id, &t.environment).await {
                Ok(key) => locks.remote.push((loc.clone(), key)),
                Err(e) => {
                    locks.release().await;
                    return Err(e);
                }
            }
        }
    }
    Ok(locks)
}

fn acquire_local(dir: &Path, run_id: &str, env: &str) -> Result<PathBuf, LockError> {
    let path = dir.join(format!("{env}.lock"));
    let io = |e: std::io::Error| LockError::Unavailable {
        environment: env.to_string(),
        place: path.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let holder = Holder::new(run_id);
    let body = serde_json::to_vec(&holder).expect("a holder serializes");
    let mut took_over = false;
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                std::io::Write::write_all(&mut f, &body).map_err(io)?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let current = read(&path);
                let stale = match &current {
                    // Our own run (a resume: it owns the run, see `owner`) or a holder that
                    // is gone or expired. A holder on another machine is judged by its expiry.
                    Some(h) => {
                        h.run_id == run_id
                            || h.process.alive() == Some(false)
                            || h.expires_ms < holder.since_ms
                    }
                    // Unreadable: a holder crashed between create and write.
                    None => true,
                };
                if stale && !took_over {
                    took_over = true;
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                return Err(LockError::Held {
                    environment: env.to_string(),
                    holder: Box::new(current.unwrap_or_else(Holder::unknown)),
                    place: path.display().to_string(),
                });
            }
            Err(e) => return Err(io(e)),
        }
    }
}

async fn acquire_remote(loc: &S3Location, run_id: &str, env: &str) -> Result<String, LockError> {
    let key = loc.key("launch/lock");
    let place = loc.url(&key);
    let unavailable = |e: anyhow::Error| LockError::Unavailable {
        environment: env.to_string(),
        place: place.clone(),
        reason: format!("{e:#}"),
    };
    let holder = Holder::new(run_id);
    let body = serde_json::to_vec(&holder).expect("a holder serializes");
    let mut took_over = false;
    loop {
        match loc
            .put(&key, body.clone(), "application/json", Some(None))
            .await
            .map_err(unavailable)?
        {
            Written::Done => return Ok(key),
            Written::Conflict => {
                let (current, etag) = match loc.get(&key).await.map_err(unavailable)? {
                    Some((bytes, etag)) => (serde_json::from_slice::<Holder>(&bytes).ok(), etag),
                    // Released between our write and our read: try again.
                    None => (None, None),
                };
                let stale = current
                    .as_ref()
                    .is_none_or(|h| h.run_id == run_id || h.expires_ms < holder.since_ms);
                if stale && !took_over {
                    took_over = true;
                    // Only the version we judged stale; a fresh lock someone else just took stays.
                    loc.delete(&key, etag.as_deref())
                        .await
                        .map_err(unavailable)?;
                    continue;
                }
                return Err(LockError::Held {
                    environment: env.to_string(),
                    holder: Box::new(current.unwrap_or_else(Holder::unknown)),
                    place,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(envs: &[&str]) -> Vec<Target> {
        envs.iter()
            .map(|e| Target {
                environment: e.to_string(),
                remote: None,
            })
            .collect()
    }

    #[tokio::test]
    async fn second_holder_is_refused_and_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let envs = local(&["production"]);
        let first = acquire(dir.path(), "run-a", &envs).await.unwrap();
        let err = acquire(dir.path(), "run-b", &envs)
            .await
            .err()
            .expect("refused");
        let msg = err.to_string();
        assert!(
            msg.contains("locked by run run-a")
                && msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        assert!(acquire(dir.path(), "run-b", &envs).await.is_ok());
    }

    #[tokio::test]
    async fn a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut stale = Holder {
            expires_ms: u64::MAX,
            ..Holder::new("dead")
        };
        stale.process.pid = u32::MAX - 1;
        std::fs::write(
            dir.path().join("staging.lock"),
            serde_json::to_vec(&stale).unwrap(),
        )
        .unwrap();
        assert!(
            acquire(dir.path(), "run-c", &local(&["staging"]))
                .await
                .is_ok()
        );
    }
}
