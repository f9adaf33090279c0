//! The run page: one page for a launch, the same whether it is `report.html` in the run folder
//! (standalone, printable, no script) or served live by `launch-host serve`, where the body is
//! sent again over server-sent events as the journal grows. Askama templates
//! (`templates/run.html`, `templates/run_body.html`) draw it and escape every value; this file
//! only turns a report into what the templates show.

use askama::Template;

use super::chart::{self, Chart, Measure};
use super::glance::{self, DecisionGroup, Glance};
use super::{RunReport, StageReport, numbers, shadow};
use crate::record::CheckRecord;
use crate::uat::UatData;

/// The live parts a served page adds: where its updates come from, and the operator's actions.
pub struct Live {
    /// The server-sent events of this run's body.
    pub events: String,
    /// Where the action forms post, when the server allows actions.
    pub actions: Option<String>,
    /// What the emergency rollback would do, in a sentence its confirmation shows.
    pub emergency: String,
}

/// A verdict word as a CSS class (`NO DATA` → `NO-DATA`).
fn class(word: &str) -> String {
    word.replace(' ', "-")
}

pub struct CheckView {
    pub name: String,
    pub word: &'static str,
    pub class: String,
    pub numbers: String,
    pub detail: String,
}

impl CheckView {
    fn of(c: &CheckRecord) -> CheckView {
        CheckView {
            name: c.name.clone(),
            word: c.word(),
            class: class(c.word()),
            numbers: numbers(c),
            detail: format!("{} {}", c.verdict.reason(), c.detail)
                .trim()
                .to_string(),
        }
    }
}

pub struct ShadowRow {
    pub plugin: String,
    pub asked: usize,
    pub agreed: usize,
    pub disagreed: usize,
    pub failed: usize,
}

pub struct Disagreement {
    pub at: String,
    pub live: String,
    pub shadow: String,
    pub reasons: String,
}

pub struct StageView {
    /// Whether it started (else it is planned: pending, or not run).
    pub started: bool,
    pub number: usize,
    pub name: String,
    pub title: String,
    pub word: &'static str,
    pub class: String,
    pub reason: String,
    pub summary: String,
    pub outcome: String,
    pub elapsed: String,
    pub plugin: String,
    pub checks: Vec<CheckView>,
    pub effects: Vec<String>,
    /// The canary's current flag %, when the stage moved one.
    pub flag: Option<u8>,
    pub charts: Vec<String>,
    /// Its charts are on the first screen instead (the canary the page is about).
    pub charts_above: bool,
    /// Its decisions, repeats taken together.
    pub groups: Vec<DecisionGroup>,
    pub shadows: Vec<ShadowRow>,
    pub disagreements: Vec<Disagreement>,
}

pub struct UatItemView {
    pub id: String,
    pub title: String,
    pub blocking: bool,
    pub result: String,
    pub class: String,
    pub tester: String,
    pub notes: String,
}

pub struct SignoffView {
    pub role: String,
    pub name: String,
    pub decision: &'static str,
    pub note: String,
    pub at: String,
    pub covers: String,
}

pub struct GrantView {
    pub stage: String,
    pub plugin: String,
    pub lines: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "run_body.html")]
pub struct Body {
    pub glance: Glance,
    /// The charts of the canary the first screen is about.
    pub now_charts: Vec<String>,
    pub run_id: String,
    pub outcome: String,
    pub outcome_class: String,
    pub summary: String,
    pub runbook: String,
    pub started: String,
    pub duration: String,
    pub stages: Vec<StageView>,
    pub uat_items: Vec<UatItemView>,
    pub signoffs: Vec<SignoffView>,
    pub manifest: String,
    pub grants: Vec<GrantView>,
    /// Notifications that never reached their channel: `#channel`, what, why.
    pub undelivered: Vec<(String, String, String)>,
    /// Each takeover, in a sentence.
    pub takeovers: Vec<String>,
}

#[derive(Template)]
#[template(path = "run.html")]
struct Page<'a> {
    run_id: &'a str,
    launch: &'a str,
    outcome: &'a str,
    body: &'a str,
    live: Option<&'a Live>,
}

fn at(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn stage(i: usize, s: &StageReport, t0: u64) -> StageView {
    let charts = [Measure::P95, Measure::ErrorRate]
        .into_iter()
        .filter_map(|m| chart::chart(s, m))
        .filter_map(|c: Chart| c.render().ok())
        .collect();
    let verdict = s.verdict.as_ref();
    StageView {
        started: true,
        number: i + 1,
        name: s.name.clone(),
        title: s.title.clone(),
        word: verdict.map_or("RUNNING", |v| v.word()),
        class: class(verdict.map_or("RUNNING", |v| v.word())),
        reason: verdict
            .filter(|v| !v.is_pass())
            .map(|v| v.reason().to_string())
            .unwrap_or_default(),
        summary: s.summary.clone(),
        outcome: s.outcome.clone(),
        elapsed: if verdict.is_some() {
            secs(s.elapsed_ms)
        } else {
            "running".into()
        },
        plugin: s.plugin.clone().unwrap_or_default(),
        checks: s.checks.iter().map(CheckView::of).collect(),
        effects: s.effects.clone(),
        flag: glance::flag_of(s),
        charts,
        charts_above: false,
        groups: glance::groups(s, t0),
        shadows: shadow::tallies(s)
            .into_iter()
            .map(|(plugin, t)| ShadowRow {
                plugin,
                asked: t.asked,
                agreed: t.agreed,
                disagreed: t.disagreed,
                failed: t.failed,
            })
            .collect(),
        disagreements: s
            .shadows
            .iter()
            .filter(|a| !a.agrees)
            .map(|a| Disagreement {
                at: shadow::place(a),
                live: a.live.clone(),
                shadow: format!("{}: {}", a.plugin, a.shadow),
                reasons: shadow::reasons(a),
            })
            .collect(),
    }
}

/// The stages that ran, then those planned that have not started (or never will).
fn stages(r: &RunReport) -> Vec<StageView> {
    let mut views: Vec<StageView> = r
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| stage(i, s, r.started_ms))
        .collect();
    let word = if r.finished_ms.is_some() {
        "NOT RUN"
    } else {
        "PENDING"
    };
    for (name, title) in &r.planned {
        if r.stages.iter().any(|s| &s.name == name) {
            continue;
        }
        views.push(StageView {
            started: false,
            number: views.len() + 1,
            name: name.clone(),
            title: title.clone(),
            word,
            class: class(word),
            reason: String::new(),
            summary: String::new(),
            outcome: String::new(),
            elapsed: String::new(),
            plugin: String::new(),
            checks: Vec::new(),
            effects: Vec::new(),
            flag: None,
            charts: Vec::new(),
            charts_above: false,
            groups: Vec::new(),
            shadows: Vec::new(),
            disagreements: Vec::new(),
        });
    }
    views
}

/// The body of a run's page: what the live page replaces as the journal grows.
pub fn body(r: &RunReport, uat: Option<&UatData>) -> Body {
    let t0 = r.started_ms;
    let (uat_items, signoffs) = match uat {
        None => (Vec::new(), Vec::new()),
        Some(u) => (
            u.items
                .iter()
                .map(|i| {
                    let result = u.result(&i.id);
                    UatItemView {
                        id: i.id.clone(),
                        title: i.title.clone(),
                        blocking: i.blocking,
                        result: result.map_or("untested", |r| r.outcome.word()).into(),
                        class: result
                            .map_or("untested", |r| r.outcome.word())
                            .to_uppercase(),
                        tester: result.map(|r| r.tester.clone()).unwrap_or_default(),
                        notes: result.map(|r| r.notes.clone()).unwrap_or_default(),
                    }
                })
                .collect(),
            u.signoffs
                .iter()
                .map(|s| SignoffView {
                    role: s.role.clone(),
                    name: s.name.clone(),
                    decision: s.decision.word(),
                    note: s.note.clone(),
                    at: at(s.at_ms),
                    covers: s
                        .scope
                        .as_ref()
                        .map(|c| c.manifest_sha256.chars().take(19).collect())
                        .unwrap_or_else(|| "-".into()),
                })
                .collect(),
        ),
    };
    let glance = glance::glance(r);
    let mut stages = stages(r);
    // The canary the first screen is about shows its charts there, not again below.
    let now_charts = match &glance.canary {
        Some(c) => stages
            .iter_mut()
            .rev()
            .find(|s| s.started && s.name == c.stage)
            .map(|s| {
                s.charts_above = !s.charts.is_empty();
                std::mem::take(&mut s.charts)
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    Body {
        glance,
        now_charts,
        run_id: r.run_id.clone(),
        outcome: r.outcome.to_uppercase(),
        outcome_class: r.outcome.clone(),
        summary: r.summary.clone(),
        runbook: r.runbook.clone(),
        started: format!(
            "{}{}",
            at(r.started_ms),
            r.started_by
                .as_deref()
                .map(|who| format!(" by {who}"))
                .unwrap_or_default()
        ),
        duration: r
            .finished_ms
            .map(|f| secs(f.saturating_sub(t0)))
            .unwrap_or_else(|| "running".into()),
        stages,
        uat_items,
        signoffs,
        manifest: r
            .capabilities
            .as_ref()
            .map(|c| c.manifest_sha256.clone())
            .unwrap_or_default(),
        grants: r
            .capabilities
            .iter()
            .flat_map(|c| &c.grants)
            .map(|g| GrantView {
                stage: g.stage.clone(),
                plugin: format!("{}{}", g.plugin, if g.shadow { " (shadow)" } else { "" }),
                lines: crate::manifest::describe(g),
            })
            .collect(),
        takeovers: r.takeovers.iter().map(|t| t.describe()).collect(),
        undelivered: r
            .undelivered
            .iter()
            .map(|u| {
                let level = u.level.map(|l| format!(" (L{l})")).unwrap_or_default();
                (
                    format!("#{}", u.channel),
                    format!("{}{level}", u.what),
                    u.error.clone(),
                )
            })
            .collect(),
    }
}

/// The whole page: standalone when `live` is `None` (report.html), live when served.
pub fn render(r: &RunReport, uat: Option<&UatData>, live: Option<&Live>) -> String {
    let body = body(r, uat)
        .render()
        .unwrap_or_else(|e| format!("<p>{e}</p>"));
    Page {
        run_id: &r.run_id,
        launch: if r.launch.is_empty() {
            &r.runbook
        } else {
            &r.launch
        },
        outcome: &r.outcome,
        body: &body,
        live,
    }
    .render()
    .unwrap_or_else(|e| format!("<!doctype html><p>{e}</p>"))
}

#[cfg(test)]
mod tests {
    use crate::journal::{Event, Journal};
    use crate::report::RunReport;

    fn report(events: Vec<Event>) -> RunReport {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        for e in events {
            journal.append(e).unwrap();
        }
        RunReport::from_bytes(&std::fs::read(&path).unwrap()).unwrap()
    }

    #[test]
    fn planned_stages_show_as_pending_and_every_value_is_escaped() {
        let r = report(vec![
            Event::RunStarted {
                run_id: "r1".into(),
                runbook: "<b>launch.toml</b>".into(),
                runbook_sha256: String::new(),
                plugins: Vec::new(),
                auto: true,
                started_by: Some("alice <script>".into()),
                launch: "StatusBoardV2".into(),
                flag: "STATUS_BOARD_V2_ENABLED".into(),
                environments: vec!["staging".into()],
            },
            Event::Planned {
                stages: vec![
                    ("smoke".into(), "Smoke".into()),
                    ("canary".into(), "Canary".into()),
                ],
            },
            Event::StageStarted {
                stage: "smoke".into(),
                title: "Smoke <img src=x onerror=alert(1)>".into(),
            },
        ]);
        let html = super::render(&r, None, None);
        assert!(
            html.contains("<td class=\"PENDING\">PENDING</td>"),
            "{html}"
        );
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&#60;img src=x"), "{html}");
        assert!(!html.contains("alice <script>"), "{html}");
        assert!(!html.contains("<script"), "a report has no script: {html}");
        let live = super::Live {
            events: "/runs/r1/events".into(),
            actions: None,
            emergency: String::new(),
        };
        let served = super::render(&r, None, Some(&live));
        assert!(
            served.contains("data-events=\"/runs/r1/events\"")
                && served.contains("<script src=\"/live.js\" defer></script>"),
            "the server's own script follows the events: {served}"
        );
        assert!(
            !served.contains("section class=\"actions\""),
            "read-only by default"
        );
    }
}
