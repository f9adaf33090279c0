//! Prometheus as a metrics source: PromQL instant queries, one per measure, endpoint and
//! served version, evaluated at the end of every check interval. A query is a template with
//! `{endpoint}`, `{version}` and `{window}` placeholders; the defaults read the
//! `http_server_request_duration_seconds` histogram as OpenTelemetry's HTTP conventions name
//! it. Latency queries answer in milliseconds.

use std::time::Duration;

use futures::future::try_join_all;
use serde::Deserialize;

use super::reading::EndpointRecord;
use crate::probe::Served;

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

fn quantile(q: &str) -> String {
    format!(
        "1000 * histogram_quantile({q}, sum by (le) (rate({METRIC}_bucket{{{SELECTOR}}}[{{window}}])))"
    )
}

impl Default for Queries {
    fn default() -> Self {
        Queries {
            requests: count(""),
            errors: count(r#",http_response_status_code=~"5..""#),
            conflicts: count(r#",http_response_status_code="409""#),
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
    fn all(&self) -> [(&'static str, &str); 8] {
        [
            ("requests", &self.requests),
            ("errors", &self.errors),
            ("conflicts", &self.conflicts),
            ("p50-ms", &self.p50_ms),
            ("p95-ms", &self.p95_ms),
            ("p99-ms", &self.p99_ms),
            ("avg-ms", &self.avg_ms),
            ("max-ms", &self.max_ms),
        ]
    }
}

/// Where and what to ask.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// The server's base URL, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    pub queries: Queries,
    /// (name a policy sees, the `{endpoint}` label value), e.g. ("board", "/api/admin/appointments/board").
    pub endpoints: Vec<(String, String)>,
    /// The `{version}` label values of the baseline and of the canary.
    pub baseline: String,
    pub canary: String,
    /// How often Prometheus scrapes the target: `{window}` is at least twice it, so a rate
    /// always has two samples.
    pub scrape_interval: Duration,
}

/// A query that failed or answered nothing usable: names the server and the query.
#[derive(Debug, Clone, thiserror::Error)]
#[error("prometheus at {url}: {problem}{}", query.as_ref().map(|q| format!("\n  query: {q}")).unwrap_or_default())]
pub struct QueryError {
    pub url: String,
    pub query: Option<String>,
    pub problem: String,
}

pub struct Prometheus {
    client: reqwest::Client,
    config: PrometheusConfig,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<Sample>),
    Scalar((f64, String)),
    /// A range vector or a string: not a measure.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Sample {
    value: (f64, String),
}

impl Prometheus {
    pub fn new(config: PrometheusConfig) -> anyhow::Result<Prometheus> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Prometheus { client, config })
    }

    pub fn url(&self) -> &str {
        &self.config.url
    }

    fn error(&self, query: Option<&str>, problem: impl Into<String>) -> QueryError {
        QueryError {
            url: self.config.url.clone(),
            query: query.map(String::from),
            problem: problem.into(),
        }
    }

    /// The server answers at all (its build info), within a few seconds.
    pub async fn reachable(&self) -> Result<(), QueryError> {
        let url = format!(
            "{}/api/v1/status/buildinfo",
            self.config.url.trim_end_matches('/')
        );
        let resp = self
            .client
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| self.error(None, format!("unreachable: {e}")))?;
        if !resp.status().is_success() {
            return Err(self.error(
                None,
                format!("answered {} (is it a Prometheus server?)", resp.status()),
            ));
        }
        Ok(())
    }

    /// Waits until the baseline's request count answers for every endpoint — the target is
    /// scraped and the queries match its series — or fails naming the query that answers
    /// nothing after `within`.
    pub async fn ready(&self, window: Duration, within: Duration) -> Result<(), QueryError> {
        let started = std::time::Instant::now();
        loop {
            let mut silent = None;
            for (_, label) in &self.config.endpoints {
                let q = self.render(
                    &self.config.queries.requests,
                    label,
                    &self.config.baseline,
                    window,
                );
                if self.query(&q).await?.is_none() {
                    silent = Some(q);
                    break;
                }
            }
            let Some(q) = silent else { return Ok(()) };
            if started.elapsed() >= within {
                return Err(self.error(
                    Some(&q),
                    format!(
                        "the query answered no series within {} (is the target scraped? do the metric and label names match?)",
                        humantime::format_duration(within)
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The range a rate is taken over: the check interval, at least two scrapes.
    pub fn range(&self, window: Duration) -> Duration {
        window.max(self.config.scrape_interval.saturating_mul(2))
    }

    fn render(&self, template: &str, endpoint: &str, version: &str, window: Duration) -> String {
        let range = format!("{}ms", self.range(window).as_millis().max(1));
        template
            .replace("{endpoint}", endpoint)
            .replace("{version}", version)
            .replace("{window}", &range)
    }

    /// One instant query: its single value, or `None` when it answers no series or NaN (a
    /// quantile of no requests).
    async fn query(&self, q: &str) -> Result<Option<f64>, QueryError> {
        let base = format!("{}/api/v1/query", self.config.url.trim_end_matches('/'));
        let url = reqwest::Url::parse_with_params(&base, &[("query", q)])
            .map_err(|e| self.error(Some(q), format!("not a URL: {e}")))?;
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| self.error(Some(q), format!("unreachable: {e}")))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.error(Some(q), format!("reading the answer: {e}")))?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            self.error(
                Some(q),
                format!("answered {status} with something that is not Prometheus' JSON: {e}"),
            )
        })?;
        if answer.status != "success" {
            return Err(self.error(
                Some(q),
                format!(
                    "the query failed: {}",
                    answer.error.unwrap_or_else(|| status.to_string())
                ),
            ));
        }
        let raw = match answer.data {
            Some(Data::Vector(samples)) => match samples.as_slice() {
                [] => return Ok(None),
                [one] => one.value.1.clone(),
                many => {
                    return Err(self.error(
                        Some(q),
                        format!(
                            "the query answered {} series; aggregate it to one (e.g. sum(...))",
                            many.len()
                        ),
                    ));
                }
            },
            Some(Data::Scalar((_, v))) => v,
            _ => {
                return Err(self.error(
                    Some(q),
                    "the query must answer an instant vector or a scalar",
                ));
            }
        };
        let value: f64 = raw
            .parse()
            .map_err(|_| self.error(Some(q), format!("answered `{raw}`, not a number")))?;
        Ok(match value {
            v if v.is_nan() => None,
            // A quantile in the +Inf bucket: past every bound the histogram has. Kept finite
            // (an hour, the probe's own ceiling) so it stays a number in the journal.
            v if v.is_infinite() => Some(if v > 0.0 { 3_600_000.0 } else { 0.0 }),
            v => Some(v.max(0.0)),
        })
    }

    /// Every endpoint's numbers over the last `window`, per version and both together.
    pub async fn measure(&self, window: Duration) -> Result<Vec<EndpointRecord>, QueryError> {
        let versions = [
            (Served::Canary, self.config.canary.as_str()),
            (Served::Baseline, self.config.baseline.as_str()),
        ];
        let asks = self.config.endpoints.iter().flat_map(|(name, label)| {
            versions
                .iter()
                .map(move |(served, version)| self.endpoint(name, label, *served, version, window))
        });
        let per_version = try_join_all(asks).await?;
        let mut out = Vec::with_capacity(per_version.len() * 3 / 2);
        for pair in per_version.chunks(2) {
            if let [canary, baseline] = pair {
                out.push(EndpointRecord::together(canary, baseline));
            }
        }
        out.extend(
            per_version
                .iter()
                .filter(|e| e.served == Some(Served::Canary))
                .cloned(),
        );
        out.extend(
            per_version
                .into_iter()
                .filter(|e| e.served == Some(Served::Baseline)),
        );
        Ok(out)
    }

    async fn endpoint(
        &self,
        name: &str,
        label: &str,
        served: Served,
        version: &str,
        window: Duration,
    ) -> Result<EndpointRecord, QueryError> {
        let asks = self
            .config
            .queries
            .all()
            .map(|(_, t)| self.render(t, label, version, window));
        let values = try_join_all(asks.iter().map(|q| self.query(q))).await?;
        let [requests, errors, conflicts, p50, p95, p99, avg, max] = values[..] else {
            unreachable!("one value per measure")
        };
        // Counts over a range are extrapolated by Prometheus: round them to requests.
        let n = |v: Option<f64>| v.map_or(0, |v| v.round().min(u64::MAX as f64) as u64);
        let ms = |v: Option<f64>| v.unwrap_or(0.0);
        let requests = n(requests);
        Ok(EndpointRecord {
            requests,
            errors: n(errors).min(requests),
            conflicts: n(conflicts),
            p50_ms: ms(p50),
            p95_ms: ms(p95),
            p99_ms: ms(p99),
            avg_ms: ms(avg),
            max_ms: ms(max),
            ..EndpointRecord::empty(name, Some(served))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prom() -> Prometheus {
        Prometheus::new(PrometheusConfig {
            url: "http://127.0.0.1:9".into(),
            queries: Queries::default(),
            endpoints: vec![("board".into(), "/api/admin/appointments/board".into())],
            baseline: "v1".into(),
            canary: "v2".into(),
            scrape_interval: Duration::from_secs(1),
        })
        .unwrap()
    }

    #[test]
    fn templates_take_the_endpoint_version_and_a_range_of_two_scrapes_at_least() {
        let p = prom();
        let q = p.render(
            &p.config.queries.errors,
            "/api/x",
            "v2",
            Duration::from_millis(500),
        );
        assert_eq!(
            q,
            r#"sum(increase(http_server_request_duration_seconds_count{http_route="/api/x",version="v2",http_response_status_code=~"5.."}[2000ms]))"#
        );
        let q = p.render(
            &p.config.queries.p95_ms,
            "/a",
            "v1",
            Duration::from_secs(60),
        );
        assert!(
            q.contains("[60000ms]") && q.starts_with("1000 * histogram_quantile(0.95"),
            "{q}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named() {
        let e = prom().reachable().await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with("prometheus at http://127.0.0.1:9: unreachable"),
            "{e}"
        );
    }
}
