//! Notifications follow the journal: every record, once durable, is routed to the guide's
//! channels (§14) — `#releases` hears the run start, each stage's verdict and the end;
//! `#alerts` a failed gate and an automatic rollback (level 1); `#statusboard-emergency` a
//! manual or full rollback (level 2, on-call mentioned), a failed rollback or both
//! environments rolled back (level 3, leadership too). Messages are sent after the effect,
//! each with retries inside a deadline: nothing waits for a webhook, and a dead one is
//! journaled (`notified`), never fatal. Channels are sent to concurrently; one channel hears
//! its messages in the journal's order (each starts when the one before it ended).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::journal::{Event, Record};
use crate::runbook::{Channel, Runbook};
use launch_targets::notify::{Delivery, Webhook};

mod route;
use route::Route;

/// One message for one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub channel: Channel,
    pub what: &'static str,
    pub level: Option<u8>,
    pub text: String,
}

struct Shared {
    hooks: BTreeMap<Channel, Webhook>,
    retries: u32,
    deadline: Duration,
    client: reqwest::Client,
    launch: String,
    run_id: Mutex<String>,
    /// Deliveries finished and not journaled yet.
    done: Mutex<Vec<Event>>,
    /// Deliveries on their way: the channel, `#channel (what)` and the task.
    running: Mutex<Vec<(Channel, String, tokio::task::JoinHandle<()>)>>,
    /// Per channel, what tells the next message that the last one sent there has ended.
    last: Mutex<BTreeMap<Channel, tokio::sync::oneshot::Receiver<()>>>,
}

/// Sends a run's notifications. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    shared: Arc<Shared>,
}

impl Notifier {
    /// The runbook's notifier, when it has a `[notify]` with a channel.
    pub fn new(runbook: &Runbook) -> anyhow::Result<Option<Notifier>> {
        let Some(spec) = &runbook.notify else {
            return Ok(None);
        };
        let hooks: BTreeMap<Channel, Webhook> = spec
            .channels
            .iter()
            .filter_map(|(c, s)| {
                s.target()
                    .map(|(url, f)| (*c, Webhook::new(url.get_ref().clone(), f)))
            })
            .collect();
        if hooks.is_empty() {
            return Ok(None);
        }
        Ok(Some(Notifier {
            shared: Arc::new(Shared {
                hooks,
                retries: spec.retries,
                deadline: spec.deadline,
                client: reqwest::Client::builder().build()?,
                launch: runbook.launch.name.clone(),
                run_id: Mutex::new(String::new()),
                done: Mutex::new(Vec::new()),
                running: Mutex::new(Vec::new()),
                last: Mutex::new(BTreeMap::new()),
            }),
        }))
    }

    /// What the journal is shown: routes each record and sends its messages.
    pub fn tap(&self, runbook: &Runbook) -> impl FnMut(&Record) + Send + Sync + 'static {
        let notifier = self.clone();
        let mut route = Route::new(runbook);
        move |record| {
            if let Event::RunStarted { run_id, .. } = &record.event {
                *lock(&notifier.shared.run_id) = run_id.clone();
            }
            for message in route.on(record) {
                notifier.send(message);
            }
        }
    }

    /// Starts delivering `message`; returns at once.
    fn send(&self, message: Message) {
        let shared = self.shared.clone();
        let Some(hook) = shared.hooks.get(&message.channel).cloned() else {
            return;
        };
        let text = crate::redact::text(&message.text).into_owned();
        let payload = json!({
            "launch": shared.launch,
            "run_id": *lock(&shared.run_id),
            "channel": message.channel.word(),
            "what": message.what,
            "level": message.level,
            "text": text,
        });
        // Records are journaled from async code; without a runtime nothing could be sent.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let sender = shared.clone();
        // Ordered here, not by when the tasks happen to be run: the scheduler may run the
        // latest first. `ended` drops with the task, however it ends.
        let (ended, this_ended) = tokio::sync::oneshot::channel::<()>();
        let before = lock(&shared.last).insert(message.channel, this_ended);
        let task = runtime.spawn(async move {
            let _ended = ended;
            if let Some(before) = before {
                // Bounded: the one before has a deadline of its own.
                let _ = before.await;
            }
            let shared = sender;
            let d: Delivery = hook
                .deliver(
                    &shared.client,
                    &text,
                    &payload,
                    shared.retries,
                    shared.deadline,
                )
                .await;
            lock(&shared.done).push(Event::Notified {
                channel: message.channel,
                what: message.what.into(),
                level: message.level,
                delivered: d.delivered,
                attempts: d.attempts,
                status: d.status,
                error: d.error,
                elapsed_ms: u64::try_from(d.elapsed.as_millis()).unwrap_or(u64::MAX),
            });
        });
        let mut running = lock(&shared.running);
        running.retain(|(_, _, t)| !t.is_finished());
        running.push((
            message.channel,
            format!("#{} ({})", message.channel.word(), message.what),
            task,
        ));
    }

    /// The deliveries still on their way, as `#channel (what)`.
    pub fn waiting(&self) -> Vec<String> {
        lock(&self.shared.running)
            .iter()
            .filter(|(_, _, t)| !t.is_finished())
            .map(|(_, what, _)| what.clone())
            .collect()
    }

    /// The most one delivery may take, retries included.
    pub fn deadline(&self) -> Duration {
        self.shared.deadline
    }

    /// Deliveries finished since the last call, as journal records.
    pub fn finished(&self) -> Vec<Event> {
        std::mem::take(&mut *lock(&self.shared.done))
    }

    /// Waits for the deliveries still running (each is bounded by the deadline, and one
    /// channel's run one after another), then returns every outcome not journaled yet.
    pub async fn finish(&self) -> Vec<Event> {
        let running = std::mem::take(&mut *lock(&self.shared.running));
        let mut queued: BTreeMap<Channel, u32> = BTreeMap::new();
        for (channel, _, t) in &running {
            if !t.is_finished() {
                *queued.entry(*channel).or_default() += 1;
            }
        }
        let longest = queued.into_values().max().unwrap_or(0);
        let bound = self.shared.deadline * longest + Duration::from_secs(1);
        let tasks = running.into_iter().map(|(_, _, t)| t);
        let _ = tokio::time::timeout(bound, futures::future::join_all(tasks)).await;
        self.finished()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
