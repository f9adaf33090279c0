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
    /// `thresholds` (the guide's fixed limits) or `statistical`: also compare canary and
    /// baseline latencies with a one-sided Mann-Whitney U test, as Kayenta does.
    mode: Mode,
    /// Significance level of the statistical test.
    alpha: f64,
    /// The canary median must also be this much slower than the baseline's to count.
    min_slowdown_pct: f64,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    Thresholds,
    Statistical,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            steps: vec![10, 30, 50, 100],
            step_duration_ms: 600_000,
            max_error_rate_pct: 1.0,
            max_latency_ms: 2000.0,
            min_requests: 10,
            mode: Mode::Thresholds,
            alpha: 0.01,
            min_slowdown_pct: 10.0,
        }
    }
}

const SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,
"properties":{"steps":{"type":"array","items":{"type":"integer","minimum":1,"maximum":100},"minItems":1},
"step-duration-ms":{"type":"integer","minimum":0},"max-error-rate-pct":{"type":"number","exclusiveMinimum":0},
"max-latency-ms":{"type":"number","exclusiveMinimum":0},"min-requests":{"type":"integer","minimum":1},
"mode":{"enum":["thresholds","statistical"]},"alpha":{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":0.5},
"min-slowdown-pct":{"type":"number","minimum":0}}}"#;

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
        let mut checks = vec![error_check, latency_check];
        if cfg.mode == Mode::Statistical {
            checks.push(compare_with_baseline(latest, &cfg));
        }

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

/// Is the canary slower than the baseline? One-sided Mann-Whitney U over the raw latencies of
/// the interval (normal approximation with tie correction), plus a minimum effect size so a
/// statistically significant but negligible slowdown does not roll back.
fn compare_with_baseline(w: &CanaryWindow, cfg: &Config) -> Check {
    // Each side sorted once: the ranks of the test and both medians are read off the two.
    let sorted = |eps: &[EndpointWindow]| {
        let mut v = eps.iter().flat_map(|e| e.latencies_ms.iter().copied()).collect::<Vec<f64>>();
        v.sort_unstable_by(f64::total_cmp);
        v
    };
    let (canary, baseline) = (sorted(&w.canary), sorted(&w.baseline));
    let name = "latency-vs-baseline";
    if canary.len() < 8 || baseline.len() < 8 {
        let reason = format!("{} canary and {} baseline samples; the test needs 8 of each", canary.len(), baseline.len());
        return Check { name: name.into(), verdict: Verdict::Inconclusive(reason), observed: None, threshold: Some(cfg.alpha), unit: "p".into(), detail: String::new() };
    }
    let p = mann_whitney_greater(&canary, &baseline);
    let (mc, mb) = (sdk::percentile_of_sorted(&canary, 50.0).unwrap_or(0.0), sdk::percentile_of_sorted(&baseline, 50.0).unwrap_or(0.0));
    let slowdown = if mb > 0.0 { 100.0 * (mc - mb) / mb } else { 0.0 };
    let detail = format!("median {mc:.1} ms (canary, n={}) vs {mb:.1} ms (baseline, n={}): {slowdown:+.1} %", canary.len(), baseline.len());
    let verdict = if p < cfg.alpha && slowdown >= cfg.min_slowdown_pct {
        Verdict::Fail(format!("canary is slower than baseline (Mann-Whitney p = {p:.2e} < {}, {slowdown:+.1} %)", cfg.alpha))
    } else {
        Verdict::Pass
    };
    Check { name: name.into(), verdict, observed: Some(p), threshold: Some(cfg.alpha), unit: "p".into(), detail }
}

/// One-sided p-value that `x` tends to be larger than `y`, both sorted by `f64::total_cmp`.
/// The two are merged in order, a group of tied values at a time (ties compare with `==`, as
/// the ranks of the pooled sample would), each member getting the group's average rank.
fn mann_whitney_greater(x: &[f64], y: &[f64]) -> f64 {
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let (mut rank_sum_x, mut tie_term) = (0.0, 0.0);
    let (mut i, mut k, mut start) = (0, 0, 0);
    while i < x.len() || k < y.len() {
        // The group starts at the smaller head, which it always takes (a NaN ties nothing).
        let from_x = k == y.len() || (i < x.len() && x[i].total_cmp(&y[k]).is_le());
        let v = if from_x { x[i] } else { y[k] };
        let (x0, y0) = (i, k);
        if from_x { i += 1 } else { k += 1 }
        while i < x.len() && x[i] == v {
            i += 1;
        }
        while k < y.len() && y[k] == v {
            k += 1;
        }
        let in_x = i - x0;
        let t = in_x + (k - y0);
        let end = start + t - 1;
        let avg_rank = (start + end) as f64 / 2.0 + 1.0;
        let t = t as f64;
        tie_term += t * t * t - t;
        rank_sum_x += in_x as f64 * avg_rank;
        start = end + 1;
    }
    p_greater(n1, n2, rank_sum_x, tie_term)
}

/// The one-sided p-value of the U statistic, given the rank sum of `x` (n1 values) in the
/// pooled sample and the tie term Σ(t³ − t) over its groups of tied values.
fn p_greater(n1: f64, n2: f64, rank_sum_x: f64, tie_term: f64) -> f64 {
    let u = rank_sum_x - n1 * (n1 + 1.0) / 2.0;
    let n = n1 + n2;
    let sigma = (n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
    if sigma == 0.0 {
        return 1.0;
    }
    let z = (u - n1 * n2 / 2.0 - 0.5) / sigma; // continuity correction
    1.0 - normal_cdf(z)
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2))
}

/// Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.3275911 * x.abs());
    let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * (-x * x).exp();
    if x >= 0.0 { y } else { -y }
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

#[cfg(test)]
mod tests {
    use super::{mann_whitney_greater, p_greater};

    /// The ranking as first written: the pooled sample sorted as (value, from-x) pairs.
    fn pooled(x: &[f64], y: &[f64]) -> f64 {
        let (n1, n2) = (x.len() as f64, y.len() as f64);
        let mut all: Vec<(f64, bool)> = x.iter().map(|&v| (v, true)).chain(y.iter().map(|&v| (v, false))).collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut rank_sum_x, mut tie_term, mut i) = (0.0, 0.0, 0);
        while i < all.len() {
            let mut j = i;
            while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
                j += 1;
            }
            let avg_rank = (i + j) as f64 / 2.0 + 1.0;
            let t = (j - i + 1) as f64;
            tie_term += t * t * t - t;
            rank_sum_x += all[i..=j].iter().filter(|e| e.1).count() as f64 * avg_rank;
            i = j + 1;
        }
        p_greater(n1, n2, rank_sum_x, tie_term)
    }

    #[test]
    fn merging_two_sorted_sides_gives_the_pooled_ranking_bit_for_bit() {
        // A small LCG: many samples with ties, both signed zeros and NaNs among them.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        let specials = [0.0, -0.0, f64::NAN, -f64::NAN, 1.5, f64::INFINITY];
        for case in 0..2_000 {
            let (n1, n2) = (1 + next() % 40, 1 + next() % 40);
            let mut side = |n: u64| -> Vec<f64> {
                (0..n)
                    .map(|_| match next() % 10 {
                        0 => specials[(next() % 6) as usize],
                        _ => (next() % (1 + case % 50)) as f64 * 0.5,
                    })
                    .collect()
            };
            let (mut x, mut y) = (side(n1), side(n2));
            let want = pooled(&x, &y);
            x.sort_unstable_by(f64::total_cmp);
            y.sort_unstable_by(f64::total_cmp);
            let got = mann_whitney_greater(&x, &y);
            assert_eq!(got.to_bits(), want.to_bits(), "case {case}: {x:?} vs {y:?}");
        }
    }
}
