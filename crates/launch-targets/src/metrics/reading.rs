//! One window's numbers per endpoint and served version, whichever source measured them, and
//! how two sources' numbers for the same window combine.

use serde::{Deserialize, Serialize};

use crate::probe::{Served, Window};

/// Where a window's numbers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The host's own constant-rate probe (synthetic traffic).
    Probe,
    /// The metrics system: real users' traffic, as Prometheus saw it.
    Prometheus,
}

impl Source {
    pub fn word(self) -> &'static str {
        match self {
            Source::Probe => "probe",
            Source::Prometheus => "prometheus",
        }
    }
}

/// One measure of an endpoint's window, named as a runbook's `[metrics.queries]` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Measure {
    Requests,
    Errors,
    Conflicts,
    P50Ms,
    P95Ms,
    P99Ms,
    AvgMs,
    MaxMs,
}

impl Measure {
    pub const ALL: [Measure; 8] = [
        Measure::Requests,
        Measure::Errors,
        Measure::Conflicts,
        Measure::P50Ms,
        Measure::P95Ms,
        Measure::P99Ms,
        Measure::AvgMs,
        Measure::MaxMs,
    ];

    pub fn word(self) -> &'static str {
        match self {
            Measure::Requests => "requests",
            Measure::Errors => "errors",
            Measure::Conflicts => "conflicts",
            Measure::P50Ms => "p50-ms",
            Measure::P95Ms => "p95-ms",
            Measure::P99Ms => "p99-ms",
            Measure::AvgMs => "avg-ms",
            Measure::MaxMs => "max-ms",
        }
    }

    /// A latency, as opposed to a count.
    pub fn is_latency(self) -> bool {
        !matches!(
            self,
            Measure::Requests | Measure::Errors | Measure::Conflicts
        )
    }
}

/// One endpoint's numbers in a window, for one served version or (`served: None`) for both.
///
/// A measure the source could not answer (an empty answer, NaN) is listed in `missing`: it is
/// unknown, never zero. Its latency field holds NaN (`null` in JSON) and its count 0, and a
/// record with anything missing is never shown to a policy (`WindowRecord::wit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub endpoint: String,
    /// Both versions together when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<Served>,
    pub requests: u64,
    // Zero counts are left out of the journal: a long canary writes one row per endpoint and
    // version every window, and most windows have neither errors nor conflicts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub conflicts: u64,
    #[serde(deserialize_with = "nan_if_null")]
    pub p50_ms: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub p95_ms: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub p99_ms: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub avg_ms: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub max_ms: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latencies_ms: Vec<f64>,
    /// The measures the source could not answer, in `Measure` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<Measure>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A latency to the microsecond, the probe's resolution: finer digits from a source's
/// arithmetic (an average, a Prometheus quantile) are noise that only lengthens the journal.
fn to_microsecond(ms: f64) -> f64 {
    if ms.is_finite() {
        (ms * 1000.0).round() / 1000.0
    } else {
        ms
    }
}

/// JSON has no NaN: serde_json writes it as `null`, which reads back as NaN (a missing measure).
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl EndpointRecord {
    pub fn empty(endpoint: &str, served: Option<Served>) -> EndpointRecord {
        EndpointRecord {
            endpoint: endpoint.into(),
            served,
            requests: 0,
            errors: 0,
            conflicts: 0,
            p50_ms: 0.0,
            p95_ms: 0.0,
            p99_ms: 0.0,
            avg_ms: 0.0,
            max_ms: 0.0,
            latencies_ms: Vec::new(),
            missing: Vec::new(),
        }
    }

    /// Every latency to the microsecond: what is journaled and what a policy is shown.
    pub fn rounded(mut self) -> Self {
        for v in [
            &mut self.p50_ms,
            &mut self.p95_ms,
            &mut self.p99_ms,
            &mut self.avg_ms,
            &mut self.max_ms,
        ] {
            *v = to_microsecond(*v);
        }
        for v in &mut self.latencies_ms {
            *v = to_microsecond(*v);
        }
        self
    }

    /// Every measure is known.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }

    pub fn is_missing(&self, m: Measure) -> bool {
        self.missing.contains(&m)
    }

    /// Marks `m` unknown: NaN for a latency, 0 for a count (both flagged by `missing`).
    pub fn set_missing(&mut self, m: Measure) {
        if !self.missing.contains(&m) {
            self.missing.push(m);
            self.missing.sort();
        }
        match m {
            Measure::Requests => self.requests = 0,
            Measure::Errors => self.errors = 0,
            Measure::Conflicts => self.conflicts = 0,
            latency => *self.latency_mut(latency) = f64::NAN,
        }
    }

    fn latency_mut(&mut self, m: Measure) -> &mut f64 {
        match m {
            Measure::P50Ms => &mut self.p50_ms,
            Measure::P95Ms => &mut self.p95_ms,
            Measure::P99Ms => &mut self.p99_ms,
            Measure::AvgMs => &mut self.avg_ms,
            _ => &mut self.max_ms,
        }
    }

    fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }

    /// Both versions' numbers together: counts add up, the average is weighted by requests,
    /// and each percentile and the maximum is the higher of the two — a bound, since
    /// percentiles of two populations cannot be combined exactly without their histograms.
    /// A measure missing on either side is missing together.
    pub fn together(a: &EndpointRecord, b: &EndpointRecord) -> EndpointRecord {
        let requests = a.requests.saturating_add(b.requests);
        let avg_ms = if requests == 0 {
            0.0
        } else {
            (a.avg_ms * a.requests as f64 + b.avg_ms * b.requests as f64) / requests as f64
        };
        let mut out = EndpointRecord {
            endpoint: a.endpoint.clone(),
            served: None,
            requests,
            errors: a.errors.saturating_add(b.errors),
            conflicts: a.conflicts.saturating_add(b.conflicts),
            p50_ms: a.p50_ms.max(b.p50_ms),
            p95_ms: a.p95_ms.max(b.p95_ms),
            p99_ms: a.p99_ms.max(b.p99_ms),
            avg_ms,
            max_ms: a.max_ms.max(b.max_ms),
            latencies_ms: Vec::new(),
            missing: Vec::new(),
        };
        for m in a.missing.iter().chain(&b.missing) {
            out.set_missing(*m);
        }
        out
    }

    /// The worse of two sources' readings of the same traffic (the probe's requests are in
    /// the service's metrics too, so adding them would count them twice): the counts of the
    /// source with the higher error rate (the more requests on a tie), every latency the
    /// higher, the probe's raw latencies. A breach either source sees stays a breach. A
    /// measure one source could not answer is the other's; missing from both, it is missing.
    pub fn worse(a: &EndpointRecord, b: &EndpointRecord) -> EndpointRecord {
        let counts_known = |r: &EndpointRecord| !r.is_missing(Measure::Errors);
        let a_counts = match (counts_known(a), counts_known(b)) {
            (true, false) => true,
            (false, true) => false,
            _ => (a.error_rate(), a.requests) >= (b.error_rate(), b.requests),
        };
        let counts = if a_counts { a } else { b };
        let latencies_ms = if a.latencies_ms.is_empty() {
            b.latencies_ms.clone()
        } else {
            a.latencies_ms.clone()
        };
        let higher = |m: Measure, x: f64, y: f64| match (a.is_missing(m), b.is_missing(m)) {
            (false, false) => x.max(y),
            (true, false) => y,
            (false, true) => x,
            (true, true) => f64::NAN,
        };
        let mut out = EndpointRecord {
            endpoint: a.endpoint.clone(),
            served: a.served,
            requests: counts.requests,
            errors: counts.errors,
            conflicts: if a.is_missing(Measure::Conflicts) {
                b.conflicts
            } else if b.is_missing(Measure::Conflicts) {
                a.conflicts
            } else {
                a.conflicts.max(b.conflicts)
            },
            p50_ms: higher(Measure::P50Ms, a.p50_ms, b.p50_ms),
            p95_ms: higher(Measure::P95Ms, a.p95_ms, b.p95_ms),
            p99_ms: higher(Measure::P99Ms, a.p99_ms, b.p99_ms),
            avg_ms: higher(Measure::AvgMs, a.avg_ms, b.avg_ms),
            max_ms: higher(Measure::MaxMs, a.max_ms, b.max_ms),
            latencies_ms,
            missing: Vec::new(),
        };
        for m in &a.missing {
            if b.is_missing(*m) {
                out.set_missing(*m);
            }
        }
        out
    }
}

/// What a window's versions lack: one line per version's endpoint with a measure no source
/// could answer, e.g. "p95-ms of the canary on `board` (87 requests)". Empty when every measure
/// is known.
pub fn gaps(endpoints: &[EndpointRecord]) -> Vec<String> {
    endpoints
        .iter()
        .filter(|e| !e.is_complete())
        .filter_map(|e| {
            let who = match e.served? {
                Served::Canary => "the canary",
                Served::Baseline => "the baseline",
            };
            let measures: Vec<&str> = e.missing.iter().map(|m| m.word()).collect();
            Some(format!(
                "{} of {who} on `{}` ({} requests)",
                measures.join(", "),
                e.endpoint,
                e.requests
            ))
        })
        .collect()
}

/// Everything measured in one window, by one or more sources.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub start_ms: u64,
    pub duration_ms: u64,
    /// Per endpoint: both versions together, then the canary, then the baseline.
    pub endpoints: Vec<EndpointRecord>,
    pub sources: Vec<Source>,
}

impl Reading {
    /// The probe's window: per endpoint, both versions together, then canary and baseline
    /// separately. Raw latencies, when kept, are stored once per version.
    pub fn from_probe(w: &Window, keep_raw: bool) -> Reading {
        let mut endpoints = Vec::new();
        for served in [None, Some(Served::Canary), Some(Served::Baseline)] {
            for (name, s) in w.endpoints(served) {
                endpoints.push(EndpointRecord {
                    endpoint: name,
                    served,
                    requests: s.requests,
                    errors: s.errors,
                    conflicts: s.conflicts,
                    p50_ms: s.quantile_ms(0.5),
                    p95_ms: s.quantile_ms(0.95),
                    p99_ms: s.quantile_ms(0.99),
                    avg_ms: s.mean_ms(),
                    max_ms: s.max_ms(),
                    latencies_ms: if keep_raw && served.is_some() {
                        s.raw_ms.clone()
                    } else {
                        Vec::new()
                    },
                    missing: Vec::new(),
                });
            }
        }
        Reading {
            start_ms: w.start_ms(),
            duration_ms: u64::try_from(w.duration.as_millis()).unwrap_or(u64::MAX),
            endpoints,
            sources: vec![Source::Probe],
        }
    }

    /// Two sources' readings of one window: per endpoint and version, the worse of the two
    /// (`EndpointRecord::worse`); an endpoint only one source measured is taken as it is.
    pub fn combine(self, other: Reading) -> Reading {
        let mut endpoints = self.endpoints;
        for theirs in other.endpoints {
            match endpoints
                .iter_mut()
                .find(|e| e.endpoint == theirs.endpoint && e.served == theirs.served)
            {
                Some(ours) => *ours = EndpointRecord::worse(ours, &theirs),
                None => endpoints.push(theirs),
            }
        }
        let mut sources = self.sources;
        sources.extend(other.sources);
        sources.sort();
        sources.dedup();
        Reading {
            start_ms: self.start_ms.min(other.start_ms),
            duration_ms: self.duration_ms.max(other.duration_ms),
            endpoints,
            sources,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(requests: u64, errors: u64, p95: f64) -> EndpointRecord {
        EndpointRecord {
            requests,
            errors,
            p95_ms: p95,
            avg_ms: p95 / 2.0,
            ..EndpointRecord::empty("board", Some(Served::Canary))
        }
    }

    #[test]
    fn the_worse_reading_keeps_a_breach_either_source_sees() {
        let probe = rec(100, 0, 3000.0);
        let prom = rec(1000, 50, 40.0);
        let w = EndpointRecord::worse(&probe, &prom);
        assert_eq!(
            (w.requests, w.errors),
            (1000, 50),
            "the higher error rate's counts"
        );
        assert_eq!(w.p95_ms, 3000.0, "the higher latency");
        assert_eq!(EndpointRecord::worse(&prom, &probe), w);
    }

    #[test]
    fn both_versions_together_add_counts_and_weigh_the_average() {
        let t = EndpointRecord::together(&rec(10, 1, 100.0), &rec(30, 0, 20.0));
        assert_eq!((t.requests, t.errors, t.served), (40, 1, None));
        assert!((t.avg_ms - (50.0 * 10.0 + 10.0 * 30.0) / 40.0).abs() < 1e-9);
        assert_eq!(t.p95_ms, 100.0);
    }

    #[test]
    fn a_journaled_row_leaves_out_zeros_and_noise_and_reads_back_the_same() {
        let mut r = EndpointRecord {
            avg_ms: 1.7794285714285716,
            p50_ms: 1.735,
            latencies_ms: vec![1.4204999, 2.0],
            ..EndpointRecord::empty("board", None)
        };
        r.requests = 7;
        let r = r.rounded();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"endpoint":"board","requests":7,"p50_ms":1.735,"p95_ms":0.0,"p99_ms":0.0,"avg_ms":1.779,"max_ms":0.0,"latencies_ms":[1.42,2.0]}"#
        );
        let back: EndpointRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        // A missing latency stays missing (NaN, `null`), never rounded into a number.
        let mut gap = EndpointRecord::empty("board", Some(Served::Canary));
        gap.set_missing(Measure::P95Ms);
        let gap = gap.rounded();
        assert!(gap.p95_ms.is_nan());
        let json = serde_json::to_string(&gap).unwrap();
        assert!(json.contains(r#""served":"canary""#) && json.contains(r#""p95_ms":null"#));
    }
}
