//! Serializable forms of what plugins return and probes measure, as they go into the journal
//! and the reports.

use serde::{Deserialize, Serialize};

use launch_runtime::types::{self, Check, Verdict};
use launch_targets::metrics::{Reading, Source};
use launch_targets::probe::Served;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Passed,
    GateFailed,
    RolledBack,
    /// The operator stopped the run at a prompt.
    Aborted,
    /// The host itself failed mid-stage; a flag it had moved was restored to its safe value.
    HostFailed,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::GateFailed => "gate-failed",
            Outcome::RolledBack => "rolled-back",
            Outcome::Aborted => "aborted",
            Outcome::HostFailed => "host-failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "reason", rename_all = "kebab-case")]
pub enum VerdictRecord {
    Pass,
    Fail(String),
    Inconclusive(String),
    NoData(String),
}

impl VerdictRecord {
    pub fn word(&self) -> &'static str {
        match self {
            VerdictRecord::Pass => "PASS",
            VerdictRecord::Fail(_) => "FAIL",
            VerdictRecord::Inconclusive(_) => "INCONCLUSIVE",
            VerdictRecord::NoData(_) => "NO DATA",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            VerdictRecord::Pass => "",
            VerdictRecord::Fail(r) | VerdictRecord::Inconclusive(r) | VerdictRecord::NoData(r) => r,
        }
    }

    pub fn is_pass(&self) -> bool {
        matches!(self, VerdictRecord::Pass)
    }
}

impl From<&Verdict> for VerdictRecord {
    fn from(v: &Verdict) -> Self {
        match v {
            Verdict::Pass => VerdictRecord::Pass,
            Verdict::Fail(r) => VerdictRecord::Fail(r.clone()),
            Verdict::Inconclusive(r) => VerdictRecord::Inconclusive(r.clone()),
            Verdict::NoData(r) => VerdictRecord::NoData(r.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    pub name: String,
    pub verdict: VerdictRecord,
    pub observed: Option<f64>,
    pub threshold: Option<f64>,
    pub unit: String,
    pub detail: String,
    /// Set by the host for a UAT item nobody tested: whatever the policy's verdict, it is
    /// shown as skipped, never as a pass.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

impl CheckRecord {
    /// The word reports show: SKIPPED for an untested item, else the verdict's.
    pub fn word(&self) -> &'static str {
        if self.skipped {
            "SKIPPED"
        } else {
            self.verdict.word()
        }
    }
}

impl From<&Check> for CheckRecord {
    fn from(c: &Check) -> Self {
        CheckRecord {
            name: c.name.clone(),
            verdict: (&c.verdict).into(),
            observed: c.observed,
            threshold: c.threshold,
            unit: c.unit.clone(),
            detail: c.detail.clone(),
            skipped: false,
        }
    }
}

/// Whether a policy's checks say it had no data to judge: a no-data check and no failed one
/// (a hold for lack of traffic, say).
pub fn is_no_data(checks: &[CheckRecord]) -> bool {
    checks
        .iter()
        .any(|c| matches!(c.verdict, VerdictRecord::NoData(_)))
        && !checks
            .iter()
            .any(|c| matches!(c.verdict, VerdictRecord::Fail(_)))
}

pub fn checks(cs: &[Check]) -> Vec<CheckRecord> {
    cs.iter().map(CheckRecord::from).collect()
}

pub use launch_targets::metrics::EndpointRecord;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    pub start_ms: u64,
    pub duration_ms: u64,
    /// Flag percentage while the window was measured.
    pub percent: u8,
    /// Written short (`journal::rows`): a canary writes a window every interval.
    #[serde(
        serialize_with = "crate::journal::rows::write",
        deserialize_with = "crate::journal::rows::read"
    )]
    pub endpoints: Vec<EndpointRecord>,
    /// What measured it; the probe alone when absent (runs before sources were named).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
}

impl WindowRecord {
    /// A source's reading, with the flag percentage it was measured at, its latencies to the
    /// microsecond: the record is what the policy is shown, so a replay sees the same numbers.
    pub fn from_reading(r: Reading, percent: u8) -> Self {
        WindowRecord {
            start_ms: r.start_ms,
            duration_ms: r.duration_ms,
            percent,
            endpoints: r
                .endpoints
                .into_iter()
                .map(EndpointRecord::rounded)
                .collect(),
            // The probe alone is the default: not written a thousand times over.
            sources: if r.sources == [Source::Probe] {
                Vec::new()
            } else {
                r.sources
            },
        }
    }

    /// The sources that measured the window, as the report names them.
    pub fn source_words(&self) -> String {
        if self.sources.is_empty() {
            return Source::Probe.word().into();
        }
        let words: Vec<&str> = self.sources.iter().map(|s| s.word()).collect();
        words.join("+")
    }

    /// The window as a policy sees it. A record with a measure missing is left out: a policy
    /// is never shown a number no source gave (the window is no data for that version).
    pub fn wit(&self, served: Option<Served>) -> Vec<types::EndpointWindow> {
        self.endpoints
            .iter()
            .filter(|e| e.served == served && e.is_complete())
            .map(|e| types::EndpointWindow {
                endpoint: e.endpoint.clone(),
                requests: e.requests,
                errors: e.errors,
                conflicts: e.conflicts,
                p50_ms: e.p50_ms,
                p95_ms: e.p95_ms,
                p99_ms: e.p99_ms,
                avg_ms: e.avg_ms,
                max_ms: e.max_ms,
                latencies_ms: self.latencies(e),
            })
            .collect()
    }

    /// The raw latencies of `e`: its own, or for both versions together (which stores none)
    /// the canary's and the baseline's of the same endpoint, at most `RAW_SAMPLES`.
    pub fn latencies(&self, e: &EndpointRecord) -> Vec<f64> {
        if e.served.is_some() || !e.latencies_ms.is_empty() {
            return e.latencies_ms.clone();
        }
        self.endpoints
            .iter()
            .filter(|v| v.served.is_some() && v.endpoint == e.endpoint)
            .flat_map(|v| v.latencies_ms.iter().copied())
            .take(launch_targets::probe::RAW_SAMPLES)
            .collect()
    }

    pub fn metric_window(&self) -> types::MetricWindow {
        types::MetricWindow {
            start_ms: self.start_ms,
            duration_ms: self.duration_ms,
            endpoints: self.wit(None),
        }
    }

    pub fn canary_window(&self) -> types::CanaryWindow {
        types::CanaryWindow {
            start_ms: self.start_ms,
            duration_ms: self.duration_ms,
            canary: self.wit(Some(Served::Canary)),
            baseline: self.wit(Some(Served::Baseline)),
        }
    }

    /// All endpoints, both versions: (requests, errors, worst p95).
    pub fn totals(&self, served: Option<Served>) -> (u64, u64, f64) {
        self.endpoints
            .iter()
            .filter(|e| e.served == served)
            .fold((0, 0, 0.0), |(r, e, p), x| {
                (r + x.requests, e + x.errors, p.max(x.p95_ms))
            })
    }
}
