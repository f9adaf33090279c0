//! Canary policy that judges the canary against the baseline serving at the same time, not
//! against fixed limits: roll back when the canary's p95 is both `max-latency-ratio` times the
//! baseline's and `min-latency-gap-ms` slower, or when its error rate exceeds the baseline's
//! by `max-error-excess-pct`. Steps and timing are read like `canary-steps`', so it can shadow
//! that policy with the same config. An interval without enough traffic on either side holds.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "canary-policy-plugin",
    with: {
        "launch:plugin/types@0.1.0": launch_plugin_sdk::types,
        "launch:plugin/log@0.1.0": launch_plugin_sdk::log,
    },
});

use exports::launch::plugin::canary_policy::{self, Action, CanaryState, CanaryWindow, Decision};
use exports::launch::plugin::describe;
use launch_plugin_sdk::{self as sdk, types::*};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct Config {
    steps: Vec<u8>,
    step_duration_ms: u64,
    /// Requests each side needs in an interval before it can be judged.
    min_requests: u64,
    max_latency_ratio: f64,
    /// A slower canary must also be this many ms slower: on a fast service a 1 ms vs 2 ms p95
    /// is a ratio of 2 and means nothing.
    min_latency_gap_ms: f64,
    max_error_excess_pct: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            steps: vec![10, 30, 50, 100],
            step_duration_ms: 600_000,
            min_requests: 10,
            max_latency_ratio: 1.5,
            min_latency_gap_ms: 100.0,
            max_error_excess_pct: 0.5,
        }
    }
}

// Open to other keys: as a shadow it is handed the live policy's config.
const SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
"properties":{"steps":{"type":"array","items":{"type":"integer","minimum":1,"maximum":100},"minItems":1},
"step-duration-ms":{"type":"integer","minimum":0},"min-requests":{"type":"integer","minimum":1},
"max-latency-ratio":{"type":"number","exclusiveMinimum":1},"min-latency-gap-ms":{"type":"number","minimum":0},
"max-error-excess-pct":{"type":"number","minimum":0}}}"#;

struct Plugin;

impl describe::Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "canary-ratio".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            role: Role::CanaryPolicy,
            description: "Stepped canary judged against the live baseline: p95 ratio and error-rate excess".into(),
            capabilities: vec![Capability::Log],
            config_schema: Some(SCHEMA.into()),
        }
    }
}

struct Side {
    requests: u64,
    errors: u64,
    p95: f64,
}

fn side(eps: &[EndpointWindow]) -> Side {
    Side {
        requests: eps.iter().map(|e| e.requests).sum(),
        errors: eps.iter().map(|e| e.errors).sum(),
        p95: eps.iter().map(|e| e.p95_ms).fold(0.0, f64::max),
    }
}

impl canary_policy::Guest for Plugin {
    fn decide(state: CanaryState, history: Vec<CanaryWindow>, config_json: String) -> Decision {
        let cfg: Config = match sdk::parse_config(&config_json) {
            Ok(c) => c,
            Err(e) => return decision(Action::Hold(format!("invalid config: {e}")), Vec::new()),
        };
        if cfg.steps.is_empty() || cfg.steps.windows(2).any(|w| w[0] >= w[1]) {
            return decision(Action::Hold("invalid config: steps must be a rising list of percentages".into()), Vec::new());
        }
        if state.percent == 0 {
            return decision(Action::Promote(cfg.steps[0]), Vec::new());
        }
        let Some(latest) = history.last() else {
            return decision(Action::Hold("no check interval measured yet".into()), Vec::new());
        };
        let (canary, baseline) = (side(&latest.canary), side(&latest.baseline));
        // At 100 % there is no baseline left to compare with: the last step is judged by the
        // history of the step before, so hold there only until its time is up.
        let comparable = canary.requests >= cfg.min_requests && baseline.requests >= cfg.min_requests;
        let mut checks = Vec::new();
        if comparable {
            let rate = |s: &Side| 100.0 * s.errors as f64 / s.requests as f64;
            let excess = rate(&canary) - rate(&baseline);
            let detail = format!("canary {} req, baseline {} req at {}%", canary.requests, baseline.requests, state.percent);
            checks.push(Check {
                name: "error-excess".into(),
                verdict: if excess > cfg.max_error_excess_pct {
                    Verdict::Fail(format!("canary error rate is {excess:.2} points above baseline (limit {})", cfg.max_error_excess_pct))
                } else {
                    Verdict::Pass
                },
                observed: Some(excess),
                threshold: Some(cfg.max_error_excess_pct),
                unit: "%".into(),
                detail: detail.clone(),
            });
            let ratio = if baseline.p95 > 0.0 { canary.p95 / baseline.p95 } else { 1.0 };
            let slower = ratio > cfg.max_latency_ratio && canary.p95 - baseline.p95 > cfg.min_latency_gap_ms;
            checks.push(Check {
                name: "latency-ratio".into(),
                verdict: if slower {
                    Verdict::Fail(format!(
                        "canary p95 {:.0} ms is {ratio:.2}× baseline {:.0} ms (limit {}× and {} ms)",
                        canary.p95, baseline.p95, cfg.max_latency_ratio, cfg.min_latency_gap_ms
                    ))
                } else {
                    Verdict::Pass
                },
                observed: Some(ratio),
                threshold: Some(cfg.max_latency_ratio),
                unit: "×".into(),
                detail,
            });
        } else if state.percent < 100 {
            let reason = format!(
                "{} canary and {} baseline request(s) in the last interval, {} of each needed",
                canary.requests, baseline.requests, cfg.min_requests
            );
            let check = Check {
                name: "traffic".into(),
                verdict: Verdict::NoData(reason.clone()),
                observed: Some(canary.requests.min(baseline.requests) as f64),
                threshold: Some(cfg.min_requests as f64),
                unit: "requests".into(),
                detail: format!("at {}%", state.percent),
            };
            return decision(Action::Hold(reason), vec![check]);
        }
        if let Some(fired) = checks.iter().find_map(|c| match &c.verdict {
            Verdict::Fail(r) => Some(format!("{}: {r}", c.name)),
            _ => None,
        }) {
            return decision(Action::Rollback(fired), checks);
        }
        if state.step_elapsed_ms < cfg.step_duration_ms {
            let left = (cfg.step_duration_ms - state.step_elapsed_ms) / 1000;
            return decision(Action::Hold(format!("canary on a par with baseline at {}%, {left} s left in this step", state.percent)), checks);
        }
        let action = match cfg.steps.iter().copied().find(|&p| p > state.percent) {
            Some(p) => Action::Promote(p),
            None => Action::Complete,
        };
        decision(action, checks)
    }
}

fn decision(action: Action, checks: Vec<Check>) -> Decision {
    let summary = match &action {
        Action::Promote(p) => format!("promote to {p}%"),
        Action::Hold(r) => format!("hold: {r}"),
        Action::Rollback(r) => format!("roll back: {r}"),
        Action::Complete => "canary complete".into(),
    };
    Decision { action, checks, summary }
}

export!(Plugin);
