//! A custom step: GET each configured path of the target and check its status code. The
//! simplest useful `step` plugin, and a template for a team's own.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "step-plugin",
    with: {
        "launch:plugin/types@0.1.0": launch_plugin_sdk::types,
        "launch:plugin/log@0.1.0": launch_plugin_sdk::log,
        "launch:plugin/http@0.1.0": launch_plugin_sdk::http,
    },
});

use exports::launch::plugin::describe;
use exports::launch::plugin::step::{self, StepContext};
use launch_plugin_sdk::{self as sdk, http, types::*};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Probe {
    path: String,
    #[serde(default = "ok_status")]
    expect_status: u16,
}

fn ok_status() -> u16 {
    200
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct Config {
    probes: Vec<Probe>,
}

impl Default for Config {
    fn default() -> Self {
        Config { probes: vec![Probe { path: "/api/health".into(), expect_status: 200 }] }
    }
}

const SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,
"properties":{"probes":{"type":"array","minItems":1,"items":{"type":"object","additionalProperties":false,"required":["path"],
"properties":{"path":{"type":"string"},"expect-status":{"type":"integer","minimum":100,"maximum":599}}}}}}"#;

struct Plugin;

impl describe::Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "health-check".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            role: Role::Step,
            description: "GET each configured API path and check its status code".into(),
            capabilities: vec![Capability::Log, Capability::Http],
            config_schema: Some(SCHEMA.into()),
        }
    }
}

impl step::Guest for Plugin {
    fn run(context: StepContext, config_json: String) -> StepReport {
        let cfg: Config = match sdk::parse_config(&config_json) {
            Ok(c) => c,
            Err(e) => return sdk::config_error(e),
        };
        let requests: Vec<_> =
            cfg.probes.iter().map(|p| sdk::get(format!("{}{}", context.target.api_base_url, p.path))).collect();
        let checks = cfg
            .probes
            .iter()
            .zip(http::send_batch(&requests, 8))
            .map(|(probe, result)| {
                let name = format!("GET {}", probe.path);
                match result {
                    Ok(resp) => Check {
                        verdict: if resp.status == probe.expect_status {
                            Verdict::Pass
                        } else {
                            Verdict::Fail(format!("answered {}, expected {}", resp.status, probe.expect_status))
                        },
                        observed: Some(resp.status as f64),
                        threshold: Some(probe.expect_status as f64),
                        unit: "status".into(),
                        detail: format!("{} in {:.1} ms", resp.final_url, resp.elapsed_us as f64 / 1000.0),
                        name,
                    },
                    Err(e) => sdk::check(&name, Verdict::NoData(sdk::describe_error(&e)), "request failed"),
                }
            })
            .collect();
        sdk::report(checks, &format!("health check ({})", context.stage))
    }
}

export!(Plugin);
