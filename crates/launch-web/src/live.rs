//! Live run pages: one watcher per run being viewed reads the journal when it grows, renders
//! the page body once, and hands the same update to every viewer (a `watch` channel: a slow
//! viewer skips to the newest body, it never queues). Viewers get it as server-sent events:
//! the whole body first, then only the lines that changed since what that viewer has (`Delta`)
//! — a window of a long canary is a few lines (the page's charts keep their points in place
//! while a stage runs, one point a line), so a two-hour canary's page costs a viewer a few
//! hundred kilobytes, not a whole body per journal record.

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

/// The server-sent events of one viewer: the current body at once, then what changed.
pub fn events(
    mut rx: watch::Receiver<Arc<Update>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    rx.mark_changed();
    let shown: Option<Arc<Update>> = None;
    let stream = futures::stream::unfold((rx, shown), |(mut rx, shown)| async move {
        rx.changed().await.ok()?;
        let update = rx.borrow_and_update().clone();
        let event = Event::default().id(update.seq.to_string());
        let event = match shown.as_deref().and_then(|s| delta(&s.html, &update.html)) {
            Some(ops) => event.json_data(Delta {
                seq: update.seq,
                ops,
            }),
            None => event.json_data(&*update),
        }
        .unwrap_or_default();
        Some((Ok(event), (rx, Some(update))))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// An update as the lines that changed: the viewer's body, split after each newline, becomes
/// the new one by `ops` in order — a positive number keeps that many lines, a negative one
/// drops that many, a string is a line to insert.
#[derive(Debug, serde::Serialize)]
pub struct Delta {
    pub seq: usize,
    pub ops: Vec<Op>,
}

#[derive(Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Op {
    Lines(i64),
    Insert(String),
}

/// How long a diff may take before it settles for a coarser answer.
const DIFF_DEADLINE: Duration = Duration::from_millis(20);

/// `ops` taking `old` to `new`, or `None` when sending `new` whole is as small.
pub fn delta(old: &str, new: &str) -> Option<Vec<Op>> {
    use similar::{Algorithm, DiffOp, TextDiff};
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .timeout(DIFF_DEADLINE)
        .diff_lines(old, new);
    let lines = diff.new_slices();
    let mut ops = Vec::new();
    let mut size = 0;
    for op in diff.ops() {
        match *op {
            DiffOp::Equal { len, .. } => ops.push(Op::Lines(len as i64)),
            DiffOp::Delete { old_len, .. } => ops.push(Op::Lines(-(old_len as i64))),
            DiffOp::Insert {
                new_index, new_len, ..
            } => insert(&mut ops, &mut size, &lines[new_index..new_index + new_len]),
            DiffOp::Replace {
                old_len,
                new_index,
                new_len,
                ..
            } => {
                ops.push(Op::Lines(-(old_len as i64)));
                insert(&mut ops, &mut size, &lines[new_index..new_index + new_len]);
            }
        }
    }
    (size + ops.len() * 4 < new.len()).then_some(ops)
}

fn insert(ops: &mut Vec<Op>, size: &mut usize, lines: &[&str]) {
    for line in lines {
        *size += line.len();
        ops.push(Op::Insert((*line).to_string()));
    }
}

/// `ops` applied to `old`: what a viewer's script (`live.js`) does, to test the protocol.
#[cfg(test)]
fn apply(old: &str, ops: &[Op]) -> String {
    let lines: Vec<&str> = old.split_inclusive('\n').collect();
    let (mut at, mut out) = (0usize, String::new());
    for op in ops {
        match op {
            Op::Lines(n) if *n >= 0 => {
                let n = *n as usize;
                out.extend(
                    lines[at.min(lines.len())..(at + n).min(lines.len())]
                        .iter()
                        .copied(),
                );
                at += n;
            }
            Op::Lines(n) => at += n.unsigned_abs() as usize,
            Op::Insert(line) => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_rebuilds_the_new_body_and_is_small_when_little_changed() {
        let old: String = (0..300).map(|i| format!("<li>line {i}</li>\n")).collect();
        let mut new = old.replace("<li>line 7</li>", "<li>line seven</li>");
        new.push_str("<li>appended</li>\n");
        new = new.replace("<li>line 100</li>\n", "");
        let ops = delta(&old, &new).expect("smaller than the whole");
        assert_eq!(apply(&old, &ops), new);
        let sent = serde_json::to_string(&ops).unwrap().len();
        assert!(sent < 120, "{sent} bytes: {ops:?}");
        // Nothing in common: the whole body is sent instead.
        assert!(delta("a\nb\n", "c\nd\n").is_none());
        // No trailing newline, and an empty body, either way round.
        for (a, b) in [("x\ny", "x\nz"), ("", "x\n"), ("x\n", "")] {
            if let Some(ops) = delta(a, b) {
                assert_eq!(apply(a, &ops), b);
            }
        }
    }
}
