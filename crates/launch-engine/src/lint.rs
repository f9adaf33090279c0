//! Gates that can never fail, and canaries that can never be judged. A misconfigured gate (a
//! threshold of 10⁹ ms, an objective on an endpoint nobody measures) passes forever and
//! silently; so `validate` feeds every SLO gate and canary policy the worst inputs there are —
//! every request of the canary failing, each taking an hour, beside a healthy baseline — and
//! reports any that still pass or promote. And a canary whose interval, probe rate and first
//! step give it fewer requests than its policy needs holds for lack of data until it rolls
//! back: `validate` warns about it with the numbers.

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

/// An endpoint answering every request, each in a few milliseconds.
fn healthy(endpoint: &str, requests: u64) -> EndpointWindow {
    EndpointWindow {
        endpoint: endpoint.into(),
        requests,
        errors: 0,
        conflicts: 0,
        p50_ms: 4.0,
        p95_ms: 5.0,
        p99_ms: 6.0,
        avg_ms: 4.0,
        max_ms: 7.0,
        latencies_ms: vec![4.0; requests.min(50) as usize],
    }
}

const ENDPOINTS: [&str; 5] = ["board", "drawer", "stats", "health", "move"];

fn disasters() -> Vec<EndpointWindow> {
    ENDPOINTS.into_iter().map(disaster).collect()
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
                // The canary fails everything beside a healthy baseline: a policy judging
                // against fixed limits and one comparing with the baseline both must roll back.
                let history: Vec<CanaryWindow> = (0..10)
                    .map(|i| CanaryWindow {
                        start_ms: now - (10 - i) * 60_000,
                        duration_ms: 60_000,
                        canary: disasters(),
                        baseline: ENDPOINTS.into_iter().map(|e| healthy(e, 10_000)).collect(),
                    })
                    .collect();
                if let Ok(called) = plugin
                    .decide_canary(&sandbox, &state, &history, &config)
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

/// Canary stages whose policy would hold for lack of data at their first step: the probe's
/// rate × the interval × the step's share of traffic gives fewer canary requests than the
/// policy needs. Warnings (the run is allowed; it would roll back on its no-data limit), each
/// with its line and the numbers.
pub async fn starved_canaries(runbook: &Runbook, catalog: &Catalog) -> Vec<String> {
    use launch_targets::metrics::Source;
    let mut warnings = Vec::new();
    for stage in &runbook.stages {
        let Some(name) = &stage.plugin else { continue };
        let Some(plugin) = catalog.get(name.get_ref()) else {
            continue;
        };
        if plugin.role() != Role::CanaryPolicy {
            continue;
        }
        let Some(env) = stage
            .environment()
            .and_then(|e| runbook.environments.get(e))
        else {
            continue;
        };
        // Requests per second that reach the target: the probe's, else an embedded target's
        // simulated users. A real site's traffic is its own: nothing to estimate.
        let metrics = env.metrics.as_ref();
        let rate = if super::runbook::Metrics::uses(metrics, Source::Probe) {
            f64::from(runbook.defaults.probe_rate)
        } else {
            match &env.traffic {
                Some(t) if env.is_embedded() => f64::from(*t.get_ref()),
                _ => continue,
            }
        };
        let (config, sandbox) = (stage.config_json(), Sandbox::default());
        let start = CanaryState {
            percent: 0,
            step_index: 0,
            step_elapsed_ms: 0,
            total_elapsed_ms: 0,
        };
        // The first step, as the policy itself starts the rollout.
        let Ok(first) = plugin.decide_canary(&sandbox, &start, &[], &config).await else {
            continue;
        };
        let Action::Promote(step) = first.value.action else {
            continue;
        };
        let interval = stage.interval.unwrap_or(std::time::Duration::from_secs(60));
        let expected = (rate * interval.as_secs_f64() * f64::from(step) / 100.0).floor() as u64;
        let endpoints = ["board", "drawer", "stats"];
        let share = |i: usize| expected / 3 + u64::from((i as u64) < expected % 3);
        let window = CanaryWindow {
            start_ms: super::journal::now_ms(),
            duration_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            canary: endpoints
                .iter()
                .enumerate()
                .filter(|(i, _)| share(*i) > 0)
                .map(|(i, e)| healthy(e, share(i)))
                .collect(),
            baseline: endpoints.iter().map(|e| healthy(e, 10_000)).collect(),
        };
        let at_step = CanaryState {
            percent: step,
            ..start
        };
        let Ok(called) = plugin
            .decide_canary(&sandbox, &at_step, &[window], &config)
            .await
        else {
            continue;
        };
        let checks = crate::record::checks(&called.value.checks);
        if let Action::Hold(why) = &called.value.action
            && crate::record::is_no_data(&checks)
        {
            let limit = stage.no_data_limit(interval);
            warnings.push(runbook.error_at(name.span().start, format!(
                "stage `{}`: at {step}% with a {} interval and {rate} requests/s, the canary gets about {expected} request(s) per interval, and `{}` holds for lack of data ({why}): it would hold until its no-data-limit ({}) and roll back; lengthen `interval` or raise [defaults] probe-rate",
                stage.name.get_ref(),
                humantime::format_duration(interval),
                plugin.info.name,
                humantime::format_duration(limit),
            )).to_string());
        }
    }
    warnings
}
