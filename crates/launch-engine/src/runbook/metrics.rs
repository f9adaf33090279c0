//! An environment's metrics sources (`[environments.NAME.metrics]`): the probe (the default),
//! Prometheus, or both, and the PromQL templates Prometheus is asked with.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::limits;
use launch_targets::metrics::{PrometheusConfig, Queries, Source};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Metrics {
    /// `"probe"` [default], `"prometheus"`, or both: `["probe", "prometheus"]`.
    #[serde(default, deserialize_with = "sources")]
    pub source: Option<Spanned<Vec<Source>>>,
    /// The Prometheus server's base URL.
    pub prometheus: Option<Spanned<String>>,
    /// PromQL templates per measure; each defaults to the
    /// `http_server_request_duration_seconds` histogram's.
    #[serde(default)]
    pub queries: Queries,
    /// Endpoint name (as policies see it) → its `{endpoint}` label value.
    #[serde(default = "default_endpoints")]
    pub endpoints: BTreeMap<String, String>,
    /// The `{version}` label values of the baseline and of the canary.
    #[serde(default = "v1")]
    pub baseline: String,
    #[serde(default = "v2")]
    pub canary: String,
    /// How often Prometheus scrapes the target; a rate is taken over two scrapes at least.
    #[serde(default = "default_scrape", with = "limits::interval")]
    pub scrape_interval: Duration,
    /// How long a run waits, before its first effect, for the queries to answer.
    #[serde(default = "default_ready", with = "limits::duration")]
    pub ready_within: Duration,
}

fn v1() -> String {
    "v1".into()
}
fn v2() -> String {
    "v2".into()
}
fn default_scrape() -> Duration {
    Duration::from_secs(15)
}
fn default_ready() -> Duration {
    Duration::from_secs(30)
}

/// The StatusBoardV2 API routes, as its server labels them.
fn default_endpoints() -> BTreeMap<String, String> {
    [
        ("board", "/api/admin/appointments/board"),
        ("drawer", "/api/appointments/{id}"),
        ("stats", "/api/admin/dashboard/stats"),
    ]
    .into_iter()
    .map(|(n, r)| (n.to_string(), r.to_string()))
    .collect()
}

/// One source or a list of them, never empty.
fn sources<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Spanned<Vec<Source>>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Source),
        Many(Vec<Source>),
    }
    let spanned = Spanned::<OneOrMany>::deserialize(d).map_err(|_| {
        serde::de::Error::custom(
            "source: write \"probe\", \"prometheus\" or [\"probe\", \"prometheus\"]",
        )
    })?;
    let span = spanned.span();
    let mut list = match spanned.into_inner() {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    };
    list.sort();
    list.dedup();
    if list.is_empty() {
        return Err(serde::de::Error::custom(
            "source: name at least one of \"probe\" and \"prometheus\"",
        ));
    }
    Ok(Some(Spanned::new(span, list)))
}

impl Metrics {
    /// The sources in use: the probe unless the runbook says otherwise.
    pub fn sources(spec: Option<&Metrics>) -> Vec<Source> {
        spec.and_then(|m| m.source.as_ref())
            .map_or_else(|| vec![Source::Probe], |s| s.get_ref().clone())
    }

    pub fn uses(spec: Option<&Metrics>, source: Source) -> bool {
        Self::sources(spec).contains(&source)
    }

    /// What the Prometheus source needs, when it is one.
    pub fn prometheus_config(&self) -> Option<PrometheusConfig> {
        if !Self::uses(Some(self), Source::Prometheus) {
            return None;
        }
        Some(PrometheusConfig {
            url: self.prometheus.as_ref()?.get_ref().clone(),
            queries: self.queries.clone(),
            endpoints: self.endpoints.clone().into_iter().collect(),
            baseline: self.baseline.clone(),
            canary: self.canary.clone(),
            scrape_interval: self.scrape_interval,
        })
    }
}
