//! `launch-host agent`: a standby that takes a launch over when its runner dies. It watches the
//! leases of the runs mirrored under a state location (one listing per poll: a listing carries
//! each lease's ETag, so watching costs no read), and takes a run whose lease has not changed
//! for a whole TTL on the agent's own clock — or at once when the lease names a process of this
//! machine's boot that is gone. Taking is one conditional write (`lease::Lease::take`): of any
//! number of agents on any machines, exactly one wins. The winner fetches the run's journal and
//! continues it (`run::take_over`): journaled `taken-over`, notified at level 2, the stage in
//! progress resumed or rolled back as its `takeover` says.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::lease::{self, Lease, Record};
use crate::operator::Operator;
use crate::owner::Owner;
use crate::run::{How, RunSummary, Taken};
use launch_runtime::Runtime;
use launch_targets::rooted::Rooted;
use launch_targets::s3::S3Location;

/// What an agent watches and where it works.
#[derive(Debug, Clone)]
pub struct Config {
    /// The state location (`s3://bucket/prefix`) whose runs it watches.
    pub state: String,
    /// The plugins the runs it takes over run with.
    pub plugins: PathBuf,
    /// Where it keeps the runs it takes over (`runs/<id>/`) and their environments' state.
    pub workspace: PathBuf,
    /// How often it lists the leases.
    pub poll: Duration,
}

/// What an agent did, for its log.
pub enum Happened {
    /// It took a run over: from whom, after how long a silence.
    Took {
        run_id: String,
        from: String,
        silent: Duration,
    },
    /// A run it took over ended.
    Ended {
        run_id: String,
        outcome: anyhow::Result<RunSummary>,
    },
    /// A listing or a takeover failed; it goes on.
    Trouble(String),
}

/// A lease as last seen: its ETag, since when (on this clock), and its record.
struct Seen {
    etag: String,
    since: Instant,
    /// The last version read (of this ETag when `current`).
    record: Option<Record>,
    current: bool,
    /// Whether why it cannot be taken was said.
    said: bool,
}

/// Whether a lease unchanged for `silent` (on this clock) is expired: a whole TTL, or its
/// last renewal older than TTL + skew by the clocks, or its process gone from this machine.
fn expired(record: &Record, silent: Duration) -> bool {
    silent >= record.ttl() || record.stale_by_clock() || record.owner.process.alive() == Some(false)
}

/// Watches until `stop` resolves; each run it takes over runs on a task of its own.
pub async fn watch(
    runtime: Runtime,
    config: Config,
    operator: impl Fn(&str) -> Arc<dyn Operator> + Send + Sync + 'static,
    log: impl Fn(Happened) + Send + Sync + 'static,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let loc = S3Location::connect(&config.state).await?;
    let (log, operator) = (Arc::new(log), Arc::new(operator));
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut ours: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    let taking: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
    // Agents keep the fleet's shared snapshot fresh, so no operator opening the fleet page is
    // the first reader of a thousand summaries. On a task of its own: a slow listing never
    // delays a takeover.
    let snapshot = tokio::spawn(refresh_fleet_snapshot(
        config.state.clone(),
        config.workspace.join("cache/fleet"),
    ));
    tokio::pin!(stop);
    loop {
        if let Err(e) = poll(
            &loc, &config, &mut seen, &taking, &runtime, &operator, &log, &mut ours,
        )
        .await
        {
            log(Happened::Trouble(format!("{e:#}")));
        }
        // Runs that ended leave the set; it never grows past what is being worked on.
        while ours.try_join_next().is_some() {}
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(config.poll) => {}
        }
    }
    // Stopping an agent stops its runs where they are: their leases go silent, another agent
    // takes them over.
    snapshot.abort();
    ours.shutdown().await;
    Ok(())
}

/// How often an agent reads the fleet (from its own cache: a listing, and the summaries that
/// changed), rewriting the shared snapshot when many did.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(300);

async fn refresh_fleet_snapshot(state: String, cache: PathBuf) {
    loop {
        let _ = crate::fleet::list(&state, Some(&cache)).await;
        tokio::time::sleep(SNAPSHOT_EVERY).await;
    }
}

#[allow(clippy::too_many_arguments)] // the loop's state, in one place
async fn poll<O, L>(
    loc: &S3Location,
    config: &Config,
    seen: &mut HashMap<String, Seen>,
    taking: &Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    runtime: &Runtime,
    operator: &Arc<O>,
    log: &Arc<L>,
    ours: &mut tokio::task::JoinSet<()>,
) -> anyhow::Result<()>
where
    O: Fn(&str) -> Arc<dyn Operator> + Send + Sync + 'static,
    L: Fn(Happened) + Send + Sync + 'static,
{
    let prefix = lease::prefix(loc);
    let listed = loc.list_tagged(&prefix).await?;
    let now = Instant::now();
    seen.retain(|key, _| listed.iter().any(|(k, _)| k == key));
    for (key, etag) in listed {
        let Some(run_id) = key
            .strip_prefix(&prefix)
            .and_then(|k| k.strip_suffix(".json"))
            .and_then(launch_targets::rooted::single_component)
            .map(String::from)
        else {
            continue;
        };
        if lock(taking).contains(&run_id) {
            continue;
        }
        let entry = seen.entry(key.clone()).or_insert_with(|| Seen {
            etag: etag.clone(),
            since: now,
            record: None,
            current: false,
            said: false,
        });
        if entry.etag != etag {
            // A renewal: the version seen before still says the TTL and the owner.
            entry.etag = etag.clone();
            entry.since = now;
            entry.current = false;
        }
        // Read on first sight, and again only when the version seen looks expired: a
        // listing carries every lease's ETag, so standing by costs one request per poll.
        let suspect = entry
            .record
            .as_ref()
            .is_none_or(|r| expired(r, entry.since.elapsed()));
        if suspect
            && !entry.current
            && let Some((r, e)) = lease::read(loc, &key).await?
            && e == etag
        {
            entry.record = Some(r);
            entry.current = true;
        }
        let (Some(record), true) = (&entry.record, entry.current) else {
            continue;
        };
        // A run whose environments live on its runner's machine cannot go on elsewhere: said
        // once, left alone (it is resumed where it started).
        if let Some(why) = &record.stays {
            if !entry.said {
                entry.said = true;
                log(Happened::Trouble(format!(
                    "run {run_id} cannot be taken over from another machine ({why}); resume it where it started"
                )));
            }
            continue;
        }
        let silent = entry.since.elapsed();
        if !expired(record, silent) {
            continue;
        }
        let me = Owner::me(&run_id, "agent");
        let terms = crate::lease::Terms {
            ttl: record.ttl(),
            stays: None,
        };
        let Some((taken, before)) = Lease::take(loc, &run_id, &me, &etag, &terms).await? else {
            continue; // another agent, or a renewal, came first
        };
        let from = before.map_or_else(|| "(nobody)".to_string(), |r| r.owner.who());
        // Silent for as long as this agent watched it, or since its last renewal by the
        // clocks when that says more.
        let silent = silent.max(Duration::from_millis(
            crate::journal::now_ms().saturating_sub(record.owner.renewed_ms),
        ));
        log(Happened::Took {
            run_id: run_id.clone(),
            from: from.clone(),
            silent,
        });
        lock(taking).insert(run_id.clone());
        let (runtime, config, operator, log, taking) = (
            runtime.clone(),
            config.clone(),
            operator.clone(),
            log.clone(),
            taking.clone(),
        );
        ours.spawn(async move {
            let taken = Taken {
                lease: taken,
                from,
                silent,
            };
            let outcome = adopt(&runtime, &config, &run_id, taken, operator(&run_id)).await;
            lock(&taking).remove(&run_id);
            log(Happened::Ended { run_id, outcome });
        });
    }
    Ok(())
}

/// Fetches a taken run into the agent's workspace and continues it.
async fn adopt(
    runtime: &Runtime,
    config: &Config,
    run_id: &str,
    taken: Taken,
    operator: Arc<dyn Operator>,
) -> anyhow::Result<RunSummary> {
    let runs = config.workspace.join("runs");
    let dir = runs.join(run_id);
    let folder = Rooted::open(&runs, true).and_then(|r| r.sub(run_id, true))?;
    // A dead runner's last upload can land after the fetch (it was on the wire when the
    // runner died): the run is fetched again, a bounded number of times.
    let mut attempts = 0;
    loop {
        attempts += 1;
        crate::mirror::fetch(&config.state, run_id, &folder).await?;
        // A run that ended but never gave its lease up (its runner died right after): the
        // lease goes, nothing is continued.
        let records = crate::journal::Journal::read(&dir.join("journal.jsonl"))?;
        if let Some(outcome) = crate::run::finished_outcome(&records) {
            taken.lease.release().await;
            anyhow::bail!(
                "run {run_id} had already finished ({}); its leftover lease was released",
                outcome.word()
            );
        }
        let how = How {
            plugins_dir: Some(config.plugins.clone()),
            auto: true,
            workspace: Some(config.workspace.clone()),
            taken: Some(taken.clone()),
        };
        match crate::run::take_over(runtime, &dir, how, operator.clone()).await {
            Err(e) if attempts < 3 && e.downcast_ref::<crate::mirror::Diverged>().is_some() => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            ended => return ended,
        }
    }
}

/// The S3 requests this process made so far (listings, reads, writes), for its log.
pub fn s3_requests() -> u64 {
    launch_targets::s3::requests()
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
