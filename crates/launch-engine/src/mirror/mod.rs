//! Shared state: a run folder mirrored to S3 (`launch/runs/<id>/` under the runbook's `state`
//! location), so `status`, `report` and `resume` work from another machine. The journal is
//! uploaded in the background each time it grows (coalesced: at most one upload in flight,
//! always of the latest bytes); at the end of the run every file of the folder is uploaded and
//! awaited.
//!
//! Each upload sends only what the journal gained, as a segment (`segments`). Each is created
//! only if nobody created it yet, and two runners continuing one journal race for the same
//! key, so a runner that lost its run to another (a takeover) can never write over the journal
//! its successor continues: its first upload after is refused, and it uploads nothing more.
//! After each upload that succeeded, the run's summary
//! (`fleet::Summary`, `launch/index/<id>.json`) is written from the records it holds — also
//! conditionally, so a runner that woke up mid-upload cannot leave its stale summary last.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::sync::watch;

use crate::fleet::Summary;
use launch_targets::rooted::Rooted;
use launch_targets::s3::S3Location;

pub mod segments;
use segments::{Refused, Writer};

/// Folders of a run that are not state: the embedded targets and build outputs.
const NOT_STATE: [&str; 2] = ["env", "build"];

pub struct Mirror {
    copy: Arc<Copy>,
    run_dir: PathBuf,
    changed: watch::Sender<u64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// The shared journal holds records the local copy lacks: continuing would drop them.
#[derive(Debug, thiserror::Error)]
#[error(
    "{url} holds records this copy of the journal lacks (written after it was fetched): fetch the run again and continue from those"
)]
pub struct Diverged {
    pub url: String,
}

/// The run's copy in S3: where, what this process has written of the journal, and the
/// summary of what it holds.
struct Copy {
    loc: S3Location,
    prefix: String,
    journal: PathBuf,
    /// One upload at a time: the background task and a stage's flush would otherwise both
    /// create the same segment, and the loser would take itself for a runner taken over.
    turn: tokio::sync::Mutex<Writer>,
    state: Mutex<CopyState>,
}

struct CopyState {
    /// Set once an upload was refused: another process writes the run's copy now.
    lost: Option<String>,
    /// The summary object's ETag as this process last wrote it (`None`: not known yet —
    /// read before the first write; `Some(None)`: there is none).
    summary_etag: Option<Option<String>>,
    /// Bytes of the journal the summary has read.
    offset: usize,
    summary: Summary,
}

/// Where run `run_id`'s files are under the state location.
pub fn run_prefix(loc: &S3Location, run_id: &str) -> String {
    loc.key(&format!("launch/runs/{run_id}/"))
}

impl Mirror {
    /// Starts mirroring run `run_id` of launch `launch` (on `environments`) to `url`.
    pub async fn start(
        url: &str,
        run_id: &str,
        run_dir: &Path,
        launch: &str,
        environments: Vec<String>,
    ) -> anyhow::Result<Mirror> {
        let loc = S3Location::connect(url).await?;
        let prefix = run_prefix(&loc, run_id);
        // The copy this run continues (a resume, a takeover), or none yet. It is written over
        // only by a journal that continues it: records it holds that this copy lacks (a late
        // write of the runner this one took over from) are never dropped.
        let journal = run_dir.join("journal.jsonl");
        let shared = segments::read(&loc, run_id).await?;
        if let Some(shared) = &shared {
            let local = crate::files::read(&journal, crate::journal::MAX_BYTES, "the journal")?;
            if !local.starts_with(&shared.bytes) {
                return Err(Diverged {
                    url: loc.url(&format!("{prefix}journal.jsonl")),
                }
                .into());
            }
        }
        let copy = Arc::new(Copy {
            loc,
            prefix,
            journal,
            turn: tokio::sync::Mutex::new(Writer::new(run_id, shared.as_ref())),
            state: Mutex::new(CopyState {
                lost: None,
                summary_etag: None,
                offset: 0,
                summary: Summary::new(run_id, launch, environments),
            }),
        });
        let (changed, mut rx) = watch::channel(0u64);
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let background = copy.clone();
        // Failures here are not fatal: the next change, and `finish`, upload again. It stops
        // between uploads, never in one: an upload cut off after S3 took it would leave this
        // process with an ETag that is no longer the object's.
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    _ = &mut stopped => break,
                    changed = rx.changed() => match changed {
                        Ok(()) => { let _ = background.upload_journal(false).await; }
                        Err(_) => break,
                    },
                }
            }
        });
        let mirror = Mirror {
            copy,
            run_dir: run_dir.to_path_buf(),
            changed,
            stop: Some(stop),
            task,
        };
        mirror.upload_all(false).await?;
        Ok(mirror)
    }

    /// What the run's stages flush the copy through before an effect.
    pub fn shared(&self) -> Shared {
        Shared(self.copy.clone())
    }

    /// Where the run is mirrored, for messages.
    pub fn url(&self) -> String {
        self.copy.loc.url(&self.copy.prefix)
    }

    /// A callback for the journal: it grew.
    pub fn notifier(&self) -> impl Fn() + Send + Sync + 'static {
        let tx = self.changed.clone();
        move || {
            tx.send_modify(|n| *n += 1);
        }
    }

    /// Uploads the journal (`seal`: as the whole base, at the end) and every other file.
    async fn upload_all(&self, seal: bool) -> anyhow::Result<()> {
        self.copy.upload_journal(seal).await?;
        for file in state_files(&self.run_dir)? {
            let rel = file
                .strip_prefix(&self.run_dir)
                .expect("under the run folder")
                .to_string_lossy()
                .replace('\\', "/");
            if rel == "journal.jsonl" {
                continue;
            }
            let bytes = tokio::fs::read(&file)
                .await
                .with_context(|| format!("reading {}", file.display()))?;
            let key = format!("{}{rel}", self.copy.prefix);
            self.copy
                .loc
                .put(&key, bytes, launch_targets::store::content_type(&rel), None)
                .await?;
        }
        Ok(())
    }

    /// Stops the background uploads, then uploads the whole run folder: the final copy is
    /// complete even if an upload failed mid-run.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        self.upload_all(true).await
    }
}

/// The run's copy in S3, as its stages see it.
#[derive(Clone)]
pub struct Shared(Arc<Copy>);

impl Shared {
    /// Uploads the journal now and waits: an effect is announced in the shared copy before it
    /// happens, so whoever takes the run over knows it may have. Fails once another process
    /// writes the copy (this runner lost the run).
    pub async fn flush(&self) -> anyhow::Result<()> {
        self.0.upload_journal(false).await
    }
}

impl Copy {
    /// Uploads what the journal gained since this process last did (`seal`: the whole journal
    /// as the base, at the end), then the summary.
    async fn upload_journal(&self, seal: bool) -> anyhow::Result<()> {
        let mut writer = self.turn.lock().await;
        let (lost, run_id) = {
            let s = lock(&self.state);
            (s.lost.clone(), s.summary.run_id.clone())
        };
        if let Some(why) = lost {
            return Err(crate::lease::LeaseLost { run_id, why }.into());
        }
        let bytes = tokio::fs::read(&self.journal)
            .await
            .with_context(|| format!("reading {}", self.journal.display()))?;
        let written = match seal {
            true => writer.seal(&self.loc, &bytes).await?,
            false => writer.append(&self.loc, &bytes).await?,
        };
        if let Err(Refused(url)) = written {
            return Err(self.lost(run_id, &url, "uploads"));
        }
        let summary = {
            let mut s = lock(&self.state);
            let start = s.offset.min(bytes.len());
            let lines = crate::journal::lines(&bytes[start..]);
            for line in &lines {
                s.offset += line.len() + 1;
                if let Ok(r) = serde_json::from_slice(line) {
                    s.summary.absorb(&r);
                }
            }
            serde_json::to_vec(&s.summary)?
        };
        self.write_summary(&writer, summary).await
    }

    /// This runner lost the run: it writes nothing more.
    fn lost(&self, run_id: String, url: &str, what: &str) -> anyhow::Error {
        let why = format!(
            "{url} was written by another process (the run was taken over?): this runner {what} nothing more"
        );
        lock(&self.state).lost = Some(why.clone());
        crate::lease::LeaseLost { run_id, why }.into()
    }

    /// Writes the run's summary over the version this process last wrote. A conflict means
    /// another process wrote it: a runner taken over that woke mid-upload, or the one that
    /// took it. Whoever still continues the journal writes again; the other stops. So the
    /// holder's summary is always the last written.
    async fn write_summary(&self, writer: &Writer, summary: Vec<u8>) -> anyhow::Result<()> {
        let (run_id, mut known) = {
            let s = lock(&self.state);
            (s.summary.run_id.clone(), s.summary_etag.clone())
        };
        let key = crate::fleet::key(&self.loc, &run_id);
        for _ in 0..4 {
            if known.is_none() {
                known = Some(self.loc.head(&key).await?);
            }
            let only_if = known.as_ref().map(|e| e.as_deref());
            if let Some(etag) = self
                .loc
                .put_tagged(&key, summary.clone(), "application/json", only_if)
                .await?
            {
                lock(&self.state).summary_etag = Some(Some(etag));
                return Ok(());
            }
            if let Err(Refused(url)) = writer.still_ours(&self.loc).await? {
                return Err(self.lost(run_id, &url, "writes"));
            }
            known = None;
        }
        anyhow::bail!(
            "{}: other processes kept writing the run's summary",
            self.loc.url(&key)
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn state_files(run_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let name = |p: &Path| {
        p.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    };
    let state =
        |dir: &Path| !(dir.parent() == Some(run_dir) && NOT_STATE.contains(&name(dir).as_str()));
    let files = launch_targets::store::files_under(run_dir, state)
        .with_context(|| format!("reading {}", run_dir.display()))?;
    // Dot files are temporaries of an atomic write in progress.
    Ok(files
        .into_iter()
        .filter(|f| !name(f).starts_with('.'))
        .collect())
}

/// Copies run `run_id` from `url` into `dest` (a run folder), for `resume`, `status` and
/// `report` on a machine that did not start the run. Keys are written through the folder's
/// capability: one that would name a path outside it (`../`, an absolute path) is skipped.
///
/// A local copy is evidence too: it is replaced only by a copy that continues it (the same
/// lines and later ones); one that continues the S3 copy is kept as it is; copies that differ
/// are both left alone and the difference is an error (`verify --state` compares them).
pub async fn fetch(url: &str, run_id: &str, dest: &Rooted) -> anyhow::Result<()> {
    let loc = S3Location::connect(url).await?;
    let prefix = run_prefix(&loc, run_id);
    let keys = loc.list(&prefix).await?;
    let journal_key = segments::base_key(&loc, run_id);
    let remote = match keys.contains(&journal_key) {
        true => segments::read(&loc, run_id).await?.map(|s| s.bytes),
        false => None,
    };
    let Some(remote) = remote else {
        anyhow::bail!(
            "no run {run_id} in {} (no journal.jsonl there)",
            loc.url(&prefix)
        );
    };
    if dest.exists("journal.jsonl") {
        let local = crate::files::read_rooted(
            dest,
            "journal.jsonl",
            crate::journal::MAX_BYTES,
            "the journal",
        )?;
        use crate::verify::copies::{Agreement, agreement};
        match agreement(&local, &remote) {
            Agreement::Same => {}
            Agreement::Continues { longer, .. }
                if longer == crate::journal::lines(&remote).len() => {}
            // This machine's copy is ahead of the one in S3: it stays.
            Agreement::Continues { .. } => return Ok(()),
            Agreement::Differ(line) => anyhow::bail!(
                "the local copy of run {run_id} ({}) and the one in {} differ from line {line}; neither is overwritten: `launch-host verify {run_id} --state {url}` compares them",
                dest.display("journal.jsonl").display(),
                loc.url(&journal_key)
            ),
        }
    }
    for key in keys {
        let Some(rel) = key.get(prefix.len()..) else {
            continue;
        };
        if rel
            .split('/')
            .any(|s| s == ".." || s == "." || s.is_empty())
            // Who owns the run is not its state.
            || rel == crate::owner::OBJECT
        {
            continue;
        }
        let bytes = if key == journal_key {
            remote.clone()
        } else {
            match loc.get(&key).await? {
                Some((bytes, _)) => bytes,
                None => continue,
            }
        };
        dest.write_atomically(rel, &bytes)
            .with_context(|| format!("writing {}", dest.display(rel).display()))?;
    }
    Ok(())
}

/// Fetches run `run_id` from `url` into the folder `dir` (created): a scratch folder that
/// `verify --state` checks beside the local copy.
pub async fn fetch_to(url: &str, run_id: &str, dir: &Path) -> anyhow::Result<()> {
    let Some(id) = launch_targets::rooted::single_component(run_id) else {
        anyhow::bail!("`{run_id}` is not a run id");
    };
    let dest = Rooted::open(dir, true).with_context(|| format!("creating {}", dir.display()))?;
    fetch(url, id, &dest).await
}

/// The runs stored at `url`, oldest first (run ids start with a UTC timestamp).
pub async fn list(url: &str) -> anyhow::Result<Vec<String>> {
    let loc = S3Location::connect(url).await?;
    let prefix = loc.key("launch/runs/");
    let mut ids: Vec<String> = loc
        .list(&prefix)
        .await?
        .iter()
        .filter_map(|k| k.get(prefix.len()..)?.split('/').next())
        // A key that is not under a plain run id names no run.
        .filter_map(|id| launch_targets::rooted::single_component(id).map(String::from))
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}
