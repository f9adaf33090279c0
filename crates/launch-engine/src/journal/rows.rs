//! How a window's rows are written in the journal. A canary writes one window record per
//! interval for as long as it runs, so the row is kept short where nothing is lost: latency
//! keys without their unit (every latency is in milliseconds), a percentile equal to the one
//! above it left out, and an endpoint that one version served alone written as a reference to
//! that version's row (both versions together are then that version). What reads the rows
//! gets back exactly the records that were written, and journals written before read as
//! they were (their keys are the aliases).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use launch_targets::metrics::{EndpointRecord, Measure};
use launch_targets::probe::Served;

#[derive(Serialize, Deserialize)]
struct Row {
    endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    served: Option<Served>,
    /// Both versions together are this version's row: only it served the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    same: Option<Served>,
    #[serde(default, skip_serializing_if = "is_zero")]
    requests: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    errors: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    conflicts: u64,
    /// Left out when equal to p95.
    #[serde(
        default,
        alias = "p50_ms",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "latency"
    )]
    p50: Option<f64>,
    /// Left out when equal to p99.
    #[serde(
        default,
        alias = "p95_ms",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "latency"
    )]
    p95: Option<f64>,
    /// Left out when equal to the maximum (a window of under a hundred requests).
    #[serde(
        default,
        alias = "p99_ms",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "latency"
    )]
    p99: Option<f64>,
    #[serde(
        default,
        alias = "avg_ms",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "latency"
    )]
    avg: Option<f64>,
    #[serde(
        default,
        alias = "max_ms",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "latency"
    )]
    max: Option<f64>,
    #[serde(default, alias = "latencies_ms", skip_serializing_if = "Vec::is_empty")]
    latencies: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    missing: Vec<Measure>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A present key is a latency, `null` being a missing one (NaN); an absent key is `None`.
fn latency<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Some(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN)))
}

/// `e` with both versions' label: what `same` stands for.
fn as_together(v: &EndpointRecord) -> EndpointRecord {
    EndpointRecord {
        served: None,
        latencies_ms: Vec::new(),
        ..v.clone()
    }
}

/// The version whose row `e` (both versions together) repeats, if one alone served it.
fn lone_version(e: &EndpointRecord, all: &[EndpointRecord]) -> Option<Served> {
    if e.served.is_some() {
        return None;
    }
    let mut versions = all
        .iter()
        .filter(|v| v.served.is_some() && v.endpoint == e.endpoint);
    let v = versions.next()?;
    (versions.next().is_none() && as_together(v) == *e).then_some(v.served)?
}

fn to_row(e: &EndpointRecord, all: &[EndpointRecord]) -> Row {
    if let Some(same) = lone_version(e, all) {
        return Row {
            endpoint: e.endpoint.clone(),
            served: None,
            same: Some(same),
            requests: 0,
            errors: 0,
            conflicts: 0,
            p50: None,
            p95: None,
            p99: None,
            avg: None,
            max: None,
            latencies: Vec::new(),
            missing: Vec::new(),
        };
    }
    // NaN (missing) is never equal to anything, so a missing percentile is written (`null`).
    let unless = |x: f64, above: f64| (x != above).then_some(x);
    Row {
        endpoint: e.endpoint.clone(),
        served: e.served,
        same: None,
        requests: e.requests,
        errors: e.errors,
        conflicts: e.conflicts,
        p50: unless(e.p50_ms, e.p95_ms),
        p95: unless(e.p95_ms, e.p99_ms),
        p99: unless(e.p99_ms, e.max_ms),
        avg: Some(e.avg_ms),
        max: Some(e.max_ms),
        latencies: e.latencies_ms.clone(),
        missing: e.missing.clone(),
    }
}

fn from_row(r: Row) -> EndpointRecord {
    let max_ms = r.max.unwrap_or(f64::NAN);
    let p99_ms = r.p99.unwrap_or(max_ms);
    let p95_ms = r.p95.unwrap_or(p99_ms);
    EndpointRecord {
        endpoint: r.endpoint,
        served: r.served,
        requests: r.requests,
        errors: r.errors,
        conflicts: r.conflicts,
        p50_ms: r.p50.unwrap_or(p95_ms),
        p95_ms,
        p99_ms,
        avg_ms: r.avg.unwrap_or(f64::NAN),
        max_ms,
        latencies_ms: r.latencies,
        missing: r.missing,
    }
}

pub fn write<S: Serializer>(endpoints: &[EndpointRecord], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(endpoints.iter().map(|e| to_row(e, endpoints)))
}

pub fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EndpointRecord>, D::Error> {
    let rows = Vec::<Row>::deserialize(d)?;
    let same: Vec<(usize, Served)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.same?)))
        .collect();
    let mut out: Vec<EndpointRecord> = rows.into_iter().map(from_row).collect();
    for (i, served) in same {
        let Some(v) = out
            .iter()
            .find(|v| v.served == Some(served) && v.endpoint == out[i].endpoint)
        else {
            return Err(serde::de::Error::custom(format!(
                "the row of `{}` names its {} row, which the window does not hold",
                out[i].endpoint,
                match served {
                    Served::Canary => "canary",
                    Served::Baseline => "baseline",
                }
            )));
        };
        out[i] = as_together(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct W {
        #[serde(serialize_with = "write", deserialize_with = "read")]
        endpoints: Vec<EndpointRecord>,
    }

    fn row(endpoint: &str, served: Option<Served>, ms: [f64; 5]) -> EndpointRecord {
        EndpointRecord {
            requests: 6,
            p50_ms: ms[0],
            p95_ms: ms[1],
            p99_ms: ms[2],
            avg_ms: ms[3],
            max_ms: ms[4],
            latencies_ms: if served.is_some() {
                vec![1.5; 6]
            } else {
                Vec::new()
            },
            ..EndpointRecord::empty(endpoint, served)
        }
    }

    #[test]
    fn a_window_reads_back_exactly_as_written_in_fewer_bytes() {
        let board = row("board", Some(Served::Baseline), [1.8, 2.2, 2.2, 1.9, 2.2]);
        let drawer_c = row("drawer", Some(Served::Canary), [2.3, 2.3, 2.3, 2.3, 2.3]);
        let drawer_b = row("drawer", Some(Served::Baseline), [1.4, 2.5, 2.6, 1.7, 2.6]);
        let mut gap = row("stats", Some(Served::Canary), [1.0, 2.0, 3.0, 1.5, 3.0]);
        gap.set_missing(Measure::P95Ms);
        let w = W {
            endpoints: vec![
                as_together(&board),
                row("drawer", None, [1.5, 2.5, 2.6, 1.8, 2.6]),
                as_together(&gap),
                drawer_c,
                gap,
                board,
                drawer_b,
            ],
        };
        let json = serde_json::to_string(&w).unwrap();
        assert!(
            json.contains(r#"{"endpoint":"board","same":"baseline"}"#),
            "{json}"
        );
        assert!(
            json.contains(r#""p95":null"#),
            "a missing latency is written: {json}"
        );
        assert!(
            json.contains(
                r#"{"endpoint":"drawer","served":"canary","requests":6,"avg":2.3,"max":2.3,"#
            ),
            "percentiles equal to the one above are left out: {json}"
        );
        let back: W = serde_json::from_str(&json).unwrap();
        // NaN is never equal to itself: compare the JSON again, and the known rows directly.
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!(back.endpoints[..2], w.endpoints[..2]);
        assert_eq!(back.endpoints[3..4], w.endpoints[3..4]);
        assert!(back.endpoints[2].p95_ms.is_nan() && back.endpoints[2].p99_ms == 3.0);
    }

    #[test]
    fn a_row_written_before_reads_as_it_was() {
        let old = r#"{"endpoints":[{"endpoint":"board","requests":7,"p50_ms":1.735,"p95_ms":null,"p99_ms":2.0,"avg_ms":1.779,"max_ms":2.0,"latencies_ms":[1.42,2.0],"missing":["p95-ms"]}]}"#;
        let w: W = serde_json::from_str(old).unwrap();
        let e = &w.endpoints[0];
        assert_eq!(
            (e.requests, e.p50_ms, e.p99_ms, e.avg_ms),
            (7, 1.735, 2.0, 1.779)
        );
        assert!(e.p95_ms.is_nan());
        assert_eq!(e.latencies_ms, vec![1.42, 2.0]);
        assert_eq!(e.missing, vec![Measure::P95Ms]);
    }

    #[test]
    fn a_reference_to_a_row_the_window_lacks_is_an_error() {
        let bad = r#"{"endpoints":[{"endpoint":"board","same":"canary"}]}"#;
        let err = serde_json::from_str::<W>(bad).unwrap_err().to_string();
        assert!(err.contains("names its canary row"), "{err}");
    }
}
