//! Recording what every plugin call saw, so a run can be replayed against the same or another
//! policy: the inputs as a fixture in the run folder (`calls/<sha256>.json`, content-addressed,
//! secrets masked), and a `call` journal record with the answer. A canary's windows are not
//! copied: the call names the run's `window` records that made up its history.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use super::fixture::Fixture;
use crate::record::{CheckRecord, VerdictRecord};
use launch_runtime::types::Action;
use launch_targets::rooted::Rooted;

/// The folder of a run that holds recorded inputs.
pub const CALLS: &str = "calls";

/// An action in the fixtures' words, with its reason: (`promote 30`, ""), (`hold`, why)...
pub fn action_answer(action: &Action) -> (String, String) {
    match action {
        Action::Promote(p) => (format!("promote {p}"), String::new()),
        Action::Hold(r) => ("hold".into(), r.clone()),
        Action::Rollback(r) => ("rollback".into(), r.clone()),
        Action::Complete => ("complete".into(), String::new()),
    }
}

/// An action in the journal's words (`promote 30%`, `hold`...), which decisions are recorded
/// and shadows compared in.
pub fn action_word(action: &Action) -> String {
    match action {
        Action::Promote(p) => format!("promote {p}%"),
        other => action_answer(other).0,
    }
}

/// A verdict in the fixtures' words.
pub fn verdict_answer(v: &VerdictRecord) -> String {
    match v {
        VerdictRecord::Pass => "pass",
        VerdictRecord::Fail(_) => "fail",
        VerdictRecord::Inconclusive(_) => "inconclusive",
        VerdictRecord::NoData(_) => "no-data",
    }
    .into()
}

/// Check name → verdict word, as fixtures expect them.
pub fn check_answers(checks: &[CheckRecord]) -> BTreeMap<String, String> {
    checks
        .iter()
        .map(|c| (c.name.clone(), verdict_answer(&c.verdict)))
        .collect()
}

/// Where a run's recorded inputs go: `calls/<digest>.json` in the run folder, each written
/// once. A thread of its own (started by the first `save`) writes them, picking up what was
/// saved every few milliseconds, so recording a call costs the launch only its serialization —
/// no system call, not even a wake-up. A write that fails is reported by the next `save`, and
/// dropping the store writes what is left and waits (a run's folder is complete when its
/// context is gone).
pub struct CallStore {
    run_dir: PathBuf,
    saved: HashSet<String>,
    queue: Arc<Queue>,
    writer: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Queue {
    files: Mutex<Vec<(String, Vec<u8>)>>,
    closed: std::sync::atomic::AtomicBool,
    failed: Mutex<Option<String>>,
}

/// How often the writer looks for saved inputs.
const PICK_UP: std::time::Duration = std::time::Duration::from_millis(20);

impl CallStore {
    pub fn new(run_dir: &Path) -> CallStore {
        CallStore {
            run_dir: run_dir.to_path_buf(),
            saved: HashSet::new(),
            queue: Arc::default(),
            writer: None,
        }
    }

    fn start(&self) -> anyhow::Result<std::thread::JoinHandle<()>> {
        let folder = Rooted::open(&self.run_dir, false)
            .with_context(|| format!("opening {}", self.run_dir.display()))?;
        let calls = folder
            .sub(CALLS, true)
            .with_context(|| format!("creating {}", folder.display(CALLS).display()))?;
        let queue = self.queue.clone();
        std::thread::Builder::new()
            .name("launch-host-calls".into())
            .spawn(move || {
                loop {
                    // Read before draining: what was saved before closing is still written.
                    let closed = queue.closed.load(std::sync::atomic::Ordering::Acquire);
                    let files = std::mem::take(&mut *lock(&queue.files));
                    for (name, bytes) in files {
                        if let Err(e) = calls.write_atomically(&name, &bytes) {
                            lock(&queue.failed).get_or_insert_with(|| {
                                format!("writing {}: {e}", calls.display(&name).display())
                            });
                        }
                    }
                    if closed {
                        break;
                    }
                    std::thread::park_timeout(PICK_UP);
                }
            })
            .context("starting the call recorder")
    }

    /// Saves `fixture` (a call's inputs), secrets masked, named by its content; returns its
    /// path in the run folder.
    pub fn save(&mut self, fixture: &Fixture) -> anyhow::Result<String> {
        if let Some(why) = lock(&self.queue.failed).take() {
            anyhow::bail!("recording a plugin call: {why}");
        }
        let mut value = serde_json::to_value(fixture)?;
        crate::redact::json(&mut value);
        let bytes = serde_json::to_vec(&value)?;
        let digest = hex::encode(Sha256::digest(&bytes));
        let name = format!("{}.json", &digest[..32]);
        if self.saved.insert(name.clone()) {
            if self.writer.is_none() {
                self.writer = Some(self.start()?);
            }
            lock(&self.queue.files).push((name.clone(), bytes));
        }
        Ok(format!("{CALLS}/{name}"))
    }
}

impl Drop for CallStore {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            self.queue
                .closed
                .store(true, std::sync::atomic::Ordering::Release);
            writer.thread().unpark();
            let _ = writer.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
