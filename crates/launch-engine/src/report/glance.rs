//! What a run page's first screen answers, from the journal alone: which launch and where, what
//! is live now (the flag, the canary's step and how long it has held), whether it is healthy
//! (canary against baseline in the latest window, the policy's last decision and why), and the
//! decisions taken together where nothing changed.

use super::chart::Measure;
use super::{RunReport, StageReport, numbers};
use launch_targets::probe::Served;

/// The most decisions a group lists when opened (the latest); the journal holds them all.
pub const GROUP_ROWS: usize = 20;

/// The first screen of a run's page.
pub struct Glance {
    /// The launch's name, or the runbook's when the journal predates names.
    pub launch: String,
    pub environments: String,
    pub flag_name: String,
    /// The canary stage the screen is about: the one running, else the last one that ran.
    pub canary: Option<CanaryNow>,
}

pub struct CanaryNow {
    /// Its anchor on the page.
    pub stage: String,
    pub title: String,
    pub environment: String,
    pub running: bool,
    /// The flag now: where the last decision moved it (0 after a rollback).
    pub flag: u8,
    /// `step 3 (30%) for 4.2 s`, counted from the last promotion.
    pub step: String,
    /// Canary against baseline in the latest window: (measure, canary, baseline).
    pub health: Vec<(&'static str, String, String)>,
    /// The policy's checks in its last decision: (name, word, class, numbers).
    pub checks: Vec<(String, &'static str, String, String)>,
    pub decision: Option<LastDecision>,
}

pub struct LastDecision {
    pub action: String,
    pub why: String,
    pub at: String,
    /// Whether the policy wants the canary rolled back (shown as an alarm).
    pub alarm: bool,
}

/// Consecutive decisions with the same action at the same percentage, shown as one row.
pub struct DecisionGroup {
    pub first: String,
    pub last: String,
    pub count: usize,
    pub percent: u8,
    pub action: String,
    /// The group's latest reason.
    pub summary: String,
    pub plugin: String,
    /// The latest `GROUP_ROWS` of the group: (at, summary).
    pub rows: Vec<(String, String)>,
    /// How many earlier ones the group does not list.
    pub more: usize,
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// The canary's flag now: where its latest decision moved it (a promotion's target, 0 after
/// a rollback), else its latest window's.
pub fn flag_of(s: &StageReport) -> Option<u8> {
    if s.outcome.contains("rolled back") {
        return Some(0);
    }
    match s.decisions.last() {
        Some(d) if d.action.starts_with("rollback") => Some(0),
        Some(d) => Some(
            d.action
                .strip_prefix("promote ")
                .and_then(|p| p.trim_end_matches('%').parse().ok())
                .unwrap_or(d.percent),
        ),
        None => s.windows.last().map(|w| w.percent),
    }
}

fn is_canary(s: &StageReport) -> bool {
    !s.windows.is_empty() || !s.decisions.is_empty()
}

pub fn glance(r: &RunReport) -> Glance {
    let launch = if r.launch.is_empty() {
        r.runbook.clone()
    } else {
        r.launch.clone()
    };
    let stage = r
        .stages
        .iter()
        .rev()
        .find(|s| s.verdict.is_none() && is_canary(s))
        .or_else(|| r.stages.iter().rev().find(|s| is_canary(s)));
    Glance {
        launch,
        environments: r.environments.join(", "),
        flag_name: r.flag.clone(),
        canary: stage.map(|s| canary_now(s, r)),
    }
}

fn canary_now(s: &StageReport, r: &RunReport) -> CanaryNow {
    let now = r
        .finished_ms
        .or_else(|| s.decisions.last().map(|d| d.at_ms))
        .unwrap_or(r.started_ms);
    let promotions: Vec<_> = s
        .decisions
        .iter()
        .filter(|d| d.action.starts_with("promote"))
        .collect();
    let flag = flag_of(s).unwrap_or(0);
    let since = promotions.last().map_or(r.started_ms, |d| d.at_ms);
    let step = if s.decisions.iter().any(|d| d.action.starts_with("rollback")) {
        "rolled back".to_string()
    } else if promotions.is_empty() {
        "not promoted yet".to_string()
    } else if s.verdict.is_some() {
        format!("step {} ({flag}%), finished", promotions.len())
    } else {
        format!(
            "step {} ({flag}%) for {}",
            promotions.len(),
            secs(now.saturating_sub(since))
        )
    };
    let health = s
        .windows
        .last()
        .map(|w| {
            [
                ("p95 latency", Measure::P95),
                ("error rate", Measure::ErrorRate),
            ]
            .into_iter()
            .map(|(name, m)| {
                let show = |served| m.of(w, served).map_or("no traffic".into(), |v| m.show(v));
                (name, show(Served::Canary), show(Served::Baseline))
            })
            .collect()
        })
        .unwrap_or_default();
    let last = s.decisions.last();
    CanaryNow {
        stage: s.name.clone(),
        title: s.title.clone(),
        environment: s.environment.clone().unwrap_or_default(),
        running: s.verdict.is_none() && r.finished_ms.is_none(),
        flag,
        step,
        health,
        checks: last
            .map(|d| {
                d.checks
                    .iter()
                    .map(|c| {
                        (
                            c.name.clone(),
                            c.word(),
                            c.word().replace(' ', "-"),
                            numbers(c),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        decision: last.map(|d| LastDecision {
            action: d.action.clone(),
            why: d.summary.clone(),
            at: format!("+{}", secs(d.at_ms.saturating_sub(r.started_ms))),
            alarm: d.action.starts_with("rollback"),
        }),
    }
}

/// A stage's decisions, consecutive repeats (same action, same percentage) taken together.
pub fn groups(s: &StageReport, t0: u64) -> Vec<DecisionGroup> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (i, d) in s.decisions.iter().enumerate() {
        match spans.last_mut() {
            Some((start, end))
                if s.decisions[*start].action == d.action
                    && s.decisions[*start].percent == d.percent =>
            {
                *end = i
            }
            _ => spans.push((i, i)),
        }
    }
    let at = |ms: u64| format!("+{}", secs(ms.saturating_sub(t0)));
    spans
        .into_iter()
        .map(|(a, b)| {
            let ds = &s.decisions[a..=b];
            let shown = ds.len().min(GROUP_ROWS);
            let (first, last) = (&ds[0], &ds[ds.len() - 1]);
            DecisionGroup {
                first: at(first.at_ms),
                last: at(last.at_ms),
                count: ds.len(),
                percent: first.percent,
                action: first.action.clone(),
                summary: last.summary.clone(),
                plugin: last.plugin.clone(),
                rows: ds[ds.len() - shown..]
                    .iter()
                    .map(|d| (at(d.at_ms), d.summary.clone()))
                    .collect(),
                more: ds.len() - shown,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::DecisionReport;

    fn stage(actions: &[(&str, u8)]) -> StageReport {
        let mut s = StageReport::started("canary".into(), "Canary".into());
        s.decisions = actions
            .iter()
            .enumerate()
            .map(|(i, (action, percent))| DecisionReport {
                at_ms: 1000 * i as u64,
                percent: *percent,
                action: action.to_string(),
                summary: format!("{action} #{i}"),
                plugin: "canary-steps".into(),
                checks: Vec::new(),
            })
            .collect();
        s
    }

    #[test]
    fn repeated_decisions_are_one_group_listing_its_latest() {
        let mut actions = vec![("promote 10%", 0)];
        actions.extend(std::iter::repeat_n(("hold", 10), 5));
        actions.push(("promote 20%", 10));
        actions.extend(std::iter::repeat_n(("hold", 20), GROUP_ROWS + 10));
        actions.push(("rollback", 20));
        let s = stage(&actions);
        let g = groups(&s, 0);
        let shape: Vec<(&str, usize, usize)> = g
            .iter()
            .map(|g| (g.action.as_str(), g.count, g.rows.len()))
            .collect();
        assert_eq!(
            shape,
            [
                ("promote 10%", 1, 1),
                ("hold", 5, 5),
                ("promote 20%", 1, 1),
                ("hold", GROUP_ROWS + 10, GROUP_ROWS),
                ("rollback", 1, 1)
            ]
        );
        assert_eq!(g[3].more, 10);
        assert_eq!(
            g[3].summary,
            format!("hold #{}", 6 + GROUP_ROWS + 10),
            "the latest why"
        );
        assert_eq!(
            (g[1].first.as_str(), g[1].last.as_str()),
            ("+1.0 s", "+5.0 s")
        );
        assert_eq!(flag_of(&s), Some(0), "rolled back");
    }
}
