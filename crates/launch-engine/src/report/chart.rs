//! A canary's charts as data: axes with round ticks and units scaled to the data, a line per
//! served version (at most `MAX_POINTS`, the worst of each span), the policy's thresholds (one
//! far above the data is written at the top instead), the flag's steps on a 0–100 % axis of
//! their own down to 0 on a rollback, markers for promotions, the rollback and operators'
//! requests, and each span's values on hover (an SVG `title`). The SVG is drawn by
//! a template (`templates/chart.svg`), so no markup or escaping is written here, and the chart
//! needs no script: it reads the same in a printed report as on the live page.

use askama::Template;

use super::StageReport;
use super::marks::{Hover, Marker, flag_line, flag_moves, hovers, markers};
use launch_targets::probe::Served;

pub(super) const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 250.0;
const LEFT: f64 = 56.0;
pub(super) const RIGHT: f64 = 44.0;
/// Room above the plot for the units and the markers' labels, clear of the top tick.
const TOP: f64 = 34.0;
const BOTTOM: f64 = 34.0;
/// The most points a line has: windows beyond are taken together (the worst of each span),
/// so a two-hour canary's chart is as light as a two-minute one's and a peak is never lost.
pub const MAX_POINTS: usize = 240;
/// The most markers a chart draws (the latest).
pub(super) const MAX_MARKERS: usize = 40;
/// A threshold more than this many times the highest value is written above the plot instead
/// of flattening the lines onto zero.
const THRESHOLD_REACH: f64 = 4.0;

pub struct Tick {
    pub at: f64,
    pub label: String,
}

pub struct Series {
    /// The CSS class that colours it (`canary`, `baseline`, `flag`).
    pub class: &'static str,
    pub points: String,
}

pub struct Threshold {
    pub y: f64,
    pub label: String,
    /// Above the plotted range: written at the top with an arrow, no line.
    pub above: bool,
}

#[derive(Template)]
#[template(path = "chart.svg", escape = "html")]
pub struct Chart {
    pub title: String,
    pub unit: &'static str,
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    pub flag_ticks: Vec<Tick>,
    pub series: Vec<Series>,
    pub thresholds: Vec<Threshold>,
    pub markers: Vec<Marker>,
    pub hovers: Vec<Hover>,
    pub flag: String,
}

/// What one chart plots of each window.
#[derive(Clone, Copy)]
pub enum Measure {
    P95,
    ErrorRate,
}

impl Measure {
    fn unit(self) -> &'static str {
        match self {
            Measure::P95 => "ms",
            Measure::ErrorRate => "%",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Measure::P95 => "p95 latency",
            Measure::ErrorRate => "error rate",
        }
    }

    /// Whether a policy's check is this measure's threshold.
    fn is_threshold(self, name: &str, unit: &str) -> bool {
        unit == self.unit()
            && match self {
                Measure::P95 => name.contains("p95"),
                Measure::ErrorRate => name.contains("error"),
            }
    }

    /// The value of one window for one version, if it served requests.
    pub fn of(self, w: &crate::record::WindowRecord, served: Served) -> Option<f64> {
        let eps: Vec<_> = w
            .endpoints
            .iter()
            .filter(|e| e.served == Some(served) && e.requests > 0)
            .collect();
        if eps.is_empty() {
            return None;
        }
        let v = match self {
            Measure::P95 => eps.iter().map(|e| e.p95_ms).fold(0.0, f64::max),
            Measure::ErrorRate => {
                let requests: u64 = eps.iter().map(|e| e.requests).sum();
                let errors: u64 = eps.iter().map(|e| e.errors).sum();
                errors as f64 * 100.0 / requests as f64
            }
        };
        v.is_finite().then_some(v)
    }

    /// A value in this measure's unit, for a label.
    pub fn show(self, v: f64) -> String {
        format!("{} {}", label(v), self.unit())
    }
}

/// A "nice" step (1, 2 or 5 × 10ⁿ) that cuts `span` into about `count` parts.
pub fn nice_step(span: f64, count: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / count;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    step.max(f64::MIN_POSITIVE)
}

pub fn label(v: f64) -> String {
    if v.fract() == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 || (v * 10.0).fract().abs() < 1e-9 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The time axis of a stage still running: its elapsed time rounded up to a round length
/// (1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12 h, then days), so a point once drawn keeps its
/// place until the canary outgrows the axis — the live page then sends a new window as a
/// few new lines, not every point moved a little left.
pub fn axis_span(elapsed_ms: u64) -> u64 {
    const SECS: [u64; 16] = [
        10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
        172_800,
    ];
    SECS.iter()
        .map(|s| s * 1000)
        .find(|s| *s >= elapsed_ms)
        .unwrap_or_else(|| elapsed_ms.div_ceil(86_400_000) * 86_400_000)
}

/// The span of time one point stands for on an axis of `span` ms: a fixed width from the
/// axis alone, so a span keeps its bounds as windows arrive (windows shorter than it share a
/// point; longer ones have one each).
pub(super) fn bucket_width(span: u64) -> u64 {
    span.div_ceil(MAX_POINTS as u64).max(1)
}

/// One point per span of `width` ms from `t0`: at its latest window's end, its worst value.
fn buckets(pts: &[(u64, f64)], t0: u64, width: u64) -> Vec<(u64, f64)> {
    let mut out: Vec<(u64, u64, f64)> = Vec::with_capacity(MAX_POINTS);
    for &(t, v) in pts {
        // A window ending on a bound belongs to the span it ran in.
        let key = t.saturating_sub(t0).saturating_sub(1) / width;
        match out.last_mut() {
            Some((k, end, worst)) if *k == key => {
                *end = t;
                *worst = worst.max(v);
            }
            _ => out.push((key, t, v)),
        }
    }
    out.into_iter().map(|(_, t, v)| (t, v)).collect()
}

/// The chart of `measure` over a canary stage's windows; `None` when nothing was measured.
pub fn chart(s: &StageReport, measure: Measure) -> Option<Chart> {
    let first = s.windows.first()?;
    let t0 = first.start_ms;
    let moves = flag_moves(s);
    let last = s
        .windows
        .iter()
        .map(|w| w.start_ms.saturating_add(w.duration_ms))
        .chain(moves.iter().map(|m| m.0))
        .chain(s.controls.iter().map(|c| c.at_ms))
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    // A finished stage's axis ends with it; a running one's is a round length (`axis_span`).
    let t1 = if s.verdict.is_some() {
        last
    } else {
        t0 + axis_span(last - t0)
    };
    let thresholds: Vec<(String, f64)> = {
        let mut found: Vec<(String, f64)> = Vec::new();
        for c in s.decisions.iter().flat_map(|d| &d.checks) {
            if let Some(t) = c.threshold.filter(|t| t.is_finite())
                && measure.is_threshold(&c.name, &c.unit)
            {
                found.retain(|(n, _)| n != &c.name);
                found.push((c.name.clone(), t));
            }
        }
        found
    };
    let values = |served| -> Vec<(u64, f64)> {
        s.windows
            .iter()
            .filter_map(|w| {
                measure
                    .of(w, served)
                    .map(|v| (w.start_ms.saturating_add(w.duration_ms), v))
            })
            .collect()
    };
    let (canary, baseline) = (values(Served::Canary), values(Served::Baseline));
    let data_top = canary
        .iter()
        .chain(&baseline)
        .map(|p| p.1)
        .fold(0.0, f64::max);
    // A threshold far above the data would flatten the lines onto zero: the axis is the
    // data's, and the threshold is written above it.
    let reach = if data_top > 0.0 {
        data_top * THRESHOLD_REACH
    } else {
        f64::INFINITY
    };
    let top = thresholds
        .iter()
        .map(|t| t.1)
        .filter(|t| *t <= reach)
        .fold(data_top, f64::max);
    let step = nice_step(if top > 0.0 { top * 1.1 } else { 1.0 }, 4.0);
    let ymax = ((top * 1.1 / step).ceil() * step).max(step);
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let span = (t1 - t0) as f64;
    let x = |t: u64| LEFT + t.saturating_sub(t0) as f64 / span * plot_w;
    let y = |v: f64| TOP + plot_h - (v / ymax).clamp(0.0, 1.0) * plot_h;
    let width = bucket_width(t1 - t0);
    let points = |pts: &[(u64, f64)]| {
        buckets(pts, t0, width)
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            // One point a line, the attribute's end on a line of its own: the live page sends
            // a new window as the lines it adds.
            .fold(String::new(), |all, p| all + &p + "\n")
    };
    let secs = span / 1000.0;
    let x_step = nice_step(secs, 6.0);
    let x_ticks = (0..)
        .map(|i| f64::from(i) * x_step)
        .take_while(|s| *s <= secs + 1e-9)
        .take(20)
        .map(|s| Tick {
            at: LEFT + s / secs * plot_w,
            label: format!("{} s", label(s)),
        })
        .collect();
    let y_ticks = (0..)
        .map(|i| f64::from(i) * step)
        .take_while(|v| *v <= ymax + 1e-9)
        .take(20)
        .map(|v| Tick {
            at: y(v),
            label: label(v),
        })
        .collect();
    let flag_y = |p: u8| TOP + plot_h - f64::from(p) / 100.0 * plot_h;
    let flag_ticks = [0u8, 50, 100]
        .into_iter()
        .map(|p| Tick {
            at: flag_y(p),
            label: format!("{p}%"),
        })
        .collect();
    let flag = flag_line(s, &moves, t0, last, &x, &flag_y);
    let mut series = Vec::new();
    if !baseline.is_empty() {
        series.push(Series {
            class: "baseline",
            points: points(&baseline),
        });
    }
    if !canary.is_empty() {
        series.push(Series {
            class: "canary",
            points: points(&canary),
        });
    }
    Some(Chart {
        title: format!(
            "{} per window ({}), measured by {}",
            measure.title(),
            measure.unit(),
            s.measured_by.as_deref().unwrap_or("probe")
        ),
        unit: measure.unit(),
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right: WIDTH - RIGHT,
        top: TOP,
        bottom: TOP + plot_h,
        x_ticks,
        y_ticks,
        flag_ticks,
        series,
        thresholds: thresholds
            .into_iter()
            .map(|(name, v)| {
                let above = v > ymax;
                Threshold {
                    y: if above { TOP + 16.0 } else { y(v) },
                    label: if above {
                        format!("↑ {name} ≤ {}, above this scale", measure.show(v))
                    } else {
                        format!("{name} ≤ {}", measure.show(v))
                    },
                    above,
                }
            })
            .collect(),
        markers: markers(s, &x),
        hovers: hovers(s, measure, t0, t1, &x),
        flag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(100.0, 4.0), 50.0);
        assert_eq!(nice_step(2750.0, 4.0), 1000.0);
        assert_eq!(nice_step(1.1, 4.0), 0.5);
        assert_eq!(nice_step(0.0, 4.0), 1.0);
        assert_eq!(nice_step(f64::NAN, 4.0), 1.0);
    }

    #[test]
    fn a_long_line_is_at_most_max_points_and_keeps_its_peak() {
        let pts: Vec<(u64, f64)> = (0..10_000u64)
            .map(|i| (i * 100, if i == 5_000 { 900.0 } else { 5.0 }))
            .collect();
        let b = buckets(&pts, 0, bucket_width(1_000_000));
        assert!(b.len() <= MAX_POINTS, "{}", b.len());
        assert_eq!(b.iter().map(|p| p.1).fold(0.0, f64::max), 900.0);
        assert!(b.windows(2).all(|w| w[0].0 < w[1].0));
        let few = &pts[..100];
        assert_eq!(
            buckets(few, 0, bucket_width(10_000)),
            few.to_vec(),
            "a short line as it is"
        );
    }

    #[test]
    fn a_running_axis_is_round_and_a_point_keeps_its_span_as_windows_arrive() {
        assert_eq!(axis_span(0), 10_000);
        assert_eq!(axis_span(10_001), 20_000);
        assert_eq!(axis_span(4_000_000), 7_200_000);
        assert_eq!(axis_span(200_000_000), 259_200_000);
        // 400 windows of 10 s on a 2-hour axis: a window added later changes the last
        // point only.
        let pts: Vec<(u64, f64)> = (0..400u64).map(|i| (i * 10_000, (i % 7) as f64)).collect();
        let width = bucket_width(7_200_000);
        let before = buckets(&pts[..399], 0, width);
        let after = buckets(&pts, 0, width);
        let kept = before
            .iter()
            .zip(&after)
            .take_while(|(a, b)| a == b)
            .count();
        assert!(kept >= before.len() - 1, "{kept} of {}", before.len());
        assert!(after.len() <= MAX_POINTS);
    }

    #[test]
    fn labels_drop_needless_decimals() {
        assert_eq!(label(200.0), "200");
        assert_eq!(label(0.5), "0.5");
        assert_eq!(label(0.25), "0.25");
    }
}
