//! What Prometheus is asked: one PromQL template per measure, with `{endpoint}`, `{version}`
//! and `{window}` placeholders — the defaults read the `http_server_request_duration_seconds`
//! histogram as OpenTelemetry's HTTP conventions name it — and what one instant query can
//! answer: a value, no series, or NaN.

use serde::Deserialize;

use super::reading::Measure;

/// One PromQL template per measure.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Queries {
    /// Requests in the window.
    pub requests: String,
    /// Failed requests (5xx) in the window.
    pub errors: String,
    /// 409 answers (optimistic-concurrency conflicts) in the window.
    pub conflicts: String,
    pub p50_ms: String,
    pub p95_ms: String,
    pub p99_ms: String,
    pub avg_ms: String,
    pub max_ms: String,
}

const SELECTOR: &str = r#"http_route="{endpoint}",version="{version}""#;
const METRIC: &str = "http_server_request_duration_seconds";

fn count(extra: &str) -> String {
    format!("sum(increase({METRIC}_count{{{SELECTOR}{extra}}}[{{window}}]))")
}

/// A count of some answers that is 0, not missing, when none of them happened: a series for a
/// status code exists only once one was answered, so without the `or` a healthy version would
/// have no error count at all. The zero is proven by the version's requests being there.
fn count_of_some(extra: &str) -> String {
    format!("{} or 0 * {}", count(extra), count(""))
}

fn quantile(q: &str) -> String {
    format!(
        "1000 * histogram_quantile({q}, sum by (le) (rate({METRIC}_bucket{{{SELECTOR}}}[{{window}}])))"
    )
}

impl Default for Queries {
    fn default() -> Self {
        Queries {
            requests: count(""),
            errors: count_of_some(r#",http_response_status_code=~"5..""#),
            conflicts: count_of_some(r#",http_response_status_code="409""#),
            p50_ms: quantile("0.5"),
            p95_ms: quantile("0.95"),
            p99_ms: quantile("0.99"),
            avg_ms: format!(
                "1000 * sum(rate({METRIC}_sum{{{SELECTOR}}}[{{window}}])) / sum(rate({METRIC}_count{{{SELECTOR}}}[{{window}}]))"
            ),
            // The upper bound of the highest bucket with an observation: the maximum at the
            // histogram's resolution.
            max_ms: quantile("1"),
        }
    }
}

impl Queries {
    /// Every measure's template, in `Measure` order.
    pub fn all(&self) -> [(Measure, &str); 8] {
        [
            (Measure::Requests, &self.requests),
            (Measure::Errors, &self.errors),
            (Measure::Conflicts, &self.conflicts),
            (Measure::P50Ms, &self.p50_ms),
            (Measure::P95Ms, &self.p95_ms),
            (Measure::P99Ms, &self.p99_ms),
            (Measure::AvgMs, &self.avg_ms),
            (Measure::MaxMs, &self.max_ms),
        ]
    }
}

/// What one instant query answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answered {
    Value(f64),
    /// No series matched: a typo, a target not scraped, or nothing ever counted.
    NoSeries,
    /// Series matched but the value is not a number (a quantile of no requests).
    NotANumber,
}

impl Answered {
    pub(super) fn value(self) -> Option<f64> {
        match self {
            Answered::Value(v) => Some(v),
            _ => None,
        }
    }
}
