//! One run, one owner: exactly one process acts for a run at any time.
//!
//! - **On this machine** the owner holds an exclusive lock (`flock`) on the run folder's
//!   `.owner` file for as long as it lives. The kernel releases it when the process dies,
//!   however it dies (`kill -9` included), so a `resume` of a run whose process is alive is
//!   refused, and of five `resume`s started at once exactly one proceeds. The file holds the
//!   owner's record — host, pid, process start time, boot id — so a refusal names the owner.
//!   (`.owner` is never removed: a lock on an unlinked file would let a second owner in.)
//! - **A run mirrored to S3** also has an owner object, `launch/runs/<id>/owner.json`, written
//!   with `If-None-Match: *` when the run starts and taken over with `If-Match: <etag>`; its
//!   owner renews it every `RENEW`. Another machine's `resume` takes it only once it has gone
//!   `STALE` without renewal (that margin absorbs clock skew between machines of up to
//!   `STALE - RENEW`), or at once when it names a process of this machine's boot that is gone.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::journal::now_ms;
use launch_targets::rooted::Rooted;
use launch_targets::s3::S3Location;

/// How often a mirrored run's owner renews its owner object.
pub const RENEW: Duration = Duration::from_secs(20);
/// How long an owner object may go unrenewed before another machine may take the run.
pub const STALE: Duration = Duration::from_secs(60);

/// Where the local owner record and lock live in a run folder.
pub const FILE: &str = ".owner";
/// The owner object's name under a mirrored run's prefix (not part of the run's state: the
/// mirror never uploads it and a fetch never copies it).
pub const OBJECT: &str = "owner.json";

/// A process, told apart from a later one that reuses its pid.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Process {
    pub host: String,
    pub pid: u32,
    /// When it started, in clock ticks after boot (`/proc/PID/stat`, field 22).
    #[serde(default)]
    pub process_start: u64,
    /// `/proc/sys/kernel/random/boot_id`: a pid and start time mean nothing across a reboot.
    #[serde(default)]
    pub boot_id: String,
}

impl Process {
    pub fn me() -> Process {
        let pid = std::process::id();
        Process {
            host: hostname(),
            pid,
            process_start: process_start(pid).unwrap_or(0),
            boot_id: boot_id(),
        }
    }

    /// Whether it still runs: `None` when that cannot be known from here (another machine).
    pub fn alive(&self) -> Option<bool> {
        let me = Process::me();
        if self.host != me.host {
            return None;
        }
        if self.boot_id.is_empty() {
            // A record from before boot ids were kept: the pid is all there is.
            return Some(Path::new(&format!("/proc/{}", self.pid)).exists());
        }
        if self.boot_id != me.boot_id {
            // The machine restarted since: every process of that boot is gone.
            return Some(false);
        }
        Some(process_start(self.pid).is_some_and(|s| s == self.process_start))
    }

    pub fn who(&self) -> String {
        if self.host.is_empty() {
            format!("pid {}", self.pid)
        } else {
            format!("pid {} on {}", self.pid, self.host)
        }
    }
}

/// When `pid` started, in clock ticks after boot; `None` when it does not run.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses.
    let after = stat.rsplit_once(')')?.1;
    // Fields 3.. follow; the start time is field 22, the 20th after the name.
    after.split_whitespace().nth(19)?.parse().ok()
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Who owns a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Owner {
    pub run_id: String,
    #[serde(flatten)]
    pub process: Process,
    /// What it is doing: `run` or `resume`.
    pub command: String,
    pub since_ms: u64,
    /// When it last said it is alive (the owner object of a mirrored run is renewed).
    pub renewed_ms: u64,
}

impl Owner {
    fn me(run_id: &str, command: &str) -> Owner {
        let now = now_ms();
        Owner {
            run_id: run_id.into(),
            process: Process::me(),
            command: command.into(),
            since_ms: now,
            renewed_ms: now,
        }
    }

    pub fn who(&self) -> String {
        format!(
            "{} (`{}` since {})",
            self.process.who(),
            self.command,
            crate::lock::rfc3339(self.since_ms)
        )
    }

    /// The record in a run folder's `.owner`, if any (an empty file is a released run).
    pub fn of_run(run_dir: &Path) -> Option<Owner> {
        let bytes =
            crate::files::read(&run_dir.join(FILE), crate::files::STATE, "the owner record")
                .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error("run {run_id} is being run by {} ({place}); only one process may act for a run: wait for it to finish, or stop it first (`launch-host status {run_id}` shows where it is)", owner.who())]
    Alive {
        run_id: String,
        owner: Box<Owner>,
        place: String,
    },
    #[error("run {run_id} is owned by {} on another machine, which renewed {place} {}s ago; another machine takes a run over only once its owner has gone {}s without renewing: resume it again after that", owner.who(), now_ms().saturating_sub(owner.renewed_ms) / 1000, STALE.as_secs())]
    Remote {
        run_id: String,
        owner: Box<Owner>,
        place: String,
    },
    #[error("cannot take run {run_id} ({place}): {reason}")]
    Unavailable {
        run_id: String,
        place: String,
        reason: String,
    },
}

/// This process's ownership of a run: held until `release` (or the process's end).
pub struct Ownership {
    /// The locked `.owner` file: the lock lasts as long as it is open.
    file: std::fs::File,
    remote: Option<Remote>,
}

struct Remote {
    loc: S3Location,
    key: String,
    etag: Arc<Mutex<String>>,
    renewer: tokio::task::JoinHandle<()>,
}

/// Takes run `run_id` in `run_dir` for this process (doing `command`), and its owner object
/// under `state` when the run is mirrored; refused while another owner lives.
pub async fn claim(
    run_dir: &Path,
    run_id: &str,
    command: &str,
    state: Option<&str>,
) -> Result<Ownership, OwnerError> {
    let me = Owner::me(run_id, command);
    let file = claim_local(run_dir, &me)?;
    let remote = match state {
        Some(url) => Some(claim_remote(url, &me).await?),
        None => None,
    };
    Ok(Ownership { file, remote })
}

fn claim_local(run_dir: &Path, me: &Owner) -> Result<std::fs::File, OwnerError> {
    let place = run_dir.join(FILE).display().to_string();
    let unavailable = |e: std::io::Error| OwnerError::Unavailable {
        run_id: me.run_id.clone(),
        place: place.clone(),
        reason: e.to_string(),
    };
    let folder = Rooted::open(run_dir, false).map_err(unavailable)?;
    let mut file = folder.open_append(FILE).map_err(unavailable)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(OwnerError::Alive {
                run_id: me.run_id.clone(),
                owner: Box::new(holder(run_dir, me)),
                place,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(unavailable(e)),
    }
    let body = serde_json::to_vec(me).expect("an owner serializes");
    use std::io::Write as _;
    file.set_len(0)
        .and_then(|_| file.write_all(&body))
        .and_then(|_| file.sync_data())
        .map_err(unavailable)?;
    Ok(file)
}

/// The owner named in a locked `.owner`. It may not have written its record yet (it took the
/// lock a moment ago): wait a little for a record naming a live process.
fn holder(run_dir: &Path, me: &Owner) -> Owner {
    let mut last = None;
    for _ in 0..40 {
        if let Some(o) = Owner::of_run(run_dir) {
            if o.process.alive() != Some(false) {
                return o;
            }
            last = Some(o);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    last.unwrap_or_else(|| Owner {
        process: Process::default(),
        command: "(unknown)".into(),
        ..me.clone()
    })
}

async fn claim_remote(url: &str, me: &Owner) -> Result<Remote, OwnerError> {
    let unavailable = |place: &str, e: anyhow::Error| OwnerError::Unavailable {
        run_id: me.run_id.clone(),
        place: place.to_string(),
        reason: format!("{e:#}"),
    };
    let loc = S3Location::connect(url)
        .await
        .map_err(|e| unavailable(url, e))?;
    let key = format!("{}{OBJECT}", crate::mirror::run_prefix(&loc, &me.run_id));
    let place = loc.url(&key);
    let body = serde_json::to_vec(me).expect("an owner serializes");
    // A few rounds at most: each conflict means another claimant moved first.
    for _ in 0..3 {
        let put = loc.put_tagged(&key, body.clone(), "application/json", Some(None));
        if let Some(etag) = put.await.map_err(|e| unavailable(&place, e))? {
            return Ok(Remote::start(loc, key, etag, me.clone()));
        }
        let Some((bytes, Some(etag))) = loc.get(&key).await.map_err(|e| unavailable(&place, e))?
        else {
            continue; // released between our write and our read
        };
        if let Ok(owner) = serde_json::from_slice::<Owner>(&bytes) {
            let unrenewed = now_ms().saturating_sub(owner.renewed_ms);
            match owner.process.alive() {
                Some(true) => {
                    return Err(OwnerError::Alive {
                        run_id: me.run_id.clone(),
                        owner: Box::new(owner),
                        place,
                    });
                }
                None if unrenewed < STALE.as_millis() as u64 => {
                    return Err(OwnerError::Remote {
                        run_id: me.run_id.clone(),
                        owner: Box::new(owner),
                        place,
                    });
                }
                // Gone (this machine's boot), or silent past the margin.
                _ => {}
            }
        }
        let taken = loc.put_tagged(&key, body.clone(), "application/json", Some(Some(&etag)));
        if let Some(etag) = taken.await.map_err(|e| unavailable(&place, e))? {
            return Ok(Remote::start(loc, key, etag, me.clone()));
        }
    }
    Err(unavailable(
        &place,
        anyhow::anyhow!("other processes keep taking it; try again"),
    ))
}

impl Remote {
    fn start(loc: S3Location, key: String, etag: String, me: Owner) -> Remote {
        let etag = Arc::new(Mutex::new(etag));
        let (l, k, e) = (loc.clone(), key.clone(), etag.clone());
        let renewer = tokio::spawn(async move {
            let mut me = me;
            loop {
                tokio::time::sleep(RENEW).await;
                me.renewed_ms = now_ms();
                let body = serde_json::to_vec(&me).expect("an owner serializes");
                let current = e.lock().unwrap_or_else(|p| p.into_inner()).clone();
                match l
                    .put_tagged(&k, body, "application/json", Some(Some(&current)))
                    .await
                {
                    Ok(Some(next)) => *e.lock().unwrap_or_else(|p| p.into_inner()) = next,
                    // Taken over: someone judged this owner gone. Stopping every effect
                    // (fencing) is the lease's job; here the renewals stop.
                    Ok(None) => return,
                    // A network hiccup: the next round tries again.
                    Err(_) => {}
                }
            }
        });
        Remote {
            loc,
            key,
            etag,
            renewer,
        }
    }
}

impl Drop for Remote {
    /// A run given up without `release` (an error before it started): renewals stop, so the
    /// object goes stale and another machine may take the run.
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

impl Ownership {
    /// Gives the run up: the owner object is deleted while it is still ours, and the local
    /// record emptied (the file stays, see the module's note) and unlocked.
    pub async fn release(self) {
        if let Some(r) = &self.remote {
            r.renewer.abort();
            let etag = r.etag.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let _ = r.loc.delete(&r.key, Some(&etag)).await;
        }
        let _ = self.file.set_len(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not_it() {
        let me = Process::me();
        assert!(me.process_start > 0, "{me:?}");
        assert_eq!(me.alive(), Some(true));
        let reused = Process {
            process_start: me.process_start + 1,
            ..me.clone()
        };
        assert_eq!(reused.alive(), Some(false), "same pid, another start time");
        let rebooted = Process {
            boot_id: "another-boot".into(),
            ..me.clone()
        };
        assert_eq!(rebooted.alive(), Some(false));
        let elsewhere = Process {
            host: format!("{}-elsewhere", me.host),
            ..me
        };
        assert_eq!(elsewhere.alive(), None, "cannot be known from here");
    }

    #[tokio::test]
    async fn a_second_claim_is_refused_naming_the_owner_and_a_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = claim(dir.path(), "r1", "run", None).await.unwrap();
        let Err(OwnerError::Alive { owner, .. }) = claim(dir.path(), "r1", "resume", None).await
        else {
            panic!("refused while the first owner holds it")
        };
        assert_eq!(owner.process.pid, std::process::id());
        assert_eq!(owner.command, "run");
        first.release().await;
        let again = claim(dir.path(), "r1", "resume", None).await;
        assert!(again.is_ok(), "free once released");
    }
}
