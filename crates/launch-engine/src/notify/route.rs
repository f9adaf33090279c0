//! Which journal records become which messages, for which channel and level (§14).

use std::collections::{BTreeMap, BTreeSet};

use super::Message;
use crate::journal::{Event, Record};
use crate::record::Outcome;
use crate::runbook::{Channel, Notify, Runbook};

/// Which records become which messages; remembers rollbacks under way and the environments
/// rolled back.
pub(super) struct Route {
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
    pub(super) fn new(runbook: &Runbook) -> Route {
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

    pub(super) fn on(&mut self, record: &Record) -> Vec<Message> {
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
