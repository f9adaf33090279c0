//! Prometheus as a metrics source: PromQL instant queries, one per measure, endpoint and
//! served version, evaluated at the end of every check interval. A query is a template with
//! `{endpoint}`, `{version}` and `{window}` placeholders; the defaults read the
//! `http_server_request_duration_seconds` histogram as OpenTelemetry's HTTP conventions name
//! it. Latency queries answer in milliseconds.
//!
//! An empty answer (no series) or NaN is a *missing* measure, never 0: a template with a typo
//! in a label matches nothing, and reading that as "no errors" or "0 ms" would pass a broken
//! canary. Where no series is a real zero (no 5xx answered yet, so no 5xx series exists), the
//! query says so itself: the default `errors` and `conflicts` queries end in
//! `or 0 * <the requests query>`, which answers 0 only when the version's requests are there
//! to prove it. Each query is bounded by the check interval, so a hung server is no data
//! within one interval, not a stalled canary.

use std::time::Duration;

use futures::future::try_join_all;
use serde::Deserialize;

use super::queries::Answered;
pub use super::queries::Queries;
use super::reading::{EndpointRecord, Measure};
use crate::probe::Served;

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

    /// Waits until every template matches series for the baseline on every endpoint — the
    /// target is scraped and the queries match what it exports — or fails naming the first
    /// one that matches nothing after `within`. A NaN is fine here (the series exist, there
    /// was no traffic in the window); no series at all is not.
    pub async fn ready(&self, window: Duration, within: Duration) -> Result<(), QueryError> {
        let started = std::time::Instant::now();
        let deadline = Duration::from_secs(5);
        loop {
            let mut silent = None;
            'all: for (measure, template) in self.config.queries.all() {
                for (name, label) in &self.config.endpoints {
                    let q = self.render(template, label, &self.config.baseline, window);
                    if self.query(&q, deadline).await? == Answered::NoSeries {
                        silent = Some((measure, name, q));
                        break 'all;
                    }
                }
            }
            let Some((measure, endpoint, q)) = silent else {
                return Ok(());
            };
            if started.elapsed() >= within {
                let hint = match measure {
                    Measure::Requests => {
                        "is the target scraped? do the metric and label names match?".to_string()
                    }
                    Measure::Errors | Measure::Conflicts => format!(
                        "do the metric and label names match? An empty answer is no data, never 0: if none answered yet is normal, make the query answer 0 itself, e.g. `<query> or 0 * {}`",
                        self.render(
                            &self.config.queries.requests,
                            &self.label(endpoint),
                            &self.config.baseline,
                            window
                        )
                    ),
                    _ => "do the metric and label names match?".to_string(),
                };
                return Err(self.error(
                    Some(&q),
                    format!(
                        "the {} query of endpoint `{endpoint}` matched no series for the baseline (`{}`) within {} ({hint})",
                        measure.word(),
                        self.config.baseline,
                        humantime::format_duration(within)
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn label(&self, endpoint: &str) -> String {
        self.config
            .endpoints
            .iter()
            .find(|(n, _)| n == endpoint)
            .map(|(_, l)| l.clone())
            .unwrap_or_default()
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

    /// One instant query, answered within `deadline`: its single value, no series, or NaN.
    async fn query(&self, q: &str, deadline: Duration) -> Result<Answered, QueryError> {
        let base = format!("{}/api/v1/query", self.config.url.trim_end_matches('/'));
        let url = reqwest::Url::parse_with_params(&base, &[("query", q)])
            .map_err(|e| self.error(Some(q), format!("not a URL: {e}")))?;
        let silent = || {
            self.error(
                Some(q),
                format!("no answer within {}", humantime::format_duration(deadline)),
            )
        };
        let failed = |what: &str, e: reqwest::Error| match e.is_timeout() {
            true => silent(),
            false => self.error(Some(q), format!("{what}: {e}")),
        };
        let asked = async {
            let resp = self
                .client
                .get(url)
                .timeout(deadline)
                .send()
                .await
                .map_err(|e| failed("unreachable", e))?;
            let status = resp.status();
            let body = resp
                .bytes()
                .await
                .map_err(|e| failed("reading the answer", e))?;
            Ok::<_, QueryError>((status, body))
        };
        let (status, body) = tokio::time::timeout(deadline, asked)
            .await
            .map_err(|_| silent())??;
        if body.len() > MAX_ANSWER_BYTES {
            return Err(self.error(
                Some(q),
                format!(
                    "answered {} bytes, more than the {MAX_ANSWER_BYTES} a measure can take",
                    body.len()
                ),
            ));
        }
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
                [] => return Ok(Answered::NoSeries),
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
            v if v.is_nan() => Answered::NotANumber,
            // A quantile in the +Inf bucket: past every bound the histogram has. Kept finite
            // (an hour, the probe's own ceiling) so it stays a number in the journal.
            v if v.is_infinite() => Answered::Value(if v > 0.0 { 3_600_000.0 } else { 0.0 }),
            v => Answered::Value(v.max(0.0)),
        })
    }

    /// Every endpoint's numbers over the last `window`, per version and both together, each
    /// query answered within `deadline` (the check interval). A version that served no request
    /// there (its request count is 0 or matches nothing) has no record, as with the probe.
    pub async fn measure(
        &self,
        window: Duration,
        deadline: Duration,
    ) -> Result<Vec<EndpointRecord>, QueryError> {
        let versions = [
            (Served::Canary, self.config.canary.as_str()),
            (Served::Baseline, self.config.baseline.as_str()),
        ];
        let asks = self
            .config
            .endpoints
            .iter()
            .map(|(name, label)| async move {
                let [canary, baseline] = versions.map(|(served, version)| {
                    self.endpoint(name, label, served, version, window, deadline)
                });
                Ok::<_, QueryError>((canary.await?, baseline.await?))
            });
        let per_endpoint = try_join_all(asks).await?;
        let mut out = Vec::with_capacity(per_endpoint.len() * 3);
        for (canary, baseline) in &per_endpoint {
            match (canary, baseline) {
                (Some(c), Some(b)) => out.push(EndpointRecord::together(c, b)),
                (Some(one), None) | (None, Some(one)) => out.push(EndpointRecord {
                    served: None,
                    ..one.clone()
                }),
                (None, None) => {}
            }
        }
        out.extend(per_endpoint.iter().filter_map(|(c, _)| c.clone()));
        out.extend(per_endpoint.into_iter().filter_map(|(_, b)| b));
        Ok(out)
    }

    async fn endpoint(
        &self,
        name: &str,
        label: &str,
        served: Served,
        version: &str,
        window: Duration,
        deadline: Duration,
    ) -> Result<Option<EndpointRecord>, QueryError> {
        let asks = self
            .config
            .queries
            .all()
            .map(|(_, t)| self.render(t, label, version, window));
        let answers = try_join_all(asks.iter().map(|q| self.query(q, deadline))).await?;
        // Counts over a range are extrapolated by Prometheus: round them to requests.
        let count = |v: f64| v.round().min(u64::MAX as f64) as u64;
        let requests = answers[0].value().map_or(0, count);
        if requests == 0 {
            return Ok(None);
        }
        let mut record = EndpointRecord {
            requests,
            ..EndpointRecord::empty(name, Some(served))
        };
        for ((measure, _), answer) in self.config.queries.all().iter().zip(&answers).skip(1) {
            let Some(v) = answer.value() else {
                record.set_missing(*measure);
                continue;
            };
            match measure {
                Measure::Errors => record.errors = count(v).min(requests),
                Measure::Conflicts => record.conflicts = count(v),
                Measure::P50Ms => record.p50_ms = v,
                Measure::P95Ms => record.p95_ms = v,
                Measure::P99Ms => record.p99_ms = v,
                Measure::AvgMs => record.avg_ms = v,
                Measure::MaxMs => record.max_ms = v,
                Measure::Requests => {}
            }
        }
        Ok(Some(record))
    }
}

/// An instant query's answer is one number: more than this is not one.
const MAX_ANSWER_BYTES: usize = 1 << 20;

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
            r#"sum(increase(http_server_request_duration_seconds_count{http_route="/api/x",version="v2",http_response_status_code=~"5.."}[2000ms])) or 0 * sum(increase(http_server_request_duration_seconds_count{http_route="/api/x",version="v2"}[2000ms]))"#
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
