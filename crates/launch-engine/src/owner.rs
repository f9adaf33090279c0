//! One run, one owner: exactly one process acts for a run at any time.
//!
//! - **On this machine** the owner holds an exclusive lock (`flock`) on the run folder's
//!   `.owner` file for as long as it lives. The kernel releases it when the process dies,
//!   however it dies (`kill -9` included), so a `resume` of a run whose process is alive is
//!   refused, and of five `resume`s started at once exactly one proceeds. The file holds the
//!   owner's record — host, pid, process start time, boot id — so a refusal names the owner.
//!   (`.owner` is never removed: a lock on an unlinked file would let a second owner in.)
//! - **A run mirrored to S3** also holds a lease (`crate::lease`): an object written with
//!   `If-None-Match: *`, renewed with `If-Match`, taken over by a standby `agent` or another
//!   machine's `resume` only once its holder is gone or silent past its TTL.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::journal::now_ms;
use launch_targets::rooted::Rooted;

/// Where the local owner record and lock live in a run folder.
pub const FILE: &str = ".owner";
/// The owner object issue 11 kept beside a mirrored run's files (leases replaced it): a fetch
/// never copies it into a run folder.
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
    /// The pid namespace (`/proc/self/ns/pid`): containers sharing a host name and a boot do
    /// not see each other's processes, so a pid means nothing across them either.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pid_ns: String,
}

impl Process {
    pub fn me() -> Process {
        let pid = std::process::id();
        Process {
            host: hostname(),
            pid,
            process_start: process_start(pid).unwrap_or(0),
            boot_id: boot_id(),
            pid_ns: pid_ns(),
        }
    }

    /// Whether it still runs: `None` when that cannot be known from here (another machine).
    pub fn alive(&self) -> Option<bool> {
        let me = Process::me();
        if self.host != me.host || (!self.pid_ns.is_empty() && self.pid_ns != me.pid_ns) {
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

fn pid_ns() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
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
    pub fn me(run_id: &str, command: &str) -> Owner {
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
    #[error("run {run_id} is owned by {} on another machine, which renewed its lease {place} {}s ago; it is taken over only once its owner has gone silent past its TTL (a standby `launch-host agent` does it as soon as that is sure): resume it again after that", owner.who(), now_ms().saturating_sub(owner.renewed_ms) / 1000)]
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
    /// A mirrored run's lease.
    lease: Option<crate::lease::Lease>,
}

/// Takes run `run_id` in `run_dir` for this process (doing `command`), and its lease under
/// `state` (with time to live `ttl`) when the run is mirrored; refused while another owner
/// lives.
pub async fn claim(
    run_dir: &Path,
    run_id: &str,
    command: &str,
    state: Option<&str>,
    terms: &crate::lease::Terms,
) -> Result<Ownership, OwnerError> {
    let me = Owner::me(run_id, command);
    let file = claim_local(run_dir, &me)?;
    let lease = match state {
        Some(url) => Some(crate::lease::Lease::acquire(url, &me, terms).await?),
        None => None,
    };
    Ok(Ownership { file, lease })
}

/// Takes run `run_id` in `run_dir` with a lease this process already took over (an agent).
pub fn taken(
    run_dir: &Path,
    run_id: &str,
    lease: crate::lease::Lease,
) -> Result<Ownership, OwnerError> {
    let file = claim_local(run_dir, &Owner::me(run_id, "agent"))?;
    Ok(Ownership {
        file,
        lease: Some(lease),
    })
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

impl Ownership {
    /// The run's lease, when it is mirrored.
    pub fn lease(&self) -> Option<&crate::lease::Lease> {
        self.lease.as_ref()
    }

    /// Gives the run up: the lease is released while it is still ours, and the local record
    /// emptied (the file stays, see the module's note) and unlocked.
    pub async fn release(self) {
        if let Some(lease) = &self.lease {
            lease.release().await;
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
        let contained = Process {
            pid_ns: "pid:[1]".into(),
            ..me.clone()
        };
        assert_eq!(
            contained.alive(),
            None,
            "another container of this host and boot"
        );
        let elsewhere = Process {
            host: format!("{}-elsewhere", me.host),
            ..me
        };
        assert_eq!(elsewhere.alive(), None, "cannot be known from here");
    }

    #[tokio::test]
    async fn a_second_claim_is_refused_naming_the_owner_and_a_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let ttl = crate::lease::Terms {
            ttl: Duration::from_secs(30),
            stays: None,
        };
        let first = claim(dir.path(), "r1", "run", None, &ttl).await.unwrap();
        let Err(OwnerError::Alive { owner, .. }) =
            claim(dir.path(), "r1", "resume", None, &ttl).await
        else {
            panic!("refused while the first owner holds it")
        };
        assert_eq!(owner.process.pid, std::process::id());
        assert_eq!(owner.command, "run");
        first.release().await;
        let again = claim(dir.path(), "r1", "resume", None, &ttl).await;
        assert!(again.is_ok(), "free once released");
    }
}
