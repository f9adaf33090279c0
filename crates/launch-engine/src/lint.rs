//! Gates that can never fail. A misconfigured gate (a threshold of 10⁹ ms, an objective on an
//! endpoint nobody measures) passes forever and silently; so `validate` feeds every SLO gate
//! and canary policy the worst inputs there are — every request failing, each taking an hour —
//! and reports any that still pass or promote.

use super::runbook::Runbook;
use launch_runtime::types::{
    Action, CanaryState, CanaryWindow, EndpointWindow, MetricWindow, Samples,
};
use launch_runtime::{Catalog, Role, Sandbox};

fn disaster(endpoint: &str) -> EndpointWindow {
    let hour = 3_600_000.0;
    EndpointWindow {
        endpoint: endpoint.into(),
        requests: 10_000,
        errors: 10_000,
        conflicts: 10_000,
        p50_ms: hour,
        p95_ms: hour,
        p99_ms: hour,
        avg_ms: hour,
        max_ms: hour,
        latencies_ms: vec![hour; 50],
    }
}

fn disasters() -> Vec<EndpointWindow> {
    ["board", "drawer", "stats", "health", "move"]
        .into_iter()
        .map(disaster)
        .collect()
}

pub async fn gates_that_cannot_fail(runbook: &Runbook, catalog: &Catalog) -> Vec<String> {
    let mut problems = Vec::new();
    let now = super::journal::now_ms();
    for stage in &runbook.stages {
        let Some(name) = &stage.plugin else { continue };
        let Some(plugin) = catalog.get(name.get_ref()) else {
            continue;
        };
        let config = stage.config_json();
        let sandbox = Sandbox::default();
        let at = name.span().start;
        match plugin.role() {
            Role::SloGate => {
                let windows = (0..10)
                    .map(|i| MetricWindow {
                        start_ms: now - (10 - i) * 60_000,
                        duration_ms: 60_000,
                        endpoints: disasters(),
                    })
                    .collect();
                if let Ok(called) = plugin
                    .evaluate_slo(&sandbox, &Samples { windows }, &config)
                    .await
                    && called.value.verdict == launch_runtime::types::Verdict::Pass
                {
                    problems.push(runbook.error_at(at, format!(
                            "stage `{}`: gate `{}` passes even when every request fails and takes an hour, so it can never fail; check its thresholds and endpoints",
                            stage.name.get_ref(), plugin.info.name)).to_string());
                }
            }
            Role::CanaryPolicy => {
                let state = CanaryState {
                    percent: 10,
                    step_index: 0,
                    step_elapsed_ms: 3_600_000,
                    total_elapsed_ms: 3_600_000,
                };
                let window = CanaryWindow {
                    start_ms: now,
                    duration_ms: 60_000,
                    canary: disasters(),
                    baseline: disasters(),
                };
                if let Ok(called) = plugin
                    .decide_canary(&sandbox, &state, &[window], &config)
                    .await
                    && matches!(called.value.action, Action::Promote(_) | Action::Complete)
                {
                    problems.push(runbook.error_at(at, format!(
                            "stage `{}`: canary policy `{}` promotes a canary whose every request fails and takes an hour, so it can never roll back; check its limits",
                            stage.name.get_ref(), plugin.info.name)).to_string());
                }
            }
            _ => {}
        }
    }
    problems
}
