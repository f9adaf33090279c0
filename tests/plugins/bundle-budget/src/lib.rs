//! A team's `step` plugin that reads the build output through a read-only folder grant
//! (`files = ["dist"]`, seen at `/dist`): the bundle stays under its size budget and no source
//! map ships. With `try-escapes` it also tries what the sandbox must refuse — writing into the
//! folder, `..`, an absolute path, a symlink pointing out — and reports each attempt, so the
//! host's tests can see the refusals from inside.

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
use launch_plugin_sdk::{self as sdk, types::*};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct Config {
    dir: String,
    max_kb: f64,
    /// Paths whose reading must fail (outside the grant).
    try_escapes: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config { dir: "/dist".into(), max_kb: 500.0, try_escapes: Vec::new() }
    }
}

/// Every file under `dir`: (path, bytes).
fn walk(dir: &str, out: &mut Vec<(String, u64)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = format!("{dir}/{}", entry.file_name().to_string_lossy());
        let meta = entry.metadata()?;
        if meta.is_dir() {
            walk(&path, out)?;
        } else {
            out.push((path, meta.len()));
        }
    }
    Ok(())
}

struct Plugin;

impl describe::Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "bundle-budget".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            role: Role::Step,
            description: "The build output stays under its size budget and ships no source map".into(),
            capabilities: vec![Capability::Log],
            config_schema: None,
        }
    }
}

impl step::Guest for Plugin {
    fn run(_context: StepContext, config_json: String) -> StepReport {
        let cfg: Config = match sdk::parse_config(&config_json) {
            Ok(c) => c,
            Err(e) => return sdk::config_error(e),
        };
        let mut files = Vec::new();
        if let Err(e) = walk(&cfg.dir, &mut files) {
            return sdk::report(
                vec![sdk::check("read-build", Verdict::NoData(format!("{}: {e}", cfg.dir)), "the granted folder")],
                "bundle budget",
            );
        }
        let total_kb = files.iter().map(|(_, n)| *n as f64).sum::<f64>() / 1024.0;
        let maps: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).filter(|p| p.ends_with(".map")).collect();
        let mut checks = vec![
            sdk::below("bundle-size", total_kb, cfg.max_kb, "KiB", format!("{} file(s) under {}", files.len(), cfg.dir)),
            sdk::check(
                "no-source-maps",
                if maps.is_empty() { Verdict::Pass } else { Verdict::Fail(format!("source maps ship: {}", maps.join(", "))) },
                format!("{} file(s) checked", files.len()),
            ),
        ];
        if !cfg.try_escapes.is_empty() {
            let written = std::fs::write(format!("{}/written-by-plugin.txt", cfg.dir), b"x");
            checks.push(refused("write-inside", written.map(|_| 1)));
            for path in &cfg.try_escapes {
                checks.push(refused(&format!("read {path}"), std::fs::read(path).map(|b| b.len())));
            }
        }
        sdk::report(checks, "bundle budget")
    }
}

/// An attempt the sandbox must refuse: a pass when it failed.
fn refused(name: &str, attempt: std::io::Result<usize>) -> Check {
    match attempt {
        Ok(n) => sdk::check(name, Verdict::Fail(format!("allowed: {n} byte(s)")), "the sandbox let it through"),
        Err(e) => sdk::check(name, Verdict::Pass, format!("refused: {e}")),
    }
}

export!(Plugin);
