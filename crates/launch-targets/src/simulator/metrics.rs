//! The simulator's `/metrics`: what a production service exports for its metrics system, so a
//! canary can be judged on Prometheus alone. One latency histogram per route, method, status
//! and served version, named as OpenTelemetry's HTTP semantic conventions name it
//! (`http_server_request_duration_seconds`), in OpenMetrics text.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The histogram's name, as the default queries of a Prometheus source expect it.
pub const DURATION: &str = "http_server_request_duration_seconds";

/// Bucket bounds in seconds: OpenTelemetry's defaults for HTTP server durations, with 2.5 s,
/// 5 s and 10 s at the top, where a slow canary shows.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    http_route: String,
    http_request_method: String,
    http_response_status_code: String,
    /// `v1` (legacy) or `v2`: the version that served the request (`X-Served-By`).
    version: String,
}

type Durations = Family<Labels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    durations: Durations,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl Metrics {
    /// A registry whose series for `routes` × both versions × 200 and 500 exist from the
    /// start at zero, so a version's first requests — and first failures — count in a rate
    /// at the next scrape, not one scrape later when the series first shows up.
    pub fn new(routes: &[&str]) -> Metrics {
        let durations: Durations = Family::new_with_constructor(histogram);
        for route in routes {
            for (version, status) in [("v1", "200"), ("v1", "500"), ("v2", "200"), ("v2", "500")] {
                let _ = durations.get_or_create(&Labels {
                    http_route: (*route).into(),
                    http_request_method: "GET".into(),
                    http_response_status_code: status.into(),
                    version: version.into(),
                });
            }
        }
        let mut registry = Registry::default();
        registry.register(
            DURATION,
            "Duration of HTTP server requests, by route, status and served version",
            durations.clone(),
        );
        Metrics {
            registry,
            durations,
        }
    }

    fn observe(&self, route: &str, method: &str, status: u16, version: &str, seconds: f64) {
        self.durations
            .get_or_create(&Labels {
                http_route: route.into(),
                http_request_method: method.into(),
                http_response_status_code: status.to_string(),
                version: version.into(),
            })
            .observe(seconds);
    }

    /// The exposition, in OpenMetrics text.
    pub fn render(&self) -> Response {
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            return (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("encoding metrics: {e}"),
            )
                .into_response();
        }
        let mut resp = Response::new(Body::from(text));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        resp
    }
}

/// Times every routed API request until its head is ready (the simulator answers whole
/// bodies), labelled by the version that served it. Requests no version served (the site,
/// the admin API) are not measured: they are not what a canary compares.
pub async fn measure(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let version = resp
        .headers()
        .get("x-served-by")
        .and_then(|v| v.to_str().ok());
    if let (Some(route), Some(version)) = (route, version) {
        let seconds = started.elapsed().as_secs_f64();
        metrics.observe(&route, &method, resp.status().as_u16(), version, seconds);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_exist_at_zero_and_count_observations_by_version() {
        let m = Metrics::new(&["/api/admin/appointments/board"]);
        m.observe("/api/admin/appointments/board", "GET", 500, "v2", 2.6);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry).unwrap();
        let count = |status: &str, version: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with(&format!("{DURATION}_count{{"))
                        && l.contains(&format!("http_response_status_code=\"{status}\""))
                        && l.contains(&format!("version=\"{version}\""))
                })
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_string)
        };
        assert_eq!(count("200", "v1").as_deref(), Some("0"));
        assert_eq!(count("500", "v1").as_deref(), Some("0"));
        assert_eq!(count("500", "v2").as_deref(), Some("1"));
        assert!(text.contains("le=\"5.0\""), "{text}");
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
