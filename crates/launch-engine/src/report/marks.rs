//! What a canary's chart draws over its lines: where the flag was (its steps, down to 0 on a
//! rollback), markers for the moments the canary changed (promotions, the rollback,
//! operators' requests) and the values each span names on hover. Positions come from the
//! chart's axes (`chart`), passed in as functions.

use super::StageReport;
use super::chart::{MAX_MARKERS, Measure, RIGHT, WIDTH, bucket_width, label};
use launch_targets::probe::Served;

/// A moment the canary changed: a promotion, the rollback, an operator's request.
pub struct Marker {
    pub x: f64,
    /// The label's row (0 or 1), so neighbours do not overwrite each other.
    pub row: f64,
    /// `promote`, `rollback`, `operator`.
    pub class: &'static str,
    /// Near the right edge the label ends at the line instead of starting there.
    pub end: bool,
    pub label: String,
    /// What hovering it says.
    pub title: String,
}

/// A span of the x axis that names its numbers on hover.
pub struct Hover {
    pub x: f64,
    pub width: f64,
    pub title: String,
}

/// The canary's flag after each decision that moved it: a promotion's target, 0 on a rollback.
pub(super) fn flag_moves(s: &StageReport) -> Vec<(u64, u8)> {
    s.decisions
        .iter()
        .filter_map(|d| {
            if d.action.starts_with("rollback") {
                Some((d.at_ms, 0))
            } else {
                let p = d.action.strip_prefix("promote ")?;
                Some((d.at_ms, p.trim_end_matches('%').parse().ok()?))
            }
        })
        .collect()
}

/// The flag as steps: each window's percent from its start to its end, and a move the
/// policy made after the last window (the rollback to 0) drawn to `t1`, the latest moment.
pub(super) fn flag_line(
    s: &StageReport,
    moves: &[(u64, u8)],
    t0: u64,
    t1: u64,
    x: &dyn Fn(u64) -> f64,
    y: &dyn Fn(u8) -> f64,
) -> String {
    let mut steps: Vec<(u64, u8)> = Vec::new();
    for w in &s.windows {
        if steps.last().map(|l| l.1) != Some(w.percent) {
            steps.push((w.start_ms, w.percent));
        }
    }
    let last_window = s
        .windows
        .iter()
        .map(|w| w.start_ms.saturating_add(w.duration_ms))
        .max()
        .unwrap_or(t0);
    for &(at, p) in moves.iter().filter(|m| m.0 >= last_window) {
        steps.push((at, p));
    }
    let mut line = Vec::new();
    for (i, &(at, p)) in steps.iter().enumerate() {
        let end = steps.get(i + 1).map_or(t1, |n| n.0);
        line.push(format!("{:.1},{:.1}", x(at), y(p)));
        line.push(format!("{:.1},{:.1}", x(end), y(p)));
    }
    line.iter().fold(String::new(), |all, p| all + p + "\n")
}

/// Promotions, the rollback and operators' requests, the latest `MAX_MARKERS`.
pub(super) fn markers(s: &StageReport, x: &dyn Fn(u64) -> f64) -> Vec<Marker> {
    let mut all: Vec<(u64, &'static str, String, String)> = Vec::new();
    for d in &s.decisions {
        if let Some(p) = d.action.strip_prefix("promote ") {
            all.push((d.at_ms, "promote", format!("→{p}"), d.summary.clone()));
        } else if d.action.starts_with("rollback") {
            all.push((d.at_ms, "rollback", "rollback".into(), d.summary.clone()));
        }
    }
    for c in &s.controls {
        all.push((
            c.at_ms,
            "operator",
            c.command.clone(),
            format!(
                "{}: {} ({}) — {}",
                c.operator, c.command, c.reason, c.outcome
            ),
        ));
    }
    all.sort_by_key(|m| m.0);
    let skip = all.len().saturating_sub(MAX_MARKERS);
    all.into_iter()
        .skip(skip)
        .enumerate()
        .map(|(i, (at, class, label, title))| Marker {
            end: x(at) > WIDTH - RIGHT - 60.0,
            x: x(at),
            row: (i % 2) as f64,
            class,
            label,
            title,
        })
        .collect()
}

/// One hover span per point of the lines: the canary's and the baseline's value and the flag.
pub(super) fn hovers(
    s: &StageReport,
    measure: Measure,
    t0: u64,
    t1: u64,
    x: &dyn Fn(u64) -> f64,
) -> Vec<Hover> {
    /// (start, end, canary's worst, baseline's worst, flag at the end).
    type Span = (u64, u64, Option<f64>, Option<f64>, u8);
    let width = bucket_width(t1 - t0);
    let mut spans: Vec<Span> = Vec::new();
    for w in &s.windows {
        let b = w.start_ms.saturating_add(w.duration_ms);
        let key = t0 + b.saturating_sub(t0).saturating_sub(1) / width * width;
        let worst = |o: Option<f64>, v: Option<f64>| match (o, v) {
            (Some(o), Some(v)) => Some(o.max(v)),
            (o, v) => o.or(v),
        };
        let (c, bl) = (
            measure.of(w, Served::Canary),
            measure.of(w, Served::Baseline),
        );
        match spans.last_mut() {
            Some(last) if last.0 == key => {
                last.1 = b;
                last.2 = worst(last.2, c);
                last.3 = worst(last.3, bl);
                last.4 = w.percent;
            }
            _ => spans.push((key, b, c, bl, w.percent)),
        }
    }
    let show = |v: Option<f64>| v.map_or_else(|| "no traffic".into(), |v| measure.show(v));
    spans
        .into_iter()
        .map(|(a, b, c, bl, p)| Hover {
            x: x(a),
            width: (x(b) - x(a)).max(1.0),
            title: format!(
                "+{} s to +{} s at {p}%: canary {}, baseline {}",
                label(a.saturating_sub(t0) as f64 / 1000.0),
                label(b.saturating_sub(t0) as f64 / 1000.0),
                show(c),
                show(bl)
            ),
        })
        .collect()
}
