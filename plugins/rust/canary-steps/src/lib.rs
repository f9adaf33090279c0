//! Feature-flag canary policy of the operator guide (§4): steps 10 → 30 → 50 → 100, a fixed
//! time per step, auto-rollback when the canary's error rate exceeds 1 % or its latency exceeds
//! 2000 ms. An interval without enough canary traffic holds — it never promotes on no data.

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
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct Config {
    steps: Vec<u8>,
    step_duration_ms: u64,
    max_error_rate_pct: f64,
    max_latency_ms: f64,
    /// Canary requests an interval needs before it can be judged.
    min_requests: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            steps: vec![10, 30, 50, 100],
            step_duration_ms: 600_000,
            max_error_rate_pct: 1.0,
            max_latency_ms: 2000.0,
            min_requests: 10,
        }
    }
}

const SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,
"properties":{"steps":{"type":"array","items":{"type":"integer","minimum":1,"maximum":100},"minItems":1},
"step-duration-ms":{"type":"integer","minimum":0},"max-error-rate-pct":{"type":"number","exclusiveMinimum":0},
"max-latency-ms":{"type":"number","exclusiveMinimum":0},"min-requests":{"type":"integer","minimum":1}}}"#;

struct Plugin;

impl describe::Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "canary-steps".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            role: Role::CanaryPolicy,
            description: "Stepped canary (10→30→50→100) with auto-rollback on error rate > 1 % or latency > 2000 ms".into(),
            capabilities: vec![Capability::Log],
            config_schema: Some(SCHEMA.into()),
        }
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
        // A canary that has not started yet starts at the first step.
        if state.percent == 0 {
            return decision(Action::Promote(cfg.steps[0]), Vec::new());
        }
        let Some(latest) = history.last() else {
            return decision(Action::Hold("no check interval measured yet".into()), Vec::new());
        };
        let requests: u64 = latest.canary.iter().map(|e| e.requests).sum();
        if requests < cfg.min_requests {
            let reason = format!("{requests} canary request(s) in the last interval, {} needed", cfg.min_requests);
            let check = Check {
                name: "canary-traffic".into(),
                verdict: Verdict::NoData(reason.clone()),
                observed: Some(requests as f64),
                threshold: Some(cfg.min_requests as f64),
                unit: "requests".into(),
                detail: format!("at {}%", state.percent),
            };
            return decision(Action::Hold(reason), vec![check]);
        }
        let errors: u64 = latest.canary.iter().map(|e| e.errors).sum();
        let error_rate = 100.0 * errors as f64 / requests as f64;
        let p95 = latest.canary.iter().map(|e| e.p95_ms).fold(0.0, f64::max);
        let detail = format!("{requests} canary requests at {}% over {} ms", state.percent, latest.duration_ms);
        let error_check = not_above("error-rate", error_rate, cfg.max_error_rate_pct, "%", detail.clone());
        let latency_check = not_above("latency-p95", p95, cfg.max_latency_ms, "ms", detail);
        let checks = vec![error_check, latency_check];

        if let Some(fired) = checks.iter().find_map(|c| match &c.verdict {
            Verdict::Fail(r) => Some(format!("{}: {r}", c.name)),
            _ => None,
        }) {
            return decision(Action::Rollback(fired), checks);
        }
        if state.step_elapsed_ms < cfg.step_duration_ms {
            let left = (cfg.step_duration_ms - state.step_elapsed_ms) / 1000;
            return decision(Action::Hold(format!("healthy at {}%, {left} s left in this step", state.percent)), checks);
        }
        let next = cfg.steps.iter().copied().find(|&p| p > state.percent);
        let action = match next {
            Some(p) => Action::Promote(p),
            None => Action::Complete,
        };
        decision(action, checks)
    }
}

/// Auto-rollback fires when the value *exceeds* the limit (guide: "error rate > 1%").
fn not_above(name: &str, observed: f64, limit: f64, unit: &str, detail: String) -> Check {
    let verdict = if observed > limit {
        Verdict::Fail(format!("{observed:.2} {unit} exceeds {limit} {unit}"))
    } else {
        Verdict::Pass
    };
    Check { name: name.into(), verdict, observed: Some(observed), threshold: Some(limit), unit: unit.into(), detail }
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
