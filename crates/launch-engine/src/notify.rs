//! Notifications follow the journal: every record, once durable, is routed to the guide's
//! channels (§14) — `#releases` hears the run start, each stage's verdict and the end;
//! `#alerts` a failed gate and an automatic rollback (level 1); `#statusboard-emergency` a
//! manual or full rollback (level 2, on-call mentioned), a failed rollback or both
//! environments rolled back (level 3, leadership too). Messages are sent after the effect,
//! each with retries inside a deadline: nothing waits for a webhook, and a dead one is
//! journaled (`notified`), never fatal. Channels are sent to concurrently; one channel hears
//! its messages in the journal's order (each starts when the one before it ended).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::journal::{Event, Record};
use crate::record::Outcome;
use crate::runbook::{Channel, Notify, Runbook};
use launch_targets::notify::{Delivery, Webhook};

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

/// Which records become which messages; remembers rollbacks under way and the environments
/// rolled back.
struct Route {
    launch: String,
    on_call: String,
    leadership: String,
    /// Rollback effects started and not done: (stage, key) → detail.
    pending: BTreeMap<(String, String), String>,
    rolled_back: BTreeSet<String>,
}

/// Rollback modes an operator chose (the others are the host's own, automatic).
const MANUAL: [&str; 2] = ["emergency", "operator-abort"];

impl Route {
    fn new(runbook: &Runbook) -> Route {
        let spec: Option<&Notify> = runbook.notify.as_ref();
        let mention = |m: Option<&String>| m.map(|m| format!(" {m}")).unwrap_or_default();
        Route {
            launch: runbook.launch.name.clone(),
            on_call: mention(spec.and_then(|s| s.on_call.as_ref())),
            leadership: mention(spec.and_then(|s| s.leadership.as_ref())),
            pending: BTreeMap::new(),
            rolled_back: BTreeSet::new(),
        }
    }

    fn on(&mut self, record: &Record) -> Vec<Message> {
        let launch = &self.launch;
        let say = |channel, what, level, text: String| Message {
            channel,
            what,
            level,
            text,
        };
        match &record.event {
            Event::RunStarted { run_id, runbook, .. } => vec![say(
                Channel::Releases,
                "run-started",
                None,
                format!("🚀 {launch}: run {run_id} started ({runbook})"),
            )],
            Event::EffectStarted { stage, key, detail } if key.starts_with("rollback:") => {
                self.pending.insert((stage.clone(), key.clone()), detail.clone());
                Vec::new()
            }
            Event::EffectDone { stage, key, detail } => {
                self.pending.remove(&(stage.clone(), key.clone()));
                self.effect_done(key, detail)
            }
            Event::FlagRestored {
                stage,
                environment,
                flag,
                percent,
                restored,
                reason,
            } => match restored {
                true => vec![say(
                    Channel::Alerts,
                    "auto-rollback",
                    Some(1),
                    format!("⚠️ L1 {launch}: the host failed in `{stage}` ({reason}); {flag} on {environment} restored to {percent}%"),
                )],
                false => vec![self.failed_rollback(&format!(
                    "the host failed in `{stage}` ({reason}) and {flag} on {environment} could NOT be restored to {percent}% — set it by hand"
                ))],
            },
            Event::StageFinished {
                stage,
                verdict,
                summary,
                dry_run,
                outcome,
                ..
            } => {
                let mut out = vec![say(
                    Channel::Releases,
                    "stage-finished",
                    None,
                    format!("{launch} · `{stage}`: {} — {summary}", verdict.word().to_uppercase()),
                )];
                if !verdict.is_pass() && !dry_run {
                    out.push(say(
                        Channel::Alerts,
                        "gate-failed",
                        None,
                        format!("❌ {launch}: gate `{stage}` {} — {} ({outcome})", verdict.word(), verdict.reason()),
                    ));
                }
                // A rollback that started in this stage and never finished failed.
                let stuck: Vec<String> = self
                    .pending
                    .extract_if(.., |(s, _), _| s == stage)
                    .map(|(_, detail)| detail)
                    .collect();
                for detail in stuck {
                    out.push(self.failed_rollback(&format!("{detail} did not complete")));
                }
                out
            }
            Event::TakenOver {
                by,
                from,
                lease_silent_ms,
                action,
                ..
            } => vec![say(
                Channel::StatusboardEmergency,
                "taken-over",
                Some(2),
                format!(
                    "🚨 L2 {launch}: the run's runner ({from}) went silent for {:.1} s; {by} took it over and will {action} the stage in progress{}",
                    *lease_silent_ms as f64 / 1000.0,
                    self.on_call
                ),
            )],
            Event::RunFinished { outcome, summary } => vec![say(
                Channel::Releases,
                "run-finished",
                None,
                match outcome {
                    // A run that rolled back (an operator's rollback command passes) did
                    // not launch anything: it says what it did.
                    Outcome::Passed if !self.rolled_back.is_empty() => {
                        let envs: Vec<&str> = self.rolled_back.iter().map(String::as_str).collect();
                        format!("↩️ {launch}: rolled back in {} — {summary}", envs.join(" and "))
                    }
                    Outcome::Passed => format!("✅ {launch}: launch complete — {summary}"),
                    other => format!("{launch}: run {} — {summary}", other.word().to_uppercase()),
                },
            )],
            _ => Vec::new(),
        }
    }

    fn effect_done(&mut self, key: &str, detail: &str) -> Vec<Message> {
        let launch = &self.launch;
        if key.starts_with("restore:") {
            return vec![Message {
                channel: Channel::StatusboardEmergency,
                what: "full-rollback",
                level: Some(2),
                text: format!("🚨 L2 {launch}: full rollback — {detail}{}", self.on_call),
            }];
        }
        let Some(rest) = key.strip_prefix("rollback:") else {
            return Vec::new();
        };
        let (mode, env) = rest.split_once(':').unwrap_or((rest, ""));
        let detail = &without_store(detail);
        let mut out = vec![if MANUAL.contains(&mode) {
            Message {
                channel: Channel::StatusboardEmergency,
                what: "manual-rollback",
                level: Some(2),
                text: format!("🚨 L2 {launch}: manual rollback — {detail}{}", self.on_call),
            }
        } else {
            Message {
                channel: Channel::Alerts,
                what: "auto-rollback",
                level: Some(1),
                text: format!("⚠️ L1 {launch}: auto-rollback — {detail}"),
            }
        }];
        if self.rolled_back.insert(env.to_string()) && self.rolled_back.len() == 2 {
            let envs: Vec<&str> = self.rolled_back.iter().map(String::as_str).collect();
            out.push(Message {
                channel: Channel::StatusboardEmergency,
                what: "both-environments",
                level: Some(3),
                text: format!(
                    "🔥 L3 {launch}: both environments impacted — rolled back in {}{}{}",
                    envs.join(" and "),
                    self.on_call,
                    self.leadership
                ),
            });
        }
        out
    }

    fn failed_rollback(&self, what: &str) -> Message {
        let what = &without_store(what);
        Message {
            channel: Channel::StatusboardEmergency,
            what: "rollback-failed",
            level: Some(3),
            text: format!(
                "🔥 L3 {}: ROLLBACK FAILED — {what}{}{}",
                self.launch, self.on_call, self.leadership
            ),
        }
    }
}

/// An effect's words for people's channels: the journal says where a flag was moved ("via
/// file /srv/…/flags.json"); a channel hears the environment, never a local path.
fn without_store(detail: &str) -> String {
    match detail.split_once(" via ") {
        Some((head, tail)) => match tail.find(" (") {
            Some(i) => format!("{head}{}", &tail[i..]),
            None => head.to_string(),
        },
        None => detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::VerdictRecord;

    fn record(event: Event) -> Record {
        Record::new(event)
    }

    fn done(key: &str) -> Record {
        record(Event::EffectDone {
            stage: "s".into(),
            key: key.into(),
            detail: format!("{key} (why)"),
        })
    }

    fn route(r: &mut Route, rec: Record) -> Vec<(Channel, &'static str, Option<u8>)> {
        r.on(&rec)
            .into_iter()
            .map(|m| (m.channel, m.what, m.level))
            .collect()
    }

    #[test]
    fn rollbacks_escalate_by_who_decided_and_how_far_they_reach() {
        let mut r = Route::new(&Runbook::embedded().unwrap());
        assert_eq!(
            route(&mut r, done("rollback:auto:staging")),
            [(Channel::Alerts, "auto-rollback", Some(1))]
        );
        assert_eq!(
            route(&mut r, done("rollback:emergency:production")),
            [
                (Channel::StatusboardEmergency, "manual-rollback", Some(2)),
                (Channel::StatusboardEmergency, "both-environments", Some(3)),
            ]
        );
        assert_eq!(
            route(&mut r, done("restore:20261128T000000Z-x")),
            [(Channel::StatusboardEmergency, "full-rollback", Some(2))]
        );
        assert!(
            route(&mut r, done("drill:off")).is_empty(),
            "a drill is not a rollback"
        );
        let finished = record(Event::RunFinished {
            outcome: Outcome::Passed,
            summary: "all 1 stages passed".into(),
        });
        let said = r.on(&finished);
        assert!(
            said[0].text.starts_with("↩️") && !said[0].text.contains("launch complete"),
            "a rollback is not a launch: {}",
            said[0].text
        );
    }

    #[test]
    fn people_hear_the_environment_not_the_store() {
        assert_eq!(
            without_store(
                "auto rollback of staging: F → 0% via file /srv/ws/env/staging/flags.json (error-rate 5%)"
            ),
            "auto rollback of staging: F → 0% (error-rate 5%)"
        );
        assert_eq!(
            without_store("make r1 current again"),
            "make r1 current again"
        );
    }

    #[test]
    fn a_rollback_that_never_finished_is_level_3() {
        let mut r = Route::new(&Runbook::embedded().unwrap());
        let started = record(Event::EffectStarted {
            stage: "canary".into(),
            key: "rollback:auto:staging".into(),
            detail: "auto rollback of staging".into(),
        });
        assert!(route(&mut r, started).is_empty());
        let finished = record(Event::StageFinished {
            stage: "canary".into(),
            verdict: VerdictRecord::Fail("the flag store is down".into()),
            checks: Vec::new(),
            summary: "x".into(),
            plugin: None,
            dry_run: false,
            outcome: "launch stopped".into(),
            elapsed_ms: 1,
        });
        assert_eq!(
            route(&mut r, finished),
            [
                (Channel::Releases, "stage-finished", None),
                (Channel::Alerts, "gate-failed", None),
                (Channel::StatusboardEmergency, "rollback-failed", Some(3)),
            ]
        );
    }
}
