//! The fleet: every run under a state location — every service's launches — at a glance, from
//! one small summary object per run (`launch/index/<run-id>.json`) and the leases of the runs
//! that are live, never from the runs' own files.
//!
//! A run's summary is written by whoever holds the run, right after each upload of its journal
//! that succeeded — and those uploads are conditional (`If-Match` the ETag of the previous
//! one), so a runner that lost the run can no longer upload, nor summarize. A summary is
//! therefore never ahead of the journal in S3, and at most one upload behind it; it names the
//! number of records it covers, and a run's page reads the journal itself.
//!
//! A reader on a new machine would still read a thousand summaries one by one; a shared
//! snapshot (`launch/fleet.json`: every summary with the ETag it was read at) lets it read one
//! object instead. The snapshot is only ever a cache: each entry is used only when its ETag is
//! the one the listing shows for that summary, so it can be old but never make the view stale.

use std::collections::BTreeMap;
use std::path::Path;

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

use crate::journal::{Event, Record, now_ms};
use launch_targets::s3::S3Location;

/// Where the summaries of the runs under a state location are.
pub fn prefix(loc: &S3Location) -> String {
    loc.key("launch/index/")
}

pub fn key(loc: &S3Location, run_id: &str) -> String {
    format!("{}{run_id}.json", prefix(loc))
}

/// The shared snapshot of every summary, outside the summaries' prefix.
pub fn snapshot_key(loc: &S3Location) -> String {
    loc.key("launch/fleet.json")
}

/// A snapshot larger than this is neither written nor read: past some 100 000 runs, readers
/// read the summaries themselves.
const MAX_SNAPSHOT_BYTES: usize = 64 << 20;

/// How many summaries a reader may fetch before it rewrites the snapshot: a few changed runs
/// cost a few reads, not a rewrite on every page load.
const SNAPSHOT_SLACK: usize = 8;

/// One run, as the fleet sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub run_id: String,
    /// The runbook's launch name (e.g. `StatusBoardV2`).
    pub launch: String,
    pub environments: Vec<String>,
    /// The runbook and the command: `launch.toml → \`canary start\``.
    pub runbook: String,
    pub started_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// `running`, or how it ended (`passed`, `rolled-back`...).
    pub outcome: String,
    pub summary: String,
    /// The stage in progress, or the last one started (its title).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    pub stages_finished: usize,
    pub stages_planned: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    pub resumes: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub takeovers: Vec<Takeover>,
    /// How many journal records it summarizes.
    pub records: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Takeover {
    pub at_ms: u64,
    pub by: String,
    pub from: String,
}

impl Summary {
    pub fn new(run_id: &str, launch: &str, environments: Vec<String>) -> Summary {
        Summary {
            run_id: run_id.into(),
            launch: launch.into(),
            environments,
            outcome: "running".into(),
            ..Summary::default()
        }
    }

    /// Takes one more journal record into account.
    pub fn absorb(&mut self, r: &Record) {
        self.records += 1;
        match &r.event {
            Event::RunStarted {
                runbook,
                started_by,
                launch,
                environments,
                ..
            } => {
                self.runbook = runbook.clone();
                self.started_ms = r.at;
                self.started_by = started_by.clone();
                if !launch.is_empty() {
                    self.launch = launch.clone();
                }
                if !environments.is_empty() {
                    self.environments = environments.clone();
                }
            }
            Event::Planned { stages } => self.stages_planned = stages.len(),
            Event::StageStarted { title, .. } => self.stage = Some(title.clone()),
            Event::StageFinished { .. } => self.stages_finished += 1,
            Event::Resumed { .. } => self.resumes += 1,
            Event::TakenOver { by, from, .. } => self.takeovers.push(Takeover {
                at_ms: r.at,
                by: by.clone(),
                from: from.clone(),
            }),
            Event::RunFinished { outcome, summary } => {
                self.outcome = outcome.word().into();
                self.summary = summary.clone();
                self.finished_ms = Some(r.at);
            }
            _ => {}
        }
    }
}

impl Summary {
    /// A run folder's summary, from its journal (its launch name and environments are empty
    /// for journals written before the run's first record named them).
    pub fn of_run(run_dir: &Path) -> anyhow::Result<Summary> {
        let id = run_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut summary = Summary::new(&id, "", Vec::new());
        for r in crate::journal::Journal::read(&run_dir.join("journal.jsonl"))? {
            summary.absorb(&r);
        }
        Ok(summary)
    }
}

/// A run in the fleet: its summary, and who holds it now if it is live.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub summary: Summary,
    /// The lease's holder and how long ago it renewed, while the run holds one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_age_ms: Option<u64>,
}

/// Every run under `url`, newest first, from the summaries — each read once per version:
/// `cache` (a folder) keeps them by ETag, so a later listing reads only what changed.
pub async fn list(url: &str, cache: Option<&Path>) -> anyhow::Result<Vec<Row>> {
    let loc = S3Location::connect(url).await?;
    let (summaries_at, leases_at) = (prefix(&loc), crate::lease::prefix(&loc));
    let (summaries, leases) =
        futures::try_join!(loc.list_tagged(&summaries_at), loc.list_tagged(&leases_at))?;
    let cached = Cache::open(cache);
    // What this machine's cache holds at the listed ETag; the rest from the shared snapshot
    // (read only when something is missing here), else from its own object.
    let mut fresh = Snapshot::default();
    let mut missing = Vec::new();
    for (key, etag) in summaries.into_iter().filter(|(k, _)| k.ends_with(".json")) {
        match cached.get(&key, &etag) {
            Some(summary) => {
                fresh.entries.insert(key, Cached { etag, summary });
            }
            None => missing.push((key, etag)),
        }
    }
    if !missing.is_empty() {
        let shared = Snapshot::read(&loc).await;
        let reads = futures::stream::iter(missing.into_iter().map(|(key, etag)| {
            let (loc, cached, shared) = (&loc, &cached, &shared);
            async move {
                if let Some(s) = shared.get(&key, &etag) {
                    cached.put(&key, &etag, &s);
                    return Ok::<_, anyhow::Error>((key, etag, Some(s), false));
                }
                let summary = match loc.get(&key).await? {
                    Some((bytes, _)) => serde_json::from_slice::<Summary>(&bytes).ok(),
                    None => None, // gone since the listing
                };
                if let Some(s) = &summary {
                    cached.put(&key, &etag, s);
                }
                Ok((key, etag, summary, true))
            }
        }));
        let read: Vec<anyhow::Result<_>> = reads.buffer_unordered(32).collect().await;
        let mut fetched = 0;
        for (key, etag, summary, was_fetched) in read.into_iter().flatten() {
            fetched += usize::from(was_fetched);
            if let Some(summary) = summary {
                fresh.entries.insert(key, Cached { etag, summary });
            }
        }
        // Gone runs count as changes too. A reader without write access, or one that lost
        // the race to another reader, leaves the snapshot as it is: it is only a cache.
        let dropped = shared
            .entries
            .keys()
            .filter(|k| !fresh.entries.contains_key(*k))
            .count();
        if shared.etag.is_none() || fetched > SNAPSHOT_SLACK || dropped > SNAPSHOT_SLACK {
            let _ = fresh.write(&loc, shared.etag.as_deref()).await;
        }
    }
    let mut rows = Vec::new();
    let mut by_run: BTreeMap<String, usize> = BTreeMap::new();
    for entry in fresh.entries.into_values() {
        by_run.insert(entry.summary.run_id.clone(), rows.len());
        rows.push(Row {
            summary: entry.summary,
            owner: None,
            lease_age_ms: None,
        });
    }
    // The leases of live runs: few, read each time (they change every few seconds).
    let lease_prefix = crate::lease::prefix(&loc);
    let held = futures::stream::iter(leases.into_iter().filter_map(|(key, _)| {
        let id = key
            .strip_prefix(&lease_prefix)?
            .strip_suffix(".json")?
            .to_string();
        let i = *by_run.get(&id)?;
        let loc = &loc;
        Some(async move { (i, crate::lease::read(loc, &key).await) })
    }));
    let held: Vec<_> = held.buffer_unordered(32).collect().await;
    for (i, read) in held {
        if let Ok(Some((record, _))) = read {
            rows[i].owner = Some(record.owner.who());
            rows[i].lease_age_ms = Some(now_ms().saturating_sub(record.owner.renewed_ms));
        }
    }
    // Newest first: run ids begin with their start time.
    rows.sort_by(|a, b| b.summary.run_id.cmp(&a.summary.run_id));
    Ok(rows)
}

/// The runs of a local runs folder, newest first, summarized from their journals — each read
/// once per version (its size and modification time) when `cache` is given, so a page over
/// many finished runs reads none of them again.
pub fn local(runs_dir: &Path, cache: Option<&Path>) -> Vec<Row> {
    let cached = Cache::open(cache);
    let mut rows: Vec<Row> = crate::workspace::runs(runs_dir)
        .iter()
        .filter_map(|id| {
            let dir = runs_dir.join(id);
            let meta = std::fs::metadata(dir.join("journal.jsonl")).ok()?;
            let modified = meta
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_nanos();
            let (key, version) = (
                dir.display().to_string(),
                format!("{}-{modified}", meta.len()),
            );
            let summary = match cached.get(&key, &version) {
                Some(s) => s,
                None => {
                    let s = Summary::of_run(&dir).ok()?;
                    cached.put(&key, &version, &s);
                    s
                }
            };
            Some(Row {
                summary,
                owner: None,
                lease_age_ms: None,
            })
        })
        .collect();
    rows.sort_by(|a, b| b.summary.run_id.cmp(&a.summary.run_id));
    rows
}

/// The shared snapshot: each summary object's key, with the summary at the ETag it was read.
#[derive(Default, Serialize, Deserialize)]
struct Snapshot {
    entries: BTreeMap<String, Cached>,
    #[serde(skip)]
    etag: Option<String>,
}

impl Snapshot {
    /// The snapshot in S3, or an empty one when there is none or it is unusable (then it is
    /// written anew, over the unusable version).
    async fn read(loc: &S3Location) -> Snapshot {
        let Ok(Some((bytes, etag))) = loc.get(&snapshot_key(loc)).await else {
            return Snapshot::default();
        };
        let mut snapshot: Snapshot = match bytes.len() <= MAX_SNAPSHOT_BYTES {
            true => serde_json::from_slice(&bytes).unwrap_or_default(),
            false => Snapshot::default(),
        };
        snapshot.etag = etag;
        snapshot
    }

    fn get(&self, key: &str, etag: &str) -> Option<Summary> {
        let e = self.entries.get(key)?;
        (e.etag == etag).then(|| e.summary.clone())
    }

    /// Replaces the version read (`If-Match`), or creates it (`If-None-Match: *`).
    async fn write(&self, loc: &S3Location, over: Option<&str>) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(self)?;
        if bytes.len() <= MAX_SNAPSHOT_BYTES {
            loc.put(&snapshot_key(loc), bytes, "application/json", Some(over))
                .await?;
        }
        Ok(())
    }
}

/// Summaries kept on disk, one file per run, with the ETag they were read at: a listing reads
/// again only what changed since.
struct Cache<'a> {
    dir: Option<&'a Path>,
}

#[derive(Serialize, Deserialize)]
struct Cached {
    etag: String,
    summary: Summary,
}

impl<'a> Cache<'a> {
    fn open(dir: Option<&'a Path>) -> Cache<'a> {
        if let Some(d) = dir {
            let _ = std::fs::create_dir_all(d);
        }
        Cache { dir }
    }

    fn file(&self, key: &str) -> Option<std::path::PathBuf> {
        let name = crate::run::digest(key.as_bytes());
        self.dir.map(|d| d.join(format!("{}.json", &name[..32])))
    }

    fn get(&self, key: &str, etag: &str) -> Option<Summary> {
        let bytes = crate::files::read(&self.file(key)?, crate::files::STATE, "a summary").ok()?;
        let cached: Cached = serde_json::from_slice(&bytes).ok()?;
        (cached.etag == etag).then_some(cached.summary)
    }

    fn put(&self, key: &str, etag: &str, s: &Summary) {
        let cached = Cached {
            etag: etag.to_string(),
            summary: s.clone(),
        };
        if let (Some(path), Ok(bytes)) = (self.file(key), serde_json::to_vec(&cached)) {
            let _ = launch_targets::store::write_atomically(&path, &bytes);
        }
    }
}
