//! SLO gate with the guide's objectives (§5, §13): board p95 < 800 ms, drawer avg < 200 ms,
//! error rate < 1 %, OCC conflicts < 30 per 5 min. Objectives are judged over the last N
//! minutes of windows, must be breached K consecutive windows to fail, and a window with fewer
//! requests than the minimum is no-data, never a pass.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "slo-gate-plugin",
    with: {
        "launch:plugin/types@0.1.0": launch_plugin_sdk::types,
        "launch:plugin/log@0.1.0": launch_plugin_sdk::log,
    },
});

use exports::launch::plugin::{describe, slo_gate};
use launch_plugin_sdk::{self as sdk, types::*};
use serde::Deserialize;

#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "kebab-case")]
enum Metric {
    P50,
    P95,
    P99,
    Avg,
    Max,
    /// Errors per request, in percent.
    ErrorRate,
    /// 409 conflicts, scaled to a count per 5 minutes.
    ConflictsPer5m,
}

impl Metric {
    fn unit(self) -> &'static str {
        match self {
            Metric::ErrorRate => "%",
            Metric::ConflictsPer5m => "per 5 min",
            _ => "ms",
        }
    }
}

#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Objective {
    /// Endpoint name as measured by the host; `*` means all endpoints together.
    endpoint: String,
    metric: Metric,
    /// The objective holds while the observed value stays strictly below this.
    below: f64,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct Config {
    objectives: Vec<Objective>,
    /// Judge only windows that end within this many minutes of the newest one.
    window_minutes: f64,
    /// An objective fails only after this many consecutive breached windows.
    consecutive: u32,
    /// Fewer requests than this in a window means no data for that window.
    min_requests: u64,
}

impl Default for Config {
    fn default() -> Self {
        let o = |endpoint: &str, metric, below| Objective { endpoint: endpoint.into(), metric, below };
        Config {
            objectives: vec![
                o("board", Metric::P95, 800.0),
                o("drawer", Metric::Avg, 200.0),
                o("*", Metric::ErrorRate, 1.0),
                o("*", Metric::ConflictsPer5m, 30.0),
            ],
            window_minutes: 10.0,
            consecutive: 1,
            min_requests: 20,
        }
    }
}

const SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,
"properties":{"objectives":{"type":"array","items":{"type":"object","additionalProperties":false,"required":["endpoint","metric","below"],
"properties":{"endpoint":{"type":"string"},"metric":{"enum":["p50","p95","p99","avg","max","error-rate","conflicts-per5m"]},"below":{"type":"number"}}}},
"window-minutes":{"type":"number","exclusiveMinimum":0},"consecutive":{"type":"integer","minimum":1},"min-requests":{"type":"integer","minimum":1}}}"#;

struct Plugin;

impl describe::Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "slo-thresholds".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            role: Role::SloGate,
            description: "Latency, error-rate and OCC-conflict objectives over a window, with consecutive-breach and no-data rules".into(),
            capabilities: vec![Capability::Log],
            config_schema: Some(SCHEMA.into()),
        }
    }
}

impl slo_gate::Guest for Plugin {
    fn evaluate(samples: Samples, config_json: String) -> StepReport {
        let cfg: Config = match sdk::parse_config(&config_json) {
            Ok(c) => c,
            Err(e) => return sdk::config_error(e),
        };
        if cfg.objectives.is_empty() {
            return sdk::config_error("no objectives: a gate with nothing to check would pass forever");
        }
        let newest_end = samples.windows.iter().map(|w| w.start_ms + w.duration_ms).max().unwrap_or(0);
        let horizon = newest_end.saturating_sub((cfg.window_minutes * 60_000.0) as u64);
        let windows: Vec<&MetricWindow> = samples.windows.iter().filter(|w| w.start_ms >= horizon).collect();
        let checks = cfg.objectives.iter().map(|o| judge(o, &windows, &cfg)).collect();
        sdk::report(checks, &format!("SLO gate over {} window(s)", windows.len()))
    }
}

/// The value of one metric over one window, or None when the window has too few requests.
fn observe(o: &Objective, w: &MetricWindow, min_requests: u64) -> Option<f64> {
    let eps: Vec<&EndpointWindow> =
        w.endpoints.iter().filter(|e| o.endpoint == "*" || e.endpoint == o.endpoint).collect();
    let requests: u64 = eps.iter().map(|e| e.requests).sum();
    if requests < min_requests {
        return None;
    }
    // Percentiles of several endpoints cannot be merged exactly; take the worst, which errs
    // towards failing rather than passing.
    let worst = |f: fn(&EndpointWindow) -> f64| eps.iter().map(|e| f(e)).fold(0.0, f64::max);
    Some(match o.metric {
        Metric::P50 => worst(|e| e.p50_ms),
        Metric::P95 => worst(|e| e.p95_ms),
        Metric::P99 => worst(|e| e.p99_ms),
        Metric::Max => worst(|e| e.max_ms),
        Metric::Avg => eps.iter().map(|e| e.avg_ms * e.requests as f64).sum::<f64>() / requests as f64,
        Metric::ErrorRate => 100.0 * eps.iter().map(|e| e.errors).sum::<u64>() as f64 / requests as f64,
        Metric::ConflictsPer5m => {
            let conflicts = eps.iter().map(|e| e.conflicts).sum::<u64>() as f64;
            conflicts * 300_000.0 / w.duration_ms.max(1) as f64
        }
    })
}

fn judge(o: &Objective, windows: &[&MetricWindow], cfg: &Config) -> Check {
    let name = format!("{}-{}", if o.endpoint == "*" { "all" } else { &o.endpoint }, metric_name(o.metric));
    let values: Vec<Option<f64>> = windows.iter().map(|w| observe(o, w, cfg.min_requests)).collect();
    let judged: Vec<f64> = values.iter().flatten().copied().collect();
    let unit = o.metric.unit();
    let detail = format!(
        "{} of {} window(s) had ≥ {} requests; fails after {} consecutive breach(es)",
        judged.len(),
        windows.len(),
        cfg.min_requests,
        cfg.consecutive
    );
    let Some(&latest) = judged.last() else {
        return Check {
            name,
            verdict: Verdict::NoData(format!("no window with at least {} requests", cfg.min_requests)),
            observed: None,
            threshold: Some(o.below),
            unit: unit.into(),
            detail,
        };
    };
    // Consecutive breaches counted back from the newest judged window.
    let streak = judged.iter().rev().take_while(|v| **v >= o.below).count() as u32;
    let verdict = if streak >= cfg.consecutive {
        Verdict::Fail(format!(
            "{latest:.2} {unit} is not below {} {unit} ({streak} consecutive breached window(s))",
            o.below
        ))
    } else if streak > 0 {
        Verdict::Inconclusive(format!("breached {streak} time(s), fails at {}", cfg.consecutive))
    } else {
        Verdict::Pass
    };
    Check { name, verdict, observed: Some(latest), threshold: Some(o.below), unit: unit.into(), detail }
}

fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::P50 => "p50",
        Metric::P95 => "p95",
        Metric::P99 => "p99",
        Metric::Avg => "avg",
        Metric::Max => "max",
        Metric::ErrorRate => "error-rate",
        Metric::ConflictsPer5m => "conflicts",
    }
}

export!(Plugin);
