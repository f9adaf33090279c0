//! Leases: who acts for a mirrored run, so that another machine can take a launch over when its
//! runner dies — with S3's conditional writes as the only coordination (no consensus of our
//! own), as Terraform's S3 lock and Delta Lake's commits use them.
//!
//! A run whose runbook has S3 state holds `launch/leases/<run-id>.json`: its owner (host, pid,
//! process start, boot id), a **generation** and a TTL. The owner renews it every TTL/3 with
//! `If-Match` on the ETag it last wrote; a change it did not make means the run was taken.
//!
//! - **Expiry without trusting clocks.** A standby (`agent`) watches the lease's ETag in a
//!   listing and takes the run once it has seen the same ETag for a whole TTL on its own
//!   monotonic clock. Only a lease silent for longer than TTL + `SKEW` by the owner's own
//!   `renewed_ms` is judged from the clocks (a run abandoned before anyone watched).
//! - **Taking is one conditional write**: `If-Match` the ETag judged expired, generation + 1.
//!   Of any number of takers, exactly one write succeeds.
//! - **Fencing.** The owner stops acting once it has not renewed for TTL − TTL/3 (its own
//!   monotonic clock), before anyone can have taken the run; the TTL/3 margin absorbs clock
//!   rate differences and a request in flight. Every effect first checks the lease (locally,
//!   then its generation in S3), and flag writes carry the generation where the store can
//!   check it (`FlagStore::set_fenced`): a zombie's late write is refused.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::journal::now_ms;
use crate::owner::{Owner, OwnerError};
use launch_targets::flags::Fence;
use launch_targets::s3::S3Location;

/// A lease's time to live when the runbook does not say.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// How far apart two machines' clocks may be: a lease is judged from the owner's own
/// `renewed_ms` only once it is older than TTL + this.
pub const SKEW: Duration = Duration::from_secs(30);

/// Where the leases of the runs under a state location are.
pub fn prefix(loc: &S3Location) -> String {
    loc.key("launch/leases/")
}

pub fn key(loc: &S3Location, run_id: &str) -> String {
    format!("{}{run_id}.json", prefix(loc))
}

/// What a run's lease says besides its holder: how long it holds unrenewed, and whether
/// another machine can continue the run at all.
#[derive(Debug, Clone)]
pub struct Terms {
    pub ttl: Duration,
    /// Why the run can only go on where it started (an environment on the runner's machine);
    /// agents leave such a run alone.
    pub stays: Option<String>,
}

/// A lease object as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    #[serde(flatten)]
    pub owner: Owner,
    pub generation: u64,
    pub ttl_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stays: Option<String>,
}

impl Record {
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }

    /// Silent for longer than its TTL plus the clock-skew margin, by the clocks.
    pub fn stale_by_clock(&self) -> bool {
        now_ms().saturating_sub(self.owner.renewed_ms) > self.ttl_ms + SKEW.as_millis() as u64
    }
}

/// The run's lease, as this process holds it. Cheap to clone.
#[derive(Clone)]
pub struct Lease {
    inner: Arc<Inner>,
}

struct Inner {
    loc: S3Location,
    key: String,
    run_id: String,
    ttl: Duration,
    state: Mutex<State>,
    renewer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

struct State {
    etag: String,
    record: Record,
    /// When the last renewal that succeeded was sent.
    renewed: Instant,
    /// Why this process no longer holds the lease.
    lost: Option<String>,
}

/// This process no longer holds the run's lease: it acts no more.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "run {run_id}: this runner no longer holds the run's lease ({why}); it does nothing more — whoever took the run acts for it"
)]
pub struct LeaseLost {
    pub run_id: String,
    pub why: String,
}

impl Lease {
    /// Takes the lease of `me.run_id` at `url` for a run starting or resuming: created, or
    /// taken over when its holder is gone (this machine's boot, a process that ended) or
    /// silent past TTL + `SKEW` by the clocks. Refused while its holder may live.
    pub async fn acquire(url: &str, me: &Owner, terms: &Terms) -> Result<Lease, OwnerError> {
        let unavailable = |place: &str, e: anyhow::Error| OwnerError::Unavailable {
            run_id: me.run_id.clone(),
            place: place.to_string(),
            reason: format!("{e:#}"),
        };
        let loc = S3Location::connect(url)
            .await
            .map_err(|e| unavailable(url, e))?;
        let key = key(&loc, &me.run_id);
        let place = loc.url(&key);
        // A few rounds at most: each conflict means another claimant moved first.
        for _ in 0..3 {
            let first = Record {
                owner: me.clone(),
                generation: 1,
                ttl_ms: terms.ttl.as_millis() as u64,
                stays: terms.stays.clone(),
            };
            let put = write(&loc, &key, &first, Some(None)).await;
            if let Some(etag) = put.map_err(|e| unavailable(&place, e))? {
                return Ok(Lease::hold(loc, key, etag, first));
            }
            let Some((held, etag)) = read(&loc, &key).await.map_err(|e| unavailable(&place, e))?
            else {
                continue; // released between our write and our read
            };
            match held.owner.process.alive() {
                Some(true) => {
                    return Err(OwnerError::Alive {
                        run_id: me.run_id.clone(),
                        owner: Box::new(held.owner),
                        place,
                    });
                }
                None if !held.stale_by_clock() => {
                    return Err(OwnerError::Remote {
                        run_id: me.run_id.clone(),
                        owner: Box::new(held.owner),
                        place,
                    });
                }
                // Gone (this machine's boot), or silent past TTL + skew.
                _ => {}
            }
            if let Some(lease) = Lease::take(&loc, &me.run_id, me, &etag, terms)
                .await
                .map_err(|e| unavailable(&place, e))?
            {
                return Ok(lease.0);
            }
        }
        Err(unavailable(
            &place,
            anyhow::anyhow!("other processes keep taking it; try again"),
        ))
    }

    /// Takes the lease whose ETag `expired` the taker judged expired: one conditional write,
    /// the next generation. The lease and the record it replaced, or `None` when another
    /// taker (or a renewal) came first.
    pub async fn take(
        loc: &S3Location,
        run_id: &str,
        me: &Owner,
        expired: &str,
        terms: &Terms,
    ) -> anyhow::Result<Option<(Lease, Option<Record>)>> {
        let key = key(loc, run_id);
        let before = read(loc, &key).await?;
        let generation = before.as_ref().map_or(0, |(r, _)| r.generation) + 1;
        if before.as_ref().is_some_and(|(_, etag)| etag != expired) {
            return Ok(None);
        }
        let record = Record {
            owner: Owner {
                run_id: run_id.to_string(),
                ..me.clone()
            },
            generation,
            ttl_ms: terms.ttl.as_millis() as u64,
            stays: terms.stays.clone(),
        };
        Ok(write(loc, &key, &record, Some(Some(expired)))
            .await?
            .map(|etag| {
                (
                    Lease::hold(loc.clone(), key, etag, record),
                    before.map(|(r, _)| r),
                )
            }))
    }

    fn hold(loc: S3Location, key: String, etag: String, record: Record) -> Lease {
        let lease = Lease {
            inner: Arc::new(Inner {
                loc,
                key,
                run_id: record.owner.run_id.clone(),
                ttl: record.ttl(),
                state: Mutex::new(State {
                    etag,
                    record,
                    renewed: Instant::now(),
                    lost: None,
                }),
                renewer: Mutex::new(None),
            }),
        };
        // The renewer holds the lease weakly: once every handle is gone, it stops.
        let task = tokio::spawn(renew(Arc::downgrade(&lease.inner)));
        *lock(&lease.inner.renewer) = Some(task);
        lease
    }

    /// Whether this process may still act: not lost, and renewed within TTL − TTL/3 on its
    /// own clock (before anyone can have judged the lease expired).
    pub fn check(&self) -> Result<(), LeaseLost> {
        let s = lock(&self.inner.state);
        let ttl = self.inner.ttl;
        let why = match &s.lost {
            Some(why) => why.clone(),
            None if s.renewed.elapsed() >= ttl - ttl / 3 => format!(
                "not renewed for {} (TTL {}): it may be taken at any moment",
                humantime::format_duration(Duration::from_millis(
                    s.renewed.elapsed().as_millis() as u64
                )),
                humantime::format_duration(ttl)
            ),
            None => return Ok(()),
        };
        Err(LeaseLost {
            run_id: self.inner.run_id.clone(),
            why,
        })
    }

    /// `check`, then the generation in S3: what every effect asks first.
    pub async fn confirm(&self) -> Result<(), LeaseLost> {
        self.check()?;
        let ours = lock(&self.inner.state).record.generation;
        match read(&self.inner.loc, &self.inner.key).await {
            Ok(Some((r, _))) if r.generation == ours => self.check(),
            Ok(Some((r, _))) => Err(self.lose(format!(
                "taken over by {} (generation {})",
                r.owner.who(),
                r.generation
            ))),
            Ok(None) => Err(self.lose("its lease object was removed".into())),
            // Unreadable now: the local deadline still holds it to account.
            Err(_) => self.check(),
        }
    }

    /// Marks the lease lost (also when the run's shared journal was written by another
    /// process): this process does nothing more for the run.
    pub fn lose(&self, why: String) -> LeaseLost {
        lock(&self.inner.state).lost = Some(why.clone());
        LeaseLost {
            run_id: self.inner.run_id.clone(),
            why,
        }
    }

    /// The fencing token flag writes carry.
    pub fn fence(&self) -> Fence {
        Fence {
            run_id: self.inner.run_id.clone(),
            generation: lock(&self.inner.state).record.generation,
        }
    }

    pub fn generation(&self) -> u64 {
        lock(&self.inner.state).record.generation
    }

    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// Stops renewing: the lease goes silent, as a frozen process's does.
    pub fn stop_renewing(&self) {
        if let Some(task) = lock(&self.inner.renewer).take() {
            task.abort();
        }
    }

    /// Gives the lease up: renewals stop, and the object is deleted while it is still ours.
    pub async fn release(&self) {
        self.stop_renewing();
        let (etag, ours) = {
            let s = lock(&self.inner.state);
            (s.etag.clone(), s.record.clone())
        };
        let (loc, key) = (&self.inner.loc, &self.inner.key);
        if let Ok(launch_targets::s3::Written::Conflict) = loc.delete(key, Some(&etag)).await
            // A renewal cut off by `stop_renewing` may have reached S3 all the same, its new
            // ETag never heard: that version is still ours when it names our generation and
            // owner (a taker's names a higher generation). Left, it would be taken later.
            && let Ok(Some((now, etag))) = read(loc, key).await
            && now.generation == ours.generation
            && now.owner.who() == ours.owner.who()
        {
            let _ = loc.delete(key, Some(&etag)).await;
        }
    }
}

impl Drop for Inner {
    /// A lease dropped without `release` (an error before the run started): its renewals
    /// stop, so it goes stale and the run can be taken.
    fn drop(&mut self) {
        if let Some(task) = lock(&self.renewer).take() {
            task.abort();
        }
    }
}

/// Renews every TTL/3 (every TTL/10 after a failure) until the lease is lost, released or
/// dropped.
async fn renew(lease: std::sync::Weak<Inner>) {
    let mut wait = match lease.upgrade() {
        Some(l) => l.ttl / 3,
        None => return,
    };
    loop {
        tokio::time::sleep(wait).await;
        let Some(inner) = lease.upgrade() else { return };
        let ttl = inner.ttl;
        let sent = Instant::now();
        let (mut record, etag) = {
            let s = lock(&inner.state);
            (s.record.clone(), s.etag.clone())
        };
        record.owner.renewed_ms = now_ms();
        match write(&inner.loc, &inner.key, &record, Some(Some(&etag))).await {
            Ok(Some(next)) => {
                let mut s = lock(&inner.state);
                s.etag = next;
                s.record = record;
                s.renewed = sent;
                wait = ttl / 3;
            }
            Ok(None) => {
                let why = match read(&inner.loc, &inner.key).await {
                    Ok(Some((r, _))) => format!(
                        "taken over by {} (generation {})",
                        r.owner.who(),
                        r.generation
                    ),
                    _ => "its lease object was removed".to_string(),
                };
                lock(&inner.state).lost = Some(why);
                return;
            }
            // A network hiccup: tried again soon; the deadline decides meanwhile.
            Err(_) => wait = ttl / 10,
        }
    }
}

/// The lease object and its ETag, if there is one (an unreadable record is no lease).
pub async fn read(loc: &S3Location, key: &str) -> anyhow::Result<Option<(Record, String)>> {
    Ok(match loc.get(key).await? {
        Some((bytes, Some(etag))) => serde_json::from_slice(&bytes).ok().map(|r| (r, etag)),
        _ => None,
    })
}

async fn write(
    loc: &S3Location,
    key: &str,
    record: &Record,
    only_if: Option<Option<&str>>,
) -> anyhow::Result<Option<String>> {
    let body = serde_json::to_vec(record)?;
    loc.put_tagged(key, body, "application/json", only_if).await
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
