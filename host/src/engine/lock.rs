//! One launch per environment at a time. A run takes a lock for every environment its stages
//! touch before its first effect; a second run is refused with the holder's name and since
//! when. Locks are files created atomically (`O_EXCL`) in the runs folder; a lock whose holder
//! process is gone, or that expired, is taken over (that is how `resume` after `kill -9` works).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::journal::now_ms;

/// How long a lock holds without its holder proving it is alive.
const TTL_MS: u64 = 6 * 60 * 60 * 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub run_id: String,
    pub pid: u32,
    pub since_ms: u64,
    pub expires_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("environment `{environment}` is locked by run {} (pid {}) since {}; wait for it to finish, or remove {} if that run is gone", holder.run_id, holder.pid, since(holder.since_ms), path.display())]
    Held {
        environment: String,
        holder: Holder,
        path: PathBuf,
    },
    #[error("cannot lock environment `{environment}` ({}): {source}", path.display())]
    Io {
        environment: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn since(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// Held locks; released when dropped.
pub struct Locks {
    held: Vec<PathBuf>,
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

fn read(path: &Path) -> Option<Holder> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn alive(pid: u32) -> bool {
    // Linux: a live process has a /proc entry. Elsewhere, trust the expiry only.
    !Path::new("/proc/self").exists() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Takes the lock of every environment in `environments`, all or none.
pub fn acquire(dir: &Path, run_id: &str, environments: &[String]) -> Result<Locks, LockError> {
    let mut locks = Locks {
        held: Vec::new(),
        run_id: run_id.to_string(),
    };
    for env in environments {
        let path = dir.join(format!("{env}.lock"));
        let io = |source| LockError::Io {
            environment: env.clone(),
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let now = now_ms();
        let holder = Holder {
            run_id: run_id.to_string(),
            pid: std::process::id(),
            since_ms: now,
            expires_ms: now + TTL_MS,
        };
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
                    locks.held.push(path.clone());
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let current = read(&path);
                    let stale = match &current {
                        // Our own run (a resume) or a holder that is gone or expired.
                        Some(h) => h.run_id == run_id || !alive(h.pid) || h.expires_ms < now,
                        // Unreadable: a holder crashed between create and write.
                        None => true,
                    };
                    if stale && !took_over {
                        took_over = true;
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    let holder = current.unwrap_or(Holder {
                        run_id: "(unknown)".into(),
                        pid: 0,
                        since_ms: 0,
                        expires_ms: 0,
                    });
                    return Err(LockError::Held {
                        environment: env.clone(),
                        holder,
                        path,
                    });
                }
                Err(e) => return Err(io(e)),
            }
        }
    }
    Ok(locks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_and_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let envs = vec!["production".to_string()];
        let first = acquire(dir.path(), "run-a", &envs).unwrap();
        let err = acquire(dir.path(), "run-b", &envs).err().expect("refused");
        let msg = err.to_string();
        assert!(
            msg.contains("locked by run run-a")
                && msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        assert!(acquire(dir.path(), "run-b", &envs).is_ok());
    }

    #[test]
    fn a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let stale = Holder {
            run_id: "dead".into(),
            pid: u32::MAX - 1,
            since_ms: 1,
            expires_ms: u64::MAX,
        };
        std::fs::write(
            dir.path().join("staging.lock"),
            serde_json::to_vec(&stale).unwrap(),
        )
        .unwrap();
        assert!(acquire(dir.path(), "run-c", &["staging".to_string()]).is_ok());
    }
}
