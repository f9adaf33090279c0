//! Smoke suite for StatusBoardV2 (operator guide §3): site and API reachable, feature markers
//! served, board p95 and drawer average within budget, CORS present, no secrets in the page.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "smoke-suite-plugin",
    with: {
        "launch:plugin/types@0.1.0": launch_plugin_sdk::types,
        "launch:plugin/log@0.1.0": launch_plugin_sdk::log,
        "launch:plugin/http@0.1.0": launch_plugin_sdk::http,
    },
});

use exports::launch::plugin::{describe, smoke_suite};
use launch_plugin_sdk::{self as sdk, http, types::*};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct Config {
    site_path: String,
    health_path: String,
    board_path: String,
    stats_path: String,
    drawer_path: String,
    /// The move endpoint; `{id}` is replaced by the appointment id.
    move_path: String,
    /// Text the served page must contain to prove the V2 build is live.
    marker: String,
    /// Requests per latency measurement.
    samples: u32,
    concurrency: u32,
    board_p95_ms: f64,
    drawer_avg_ms: f64,
    /// `quick`: the essential checks (site, marker, health, board and drawer latency);
    /// `full`: also assets and their cache headers, secrets, CORS, stats and OCC.
    mode: Mode,
}

#[derive(serde::Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    Quick,
    Full,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            site_path: "/".into(),
            health_path: "/api/health".into(),
            board_path: "/api/admin/appointments/board".into(),
            stats_path: "/api/admin/dashboard/stats".into(),
            drawer_path: "/api/appointments/1".into(),
            move_path: "/api/admin/appointments/{id}/move".into(),
            marker: "StatusBoardV2".into(),
            samples: 20,
            concurrency: 4,
            board_p95_ms: 800.0,
            drawer_avg_ms: 200.0,
            mode: Mode::Full,
        }
    }
}

const SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,
"properties":{"site-path":{"type":"string"},"health-path":{"type":"string"},"board-path":{"type":"string"},
"stats-path":{"type":"string"},"drawer-path":{"type":"string"},"move-path":{"type":"string"},"marker":{"type":"string"},
"samples":{"type":"integer","minimum":1,"maximum":10000},"concurrency":{"type":"integer","minimum":1,"maximum":256},
"board-p95-ms":{"type":"number","exclusiveMinimum":0},"drawer-avg-ms":{"type":"number","exclusiveMinimum":0},
"mode":{"enum":["quick","full"]}}}"#;

struct Plugin;

impl describe::Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "statusboard-smoke".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            role: Role::SmokeSuite,
            description: "StatusBoardV2 staging smoke tests: reachability, features, latency budgets, CORS, secrets".into(),
            capabilities: vec![Capability::Log, Capability::Http],
            config_schema: Some(SCHEMA.into()),
        }
    }
}

impl smoke_suite::Guest for Plugin {
    fn run(target: Target, config_json: String) -> StepReport {
        let cfg: Config = match sdk::parse_config(&config_json) {
            Ok(c) => c,
            Err(e) => return sdk::config_error(e),
        };
        sdk::info(format!("smoke suite against {} ({})", target.base_url, target.environment));
        let mut checks = Vec::new();
        let full = cfg.mode == Mode::Full;
        let site = format!("{}{}", target.base_url, cfg.site_path);
        let api = |p: &str| format!("{}{}", target.api_base_url, p);

        match http::send(&sdk::get(&site)) {
            Ok(resp) => {
                checks.push(status_check("site-reachable", &site, &resp));
                let body = String::from_utf8_lossy(&resp.body);
                checks.push(sdk::check(
                    "feature-marker",
                    if body.contains(&cfg.marker) {
                        Verdict::Pass
                    } else {
                        Verdict::Fail(format!("page does not contain `{}`", cfg.marker))
                    },
                    format!("looked for `{}` in {site}", cfg.marker),
                ));
                if full {
                    checks.push(secrets_check(&body, &site));
                    checks.extend(asset_checks(&body, &target.base_url));
                }
            }
            Err(e) => checks.push(unreachable("site-reachable", &site, &e)),
        }

        let endpoints: &[(&str, &String)] = if full {
            &[("api-health", &cfg.health_path), ("api-stats", &cfg.stats_path)]
        } else {
            &[("api-health", &cfg.health_path)]
        };
        for &(name, path) in endpoints {
            let url = api(path);
            match http::send(&sdk::get(&url)) {
                Ok(resp) => {
                    checks.push(status_check(name, &url, &resp));
                    if name == "api-health" && full {
                        let cors = sdk::header(&resp, "access-control-allow-origin");
                        checks.push(sdk::check(
                            "cors-headers",
                            match cors {
                                Some(_) => Verdict::Pass,
                                None => Verdict::Fail("no Access-Control-Allow-Origin header".into()),
                            },
                            format!("{url} answered Access-Control-Allow-Origin: {}", cors.unwrap_or("(none)")),
                        ));
                    }
                }
                Err(e) => checks.push(unreachable(name, &url, &e)),
            }
        }

        let board = latencies(&api(&cfg.board_path), cfg.samples, cfg.concurrency);
        checks.push(latency_check("board-p95", "p95", &board, cfg.board_p95_ms, &api(&cfg.board_path)));
        let drawer = latencies(&api(&cfg.drawer_path), cfg.samples, cfg.concurrency);
        checks.push(latency_check("drawer-avg", "avg", &drawer, cfg.drawer_avg_ms, &api(&cfg.drawer_path)));

        if full {
            checks.push(occ_check(&api(&cfg.drawer_path), &api(&cfg.move_path)));
        }
        sdk::report(checks, if full { "smoke tests (full)" } else { "smoke tests (quick)" })
    }
}

fn status_check(name: &str, url: &str, resp: &http::Response) -> Check {
    let ok = (200..300).contains(&resp.status);
    Check {
        name: name.into(),
        verdict: if ok { Verdict::Pass } else { Verdict::Fail(format!("{url} answered {}", resp.status)) },
        observed: Some(resp.status as f64),
        threshold: None,
        unit: "status".into(),
        detail: format!("GET {url} → {} in {:.1} ms", resp.status, resp.elapsed_us as f64 / 1000.0),
    }
}

fn unreachable(name: &str, url: &str, e: &http::Error) -> Check {
    let reason = format!("{url}: {}", sdk::describe_error(e));
    let verdict = match e {
        // A refused request is a misconfigured grant, not an absent target.
        http::Error::Denied(_) | http::Error::InvalidRequest(_) => Verdict::Fail(reason.clone()),
        _ => Verdict::NoData(reason.clone()),
    };
    sdk::check(name, verdict, reason)
}

/// Outcome of a latency measurement: successful latencies in ms, and the failures.
struct Latencies {
    ok_ms: Vec<f64>,
    failures: Vec<String>,
}

fn latencies(url: &str, samples: u32, concurrency: u32) -> Latencies {
    let requests: Vec<_> = (0..samples).map(|_| sdk::get(url)).collect();
    let mut out = Latencies { ok_ms: Vec::new(), failures: Vec::new() };
    for result in http::send_batch(&requests, concurrency) {
        match result {
            Ok(r) if (200..300).contains(&r.status) => out.ok_ms.push(r.elapsed_us as f64 / 1000.0),
            Ok(r) => out.failures.push(format!("status {}", r.status)),
            Err(e) => out.failures.push(sdk::describe_error(&e)),
        }
    }
    out
}

fn latency_check(name: &str, stat: &str, l: &Latencies, threshold: f64, url: &str) -> Check {
    let value = if stat == "p95" { sdk::percentile(&l.ok_ms, 95.0) } else { sdk::mean(&l.ok_ms) };
    let detail = format!("{stat} of {} successful GET {url} ({} failed)", l.ok_ms.len(), l.failures.len());
    match value {
        None => Check {
            name: name.into(),
            verdict: Verdict::NoData(format!("no successful samples: {}", l.failures.first().map_or("", |s| s))),
            observed: None,
            threshold: Some(threshold),
            unit: "ms".into(),
            detail,
        },
        Some(_) if !l.failures.is_empty() => Check {
            name: name.into(),
            verdict: Verdict::Fail(format!("{} of {} requests failed ({})", l.failures.len(), l.failures.len() + l.ok_ms.len(), l.failures[0])),
            observed: value,
            threshold: Some(threshold),
            unit: "ms".into(),
            detail,
        },
        Some(v) => sdk::below(name, v, threshold, "ms", detail),
    }
}

/// Every `/assets/...` the page links must load, and hashed assets must be cacheable for good.
fn asset_checks(page: &str, base_url: &str) -> Vec<Check> {
    let assets: Vec<&str> = page
        .split(['"', '\''])
        .filter(|s| s.starts_with("/assets/"))
        .collect();
    if assets.is_empty() {
        return vec![sdk::check("assets", Verdict::Fail("the page links no /assets/".into()), "looked for src/href=\"/assets/...\"")];
    }
    let requests: Vec<_> = assets.iter().map(|a| sdk::get(format!("{base_url}{a}"))).collect();
    assets
        .iter()
        .zip(http::send_batch(&requests, 4))
        .map(|(asset, result)| {
            let name = format!("asset {asset}");
            match result {
                Ok(r) if (200..300).contains(&r.status) => {
                    let cache = sdk::header(&r, "cache-control").unwrap_or("");
                    let verdict = if cache.contains("immutable") || cache.contains("max-age=31536000") {
                        Verdict::Pass
                    } else {
                        Verdict::Fail(format!("Cache-Control `{cache}` is not long-lived for a hashed asset"))
                    };
                    sdk::check(&name, verdict, format!("{} bytes, Cache-Control: {cache}", r.body.len()))
                }
                Ok(r) => sdk::check(&name, Verdict::Fail(format!("answered {}", r.status)), ""),
                Err(e) => unreachable(&name, asset, &e),
            }
        })
        .collect()
}

/// Optimistic concurrency (guide §3): a move naming a stale version must be answered 409, and
/// a retry with the current version must succeed.
fn occ_check(drawer_url: &str, move_template: &str) -> Check {
    let name = "occ-conflict-and-retry";
    let current = match http::send(&sdk::get(drawer_url)) {
        Ok(r) if (200..300).contains(&r.status) => String::from_utf8_lossy(&r.body).into_owned(),
        Ok(r) => return sdk::check(name, Verdict::Fail(format!("{drawer_url} answered {}", r.status)), ""),
        Err(e) => return unreachable(name, drawer_url, &e),
    };
    let field = |key: &str| -> Option<String> {
        let at = current.find(&format!("\"{key}\":"))? + key.len() + 3;
        let rest = current[at..].trim_start().trim_start_matches('"');
        Some(rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
    };
    let (Some(id), Some(version)) = (field("id"), field("version").and_then(|v| v.parse::<u64>().ok())) else {
        return sdk::check(name, Verdict::Fail(format!("{drawer_url} has no id/version to move with")), current);
    };
    let status = field("status").unwrap_or_else(|| "scheduled".into());
    let url = move_template.replace("{id}", &id);
    let patch = |v: u64| http::Request {
        method: http::Method::Patch,
        url: url.clone(),
        headers: vec![http::Header { name: "content-type".into(), value: "application/json".into() }],
        body: format!("{{\"status\":\"{status}\",\"version\":{v}}}").into_bytes(),
        timeout_ms: None,
        follow_redirects: Some(false),
    };
    let stale = http::send(&patch(version.wrapping_sub(1)));
    let retry = http::send(&patch(version));
    let (stale_status, retry_status) = (stale.as_ref().map_or(0, |r| r.status), retry.as_ref().map_or(0, |r| r.status));
    let verdict = match (stale_status, retry_status) {
        (409, 200..=299) => Verdict::Pass,
        (409, s) => Verdict::Fail(format!("the retry with the current version answered {s}")),
        (s, _) => Verdict::Fail(format!("a stale move answered {s}, expected 409 Conflict")),
    };
    Check {
        name: name.into(),
        verdict,
        observed: Some(stale_status as f64),
        threshold: Some(409.0),
        unit: "status".into(),
        detail: format!("PATCH {url} with stale version {} → {stale_status}; retry with {version} → {retry_status}", version.wrapping_sub(1)),
    }
}

/// Credentials that must never be served to a browser.
fn secrets_check(body: &str, url: &str) -> Check {
    let aws_key = body.match_indices("AKIA").any(|(i, _)| {
        body[i + 4..].chars().take(16).filter(|c| c.is_ascii_uppercase() || c.is_ascii_digit()).count() == 16
    });
    let private_key = body.contains("-----BEGIN") && body.contains("PRIVATE KEY-----");
    let found: Vec<&str> = [(aws_key, "an AWS access key id"), (private_key, "a private key")]
        .into_iter()
        .filter_map(|(hit, what)| hit.then_some(what))
        .collect();
    sdk::check(
        "no-secrets-exposed",
        if found.is_empty() { Verdict::Pass } else { Verdict::Fail(format!("{url} serves {}", found.join(" and "))) },
        format!("scanned {} bytes of {url} for AWS key ids and private keys", body.len()),
    )
}

export!(Plugin);
