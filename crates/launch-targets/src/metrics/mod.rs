//! Metrics sources: where the windows a canary policy and an SLO gate judge come from. The
//! probe measures synthetic traffic the host sends itself; Prometheus reports real users'
//! traffic; both at once are combined per window. Either way a window has the same shape —
//! per endpoint and served version: requests, errors, conflicts, percentiles, average — so no
//! policy changes with the source.

mod prometheus;
mod queries;
mod reading;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use prometheus::{Prometheus, PrometheusConfig, Queries, QueryError};
pub use reading::{EndpointRecord, Measure, Reading, Source, gaps};

use crate::probe::{Endpoint, Probe};

/// What to measure with: the probe's endpoints and rate, Prometheus, or both.
#[derive(Clone)]
pub struct Sources {
    /// The probe's endpoints and request rate, when the probe is a source.
    pub probe: Option<(Vec<Endpoint>, u32)>,
    pub prometheus: Option<Arc<Prometheus>>,
}

/// Windows as they close, from every configured source. Stops when dropped.
pub struct Signals {
    probe: Option<Probe>,
    prometheus: Option<(Arc<Prometheus>, tokio::time::Interval)>,
    interval: Duration,
    keep_raw: bool,
}

impl Signals {
    /// Starts measuring: one window every `interval` (a probe request times out after
    /// `timeout`). `keep_raw` keeps the probe's raw latencies for statistical policies.
    pub fn start(
        sources: &Sources,
        client: reqwest::Client,
        interval: Duration,
        timeout: Duration,
        keep_raw: bool,
    ) -> Signals {
        let probe = sources.probe.as_ref().map(|(endpoints, rate)| {
            Probe::start(client, endpoints.clone(), *rate, interval, timeout)
        });
        // With the probe, its windows set the pace; alone, a timer does.
        let prometheus = sources.prometheus.clone().map(|p| {
            let mut tick = tokio::time::interval_at(
                (Instant::now() + interval).into(),
                interval.max(Duration::from_millis(1)),
            );
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            (p, tick)
        });
        Signals {
            probe,
            prometheus,
            interval,
            keep_raw,
        }
    }

    /// The sources measuring, for the report.
    pub fn sources(&self) -> Vec<Source> {
        let mut s = Vec::new();
        if self.probe.is_some() {
            s.push(Source::Probe);
        }
        if self.prometheus.is_some() {
            s.push(Source::Prometheus);
        }
        s
    }

    /// The next closed window; `None` when no source is left (the probe stopped). A failed or
    /// unanswered Prometheus query is an error: a window no one could read is no data, never
    /// a healthy one.
    pub async fn next(&mut self) -> Option<Result<Reading, QueryError>> {
        let probed = match &mut self.probe {
            Some(probe) => Some(Reading::from_probe(
                &probe.next_window().await?,
                self.keep_raw,
            )),
            None => None,
        };
        let Some((prometheus, tick)) = &mut self.prometheus else {
            return probed.map(Ok);
        };
        if probed.is_none() {
            tick.tick().await;
        }
        let ended = SystemTime::now();
        // The window Prometheus' rates cover: the interval, or two scrapes if that is longer.
        let range = prometheus.range(self.interval);
        // Bounded by the interval: a hung server is a window without data, not a stall.
        let deadline = self.interval.max(Duration::from_millis(100));
        let observed = match prometheus.measure(self.interval, deadline).await {
            Ok(endpoints) => Reading {
                start_ms: millis_since_epoch(ended).saturating_sub(millis(range)),
                duration_ms: millis(range),
                endpoints,
                sources: vec![Source::Prometheus],
            },
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(match probed {
            Some(p) => p.combine(observed),
            None => observed,
        }))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn millis_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, millis)
}
