//! Guest-side helpers for launch-host plugins written in Rust.
//!
//! The shared contract types (`types`) and the host capabilities (`log`, `http`) are generated
//! here once; a plugin generates only its own world and maps these interfaces to this crate with
//! `with:` so every plugin speaks the same Rust types and shares the helpers below.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "capabilities",
    generate_all,
});

pub use launch::plugin::{http, log, types};

pub mod arena;
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
mod panic;

/// Every plugin built on this crate allocates from a per-call arena (`arena`); a plugin that
/// brings its own global allocator turns the `call-arena` feature off.
#[cfg(all(feature = "call-arena", target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: arena::CallArena = arena::CallArena::new();

use types::{Check, StepReport, Verdict};

/// The verdict of a whole step, from its checks: any failure fails the step; otherwise anything
/// inconclusive makes it inconclusive; otherwise any missing data makes it no-data. A step with no
/// checks has no data: an empty report must never read as a pass.
pub fn overall(checks: &[Check]) -> Verdict {
    let first = |pick: fn(&Verdict) -> Option<&String>| {
        checks.iter().find_map(|c| pick(&c.verdict).map(|r| format!("{}: {r}", c.name)))
    };
    if let Some(r) = first(|v| if let Verdict::Fail(r) = v { Some(r) } else { None }) {
        return Verdict::Fail(r);
    }
    if let Some(r) = first(|v| if let Verdict::Inconclusive(r) = v { Some(r) } else { None }) {
        return Verdict::Inconclusive(r);
    }
    if let Some(r) = first(|v| if let Verdict::NoData(r) = v { Some(r) } else { None }) {
        return Verdict::NoData(r);
    }
    if checks.is_empty() {
        return Verdict::NoData("no checks ran".into());
    }
    Verdict::Pass
}

/// A report whose verdict is derived from its checks and whose summary counts them.
pub fn report(checks: Vec<Check>, what: &str) -> StepReport {
    let verdict = overall(&checks);
    let passed = checks.iter().filter(|c| matches!(c.verdict, Verdict::Pass)).count();
    let summary = format!("{what}: {passed}/{} checks passed — {}", checks.len(), verdict_word(&verdict));
    StepReport { verdict, checks, summary }
}

/// A report for a config the plugin cannot use: the step fails loudly instead of passing on
/// defaults the operator did not mean.
pub fn config_error(err: impl std::fmt::Display) -> StepReport {
    let reason = format!("invalid config: {err}");
    StepReport { verdict: Verdict::Fail(reason.clone()), checks: Vec::new(), summary: reason }
}

pub fn verdict_word(v: &Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail(_) => "FAIL",
        Verdict::Inconclusive(_) => "INCONCLUSIVE",
        Verdict::NoData(_) => "NO DATA",
    }
}

/// Parses a stage's `config-json`; an empty string means "all defaults". Unknown fields are an
/// error in the plugins' config structs (`deny_unknown_fields`), so a typo never silently
/// falls back to a default threshold.
pub fn parse_config<T: serde::de::DeserializeOwned + Default>(json: &str) -> Result<T, String> {
    if json.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(json).map_err(|e| e.to_string())
}

/// A check of the form "observed must stay below threshold" (the guide's `p95 < 800 ms`).
pub fn below(name: &str, observed: f64, threshold: f64, unit: &str, detail: String) -> Check {
    let verdict = if observed < threshold {
        Verdict::Pass
    } else {
        Verdict::Fail(format!("{observed:.1} {unit} is not below {threshold} {unit}"))
    };
    Check { name: name.into(), verdict, observed: Some(observed), threshold: Some(threshold), unit: unit.into(), detail }
}

/// A check with no numbers behind it.
pub fn check(name: &str, verdict: Verdict, detail: impl Into<String>) -> Check {
    Check { name: name.into(), verdict, observed: None, threshold: None, unit: String::new(), detail: detail.into() }
}

/// Log at info level through the host.
pub fn info(msg: impl AsRef<str>) {
    log::log(log::Level::Info, msg.as_ref());
}

/// Log at warn level through the host.
pub fn warn(msg: impl AsRef<str>) {
    log::log(log::Level::Warn, msg.as_ref());
}

/// A GET request with the stage's default timeout.
pub fn get(url: impl Into<String>) -> http::Request {
    http::Request {
        method: http::Method::Get,
        url: url.into(),
        headers: Vec::new(),
        body: Vec::new(),
        timeout_ms: None,
        follow_redirects: None,
    }
}

/// The value of a response header, compared case-insensitively.
pub fn header<'a>(resp: &'a http::Response, name: &str) -> Option<&'a str> {
    resp.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
}

/// A short description of an HTTP error for a check's reason.
pub fn describe_error(e: &http::Error) -> String {
    match e {
        http::Error::Denied(m) => format!("denied by host: {m}"),
        http::Error::Timeout(m) => format!("timed out: {m}"),
        http::Error::Connect(m) => format!("connection failed: {m}"),
        http::Error::InvalidRequest(m) => format!("invalid request: {m}"),
        http::Error::Protocol(m) => format!("protocol error: {m}"),
    }
}

/// Nearest-rank percentile (p in 0..=100) of unsorted values; None when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let nth = nearest_rank(values.len(), p)?;
    // Nearest rank is one order statistic: selecting it is linear, where sorting the whole
    // copy took a large part of a canary decision's time in the guest.
    let mut v = values.to_vec();
    let (_, nth, _) = v.select_nth_unstable_by(nth, f64::total_cmp);
    Some(*nth)
}

/// `percentile` of values already sorted by `f64::total_cmp`, without copying them.
pub fn percentile_of_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    nearest_rank(sorted.len(), p).map(|nth| sorted[nth])
}

/// The index of the nearest-rank p-th percentile among `len` sorted values.
fn nearest_rank(len: usize, p: f64) -> Option<usize> {
    let rank = ((p / 100.0) * len as f64).ceil().max(1.0) as usize;
    (len > 0).then(|| rank.min(len) - 1)
}

pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::{percentile, percentile_of_sorted};

    #[test]
    fn a_percentile_is_the_nearest_ranked_value_of_the_sorted_sample() {
        let values = [5.0, f64::INFINITY, 1.0, 3.0, -0.0, 0.0, 2.0, 4.0, 3.0, 100.0];
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        for p in [0.0_f64, 1.0, 10.0, 25.0, 49.9, 50.0, 50.1, 90.0, 95.0, 99.0, 100.0, 150.0] {
            // Nearest rank: the ceil(p/100 · n)-th smallest value, at least the first.
            let rank = (p / 100.0 * 10.0).ceil().clamp(1.0, 10.0) as usize;
            let want = sorted[rank - 1];
            assert_eq!(percentile(&values, p).map(f64::to_bits), Some(want.to_bits()), "p{p}");
            assert_eq!(percentile_of_sorted(&sorted, p).map(f64::to_bits), Some(want.to_bits()), "p{p}");
        }
        // Sorted: -0, 0, 1, 2, 3, 3, 4, 5, 100, inf.
        for (p, want) in [(0.0, -0.0), (25.0, 1.0), (50.0, 3.0), (90.0, 100.0), (95.0, f64::INFINITY)] {
            assert_eq!(percentile(&values, p).map(f64::to_bits), Some(f64::to_bits(want)), "p{p}");
        }
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile_of_sorted(&[], 50.0), None);
    }
}
