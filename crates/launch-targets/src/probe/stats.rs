//! Window statistics: an HDR histogram per endpoint and serving version (exact percentiles at
//! 3 significant digits without keeping every sample), error and conflict counts, and a bounded
//! set of raw samples.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use super::{RAW_SAMPLES, Served};

#[derive(Debug, Clone)]
pub struct EndpointStats {
    pub requests: u64,
    /// Transport failures and 5xx answers.
    pub errors: u64,
    /// 409 answers (optimistic-concurrency conflicts); not errors.
    pub conflicts: u64,
    /// Latency in microseconds.
    pub histogram: Histogram<u64>,
    pub raw_ms: Vec<f64>,
}

impl EndpointStats {
    pub fn empty() -> Self {
        Self::new()
    }

    fn new() -> Self {
        EndpointStats {
            requests: 0,
            errors: 0,
            conflicts: 0,
            histogram: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds"),
            raw_ms: Vec::new(),
        }
    }

    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.histogram.is_empty() {
            0.0
        } else {
            self.histogram.value_at_quantile(q) as f64 / 1000.0
        }
    }

    pub fn mean_ms(&self) -> f64 {
        if self.histogram.is_empty() {
            0.0
        } else {
            self.histogram.mean() / 1000.0
        }
    }

    pub fn max_ms(&self) -> f64 {
        self.histogram.max() as f64 / 1000.0
    }

    pub fn merge(&mut self, other: &EndpointStats) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.conflicts += other.conflicts;
        let _ = self.histogram.add(&other.histogram);
        let room = RAW_SAMPLES.saturating_sub(self.raw_ms.len());
        self.raw_ms.extend(other.raw_ms.iter().take(room));
    }
}

/// Everything measured in one window.
#[derive(Debug, Clone)]
pub struct Window {
    pub start: SystemTime,
    pub duration: Duration,
    names: Vec<String>,
    /// (endpoint index, version) → stats.
    stats: BTreeMap<(usize, Served), EndpointStats>,
}

impl Window {
    pub(super) fn new(start: SystemTime, names: Vec<String>) -> Self {
        Window {
            start,
            duration: Duration::ZERO,
            names,
            stats: BTreeMap::new(),
        }
    }

    pub(super) fn record(
        &mut self,
        endpoint: usize,
        served: Served,
        latency: Duration,
        status: Option<u16>,
    ) {
        let s = self
            .stats
            .entry((endpoint, served))
            .or_insert_with(EndpointStats::new);
        s.requests += 1;
        match status {
            None => s.errors += 1,
            Some(code) if code >= 500 => s.errors += 1,
            Some(409) => s.conflicts += 1,
            Some(_) => {}
        }
        if status.is_some() {
            let us = (latency.as_micros() as u64).max(1);
            let _ = s.histogram.record(us);
            if s.raw_ms.len() < RAW_SAMPLES {
                s.raw_ms.push(us as f64 / 1000.0);
            }
        }
    }

    pub(super) fn finish(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    pub fn start_ms(&self) -> u64 {
        self.start
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// Stats per endpoint name for one version, or for both together when `served` is None.
    pub fn endpoints(&self, served: Option<Served>) -> Vec<(String, EndpointStats)> {
        let mut out: BTreeMap<usize, EndpointStats> = BTreeMap::new();
        for ((idx, s), stats) in &self.stats {
            if served.is_none_or(|want| want == *s) {
                out.entry(*idx)
                    .or_insert_with(EndpointStats::new)
                    .merge(stats);
            }
        }
        out.into_iter()
            .map(|(i, s)| (self.names[i].clone(), s))
            .collect()
    }

    pub fn total_requests(&self) -> u64 {
        self.stats.values().map(|s| s.requests).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_splits_versions_and_counts_outcomes() {
        let mut w = Window::new(SystemTime::now(), vec!["board".into()]);
        w.record(0, Served::Baseline, Duration::from_millis(100), Some(200));
        w.record(0, Served::Canary, Duration::from_millis(900), Some(500));
        w.record(0, Served::Canary, Duration::from_millis(300), Some(409));
        w.record(0, Served::Baseline, Duration::from_millis(5), None);
        let canary = w.endpoints(Some(Served::Canary));
        assert_eq!(canary[0].1.requests, 2);
        assert_eq!(canary[0].1.errors, 1);
        assert_eq!(canary[0].1.conflicts, 1);
        let all = w.endpoints(None);
        assert_eq!(all[0].1.requests, 4);
        assert_eq!(all[0].1.errors, 2);
        assert!((all[0].1.max_ms() - 900.0).abs() < 1.0);
    }
}
