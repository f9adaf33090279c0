//! Live run pages: one watcher per run being viewed reads the journal when it grows, renders
//! the page body once, and hands the same update to every viewer (a `watch` channel: a slow
//! viewer skips to the newest body, it never queues). Viewers get it as server-sent events.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::watch;

use crate::runs::Runs;
use launch_engine::report::{RunReport, page};

/// How often a watcher looks at its journal's size.
const POLL: Duration = Duration::from_millis(100);
/// How long a watcher with no viewers lives on.
const IDLE: Duration = Duration::from_secs(30);

/// One rendering of a run's page body.
#[derive(Debug, Default, serde::Serialize)]
pub struct Update {
    /// How many journal records it shows.
    pub seq: usize,
    pub html: String,
    #[serde(skip)]
    pub finished: bool,
}

#[derive(Default, Clone)]
pub struct Hub {
    runs: Arc<Mutex<HashMap<PathBuf, watch::Sender<Arc<Update>>>>>,
}

impl Hub {
    /// The updates of the run in `dir`, starting with its current body. A run mirrored in the
    /// shared state of `runs` is fetched again every second until it finishes.
    pub fn subscribe(&self, dir: PathBuf, source: Runs) -> watch::Receiver<Arc<Update>> {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = runs.get(&dir) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(Arc::new(render(&dir)));
        runs.insert(dir.clone(), tx.clone());
        tokio::spawn(follow(self.clone(), dir, tx, source));
        rx
    }

    fn forget(&self, dir: &PathBuf) {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(dir);
    }
}

/// The run's page body as its journal says now.
pub fn render(dir: &std::path::Path) -> Update {
    let bytes = launch_engine::files::read(
        &dir.join("journal.jsonl"),
        launch_engine::journal::MAX_BYTES,
        "the journal",
    )
    .unwrap_or_default();
    let seq = launch_engine::journal::lines(&bytes).len();
    let (html, finished) = match RunReport::from_bytes(&bytes) {
        Ok(r) => {
            let uat = launch_engine::report::uat_for(&r, dir);
            let html = page::body(&r, uat.as_ref())
                .render()
                .unwrap_or_else(|e| format!("<p>{e}</p>"));
            (html, r.finished_ms.is_some())
        }
        Err(e) => (format!("<p>the journal cannot be read: {e}</p>"), false),
    };
    Update {
        seq,
        html,
        finished,
    }
}

/// Re-renders whenever the journal grows, until nobody has watched for a while.
async fn follow(hub: Hub, dir: PathBuf, tx: watch::Sender<Arc<Update>>, runs: Runs) {
    let journal = dir.join("journal.jsonl");
    let size = || std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0);
    let mut seen = size();
    let mut idle_since: Option<Instant> = None;
    let mut fetched = Instant::now();
    loop {
        tokio::time::sleep(POLL).await;
        if let Some(url) = &runs.state
            && !tx.borrow().finished
            && fetched.elapsed() >= Duration::from_secs(1)
        {
            fetched = Instant::now();
            let id = dir.file_name().map(|n| n.to_string_lossy().into_owned());
            // A fetch that fails is tried again next second; the page keeps what it has.
            let _ = launch_engine::workspace::find_run(&runs.dir, id.as_deref(), Some(url)).await;
        }
        if tx.receiver_count() == 0 {
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() > IDLE {
                hub.forget(&dir);
                return;
            }
        } else {
            idle_since = None;
        }
        let now = size();
        if now == seen {
            continue;
        }
        seen = now;
        let d = dir.clone();
        if let Ok(update) = tokio::task::spawn_blocking(move || render(&d)).await {
            tx.send_replace(Arc::new(update));
        }
    }
}

/// The server-sent events of one viewer: the current body at once, then every new one.
pub fn events(
    mut rx: watch::Receiver<Arc<Update>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    rx.mark_changed();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        let update = rx.borrow_and_update().clone();
        let event = Event::default()
            .id(update.seq.to_string())
            .json_data(&*update)
            .unwrap_or_default();
        Some((Ok(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
