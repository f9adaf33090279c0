//! The real `launch-host` binary: listing, inspecting and validating plugins, and clear errors
//! (with exit code 2) for files that are not usable plugins.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use support::*;

fn launch_host(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_launch-host"))
        .args(args)
        .env("LAUNCH_HOST_CACHE_DIR", cache_dir())
        .output()
        .expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const STOCK: [(&str, &str); 9] = [
    ("api-latency", "step"),
    ("canary-ratio", "canary-policy"),
    ("canary-steps", "canary-policy"),
    ("error-budget", "slo-gate"),
    ("health-check", "step"),
    ("site-assets", "smoke-suite"),
    ("slo-thresholds", "slo-gate"),
    ("statusboard-smoke", "smoke-suite"),
    ("uat-signoff", "uat-checklist"),
];

fn plugins_dir() -> String {
    for (name, _) in STOCK {
        stock_plugin(name);
    }
    repo().join("plugins").display().to_string()
}

#[test]
fn plugins_list_shows_every_stock_plugin_with_its_digest() {
    let out = launch_host(&[
        "plugins",
        "list",
        "--plugins",
        &plugins_dir(),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let plugins = doc["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), STOCK.len(), "{doc:#}");
    for (name, role) in STOCK {
        let p = plugins
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed"));
        assert_eq!(p["role"], role);
        assert_eq!(p["contract"], "0.1.0");
        let bytes = std::fs::read(stock_plugin(name)).unwrap();
        assert_eq!(p["digest"], hex::encode(Sha256::digest(&bytes)), "{name}");
        assert_eq!(p["size"], bytes.len() as u64);
        assert!(
            p["capabilities"]
                .as_array()
                .unwrap()
                .contains(&"log".into())
                || name == "slo-thresholds"
        );
    }
    assert_eq!(doc["rejected"].as_array().unwrap().len(), 0);

    let out = launch_host(&["plugins", "list", "--plugins", &plugins_dir()]);
    let table = text(&out.stdout);
    for (name, role) in STOCK {
        let line = table
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{table}"));
        assert!(line.contains(role) && line.contains("sha256:"), "{line}");
    }
}

#[test]
fn plugins_inspect_shows_imports_exports_and_contract() {
    let file = stock_plugin("statusboard-smoke");
    let out = launch_host(&["plugins", "inspect", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("launch:plugin/smoke-suite@0.1.0"), "{s}");
    assert!(s.contains("launch:plugin/describe@0.1.0"));
    assert!(
        s.contains("launch:plugin/http@0.1.0"),
        "imports are listed: {s}"
    );
    assert!(
        s.contains("contract:  launch:plugin@0.1.0 (this host: 0.1.0)"),
        "{s}"
    );
    assert!(
        s.contains("plugin:    statusboard-smoke 0.1.0 (smoke-suite)"),
        "{s}"
    );
}

#[test]
fn validate_loads_every_plugin_and_times_it() {
    let out = launch_host(&["validate", "--plugins", &plugins_dir(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = doc["plugins"].as_array().unwrap();
    assert_eq!(rows.len(), STOCK.len());
    for r in rows {
        assert!(r["warm_load_ms"].as_f64().unwrap() > 0.0);
        assert!(r["call_ms"].as_f64().unwrap() > 0.0);
        assert!(r["first_load"] == "cached" || r["first_load"] == "compiled");
    }
    let out = launch_host(&["validate", "--plugins", &plugins_dir()]);
    assert!(
        text(&out.stdout).contains("ok: 9 plugin(s) valid, 0 problem(s)"),
        "{}",
        text(&out.stdout)
    );
}

/// A directory holding one bad file next to a good plugin.
fn dir_with(name: &str, bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        stock_plugin("canary-steps"),
        dir.path().join("canary-steps.wasm"),
    )
    .unwrap();
    std::fs::write(dir.path().join(name), bytes).unwrap();
    dir
}

fn validate_fails(dir: &Path, expect: &[&str]) {
    let out = launch_host(&["validate", "--plugins", dir.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}\nstderr: {err}",
        text(&out.stdout)
    );
    for e in expect {
        assert!(err.contains(e), "expected `{e}` in:\n{err}");
    }
    assert!(
        text(&out.stdout).contains("FAILED: 1 plugin(s) valid"),
        "the good plugin still loads"
    );
}

#[test]
fn a_text_file_named_wasm_is_rejected_by_name() {
    let dir = dir_with("notes.wasm", b"these are my release notes\n");
    validate_fails(
        dir.path(),
        &[
            "notes.wasm: not a WebAssembly file",
            "a text file starting with \"these are my release notes\"",
            "launch:plugin@0.1.x",
        ],
    );
}

#[test]
fn a_core_module_is_rejected_with_the_fix() {
    let dir = dir_with("core.wasm", b"\0asm\x01\0\0\0");
    validate_fails(
        dir.path(),
        &[
            "core.wasm: a core WebAssembly module, not a component",
            "wasm32-wasip2",
        ],
    );
}

#[test]
fn a_component_of_another_world_implements_no_role() {
    let dir = dir_with(
        "cmd.wasm",
        &std::fs::read(test_plugin("not-a-plugin")).unwrap(),
    );
    validate_fails(
        dir.path(),
        &[
            "cmd.wasm: implements no launch-host role",
            "wasi:cli/run@",
            "launch:plugin/describe",
        ],
    );
}

#[test]
fn an_incompatible_contract_names_both_versions() {
    let dir = dir_with(
        "future.wasm",
        &std::fs::read(test_plugin("future-contract")).unwrap(),
    );
    validate_fails(
        dir.path(),
        &[
            "future.wasm: built against launch:plugin@9.0.0",
            "this host speaks launch:plugin@0.1.0",
        ],
    );
}

#[test]
fn duplicate_plugin_names_are_refused() {
    let dir = dir_with(
        "again.wasm",
        &std::fs::read(stock_plugin("canary-steps")).unwrap(),
    );
    let out = launch_host(&["plugins", "list", "--plugins", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("plugin name `canary-steps` is claimed by both"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_missing_plugin_directory_is_a_usage_error() {
    let out = launch_host(&["validate", "--plugins", "/nonexistent/plugins"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("/nonexistent/plugins: cannot list the plugin directory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn help_has_examples_and_exit_codes() {
    let out = launch_host(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let s = text(&out.stdout);
    assert!(s.contains("Examples:") && s.contains("Exit codes:"), "{s}");
    let out = launch_host(&["plugins", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The embedded default runbook with one line changed.
fn runbook_with(from: &str, to: &str) -> tempfile::NamedTempFile {
    let text = std::fs::read_to_string(
        repo().join("crates/launch-engine/src/runbook/default-runbook.toml"),
    )
    .unwrap();
    assert!(text.contains(from), "{from} not in the default runbook");
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), text.replacen(from, to, 1)).unwrap();
    file
}

#[test]
fn validate_checks_the_default_runbook_against_the_plugins() {
    let out = launch_host(&[
        "validate",
        "--plugins",
        &plugins_dir(),
        "--runbook",
        "embedded",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("and (embedded default runbook)"));
}

#[test]
fn validate_without_a_runbook_checks_the_plugins_alone() {
    // One new plugin on its own: the embedded runbook would miss its smoke suite and UAT
    // plugins, but nobody asked about a runbook.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        stock_plugin("canary-steps"),
        dir.path().join("canary-steps.wasm"),
    )
    .unwrap();
    let out = launch_host(&["validate", "--plugins", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("no runbook checked"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn validate_refuses_two_plugins_claiming_one_name() {
    let dir = dir_with(
        "canary-steps-copy.wasm",
        &std::fs::read(stock_plugin("canary-steps")).unwrap(),
    );
    let out = launch_host(&["validate", "--plugins", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("plugin name `canary-steps` is claimed by both")
            && err.contains("canary-steps-copy.wasm"),
        "{err}"
    );
}

#[test]
fn validate_catches_a_gate_that_can_never_fail() {
    let book = runbook_with(
        "config = { min-requests = 10 }",
        "config = { min-requests = 10, objectives = [{ endpoint = \"board\", metric = \"p95\", below = 1e12 }] }",
    );
    let out = launch_host(&[
        "validate",
        "--plugins",
        &plugins_dir(),
        "--runbook",
        book.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("passes even when every request fails")
            && err.contains("stage `production-validation`"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:87:", book.path().display())),
        "the line is named: {err}"
    );
}

#[test]
fn validate_rejects_config_the_plugin_schema_refuses() {
    let book = runbook_with(
        "config = { samples = 20 }",
        "config = { samples = \"many\" }",
    );
    let out = launch_host(&[
        "validate",
        "--plugins",
        &plugins_dir(),
        "--runbook",
        book.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("config rejected by `statusboard-smoke`'s schema") && err.contains("/samples"),
        "{err}"
    );
}

/// The guide's variables, as an operator exports them.
const GUIDE_VARS: [(&str, &str); 5] = [
    ("STAGING_URL", "https://staging.example.com"),
    ("STAGING_API_BASE_URL", "https://staging-api.example.com"),
    ("PROD_URL", "https://example.com"),
    ("S3_BUCKET", "my-site-bucket"),
    ("CLOUDFRONT_DIST_ID", "E1234567890123"),
];

#[test]
fn the_aws_example_takes_the_guides_variables_and_names_a_missing_one() {
    let book = repo().join("examples/aws-launch.toml");
    let mut c = Command::new(env!("CARGO_BIN_EXE_launch-host"));
    c.args(["validate", "--plugins", &plugins_dir(), "--runbook"])
        .arg(&book)
        .env("LAUNCH_HOST_CACHE_DIR", cache_dir());
    for (k, v) in GUIDE_VARS {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let mut c = Command::new(env!("CARGO_BIN_EXE_launch-host"));
    c.args(["validate", "--plugins", &plugins_dir(), "--runbook"])
        .arg(&book)
        .env("LAUNCH_HOST_CACHE_DIR", cache_dir());
    for (k, v) in GUIDE_VARS
        .iter()
        .filter(|(k, _)| *k != "CLOUDFRONT_DIST_ID")
    {
        c.env(k, v);
    }
    c.env_remove("CLOUDFRONT_DIST_ID");
    let out = c.output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("aws-launch.toml:")
            && err.contains("`${CLOUDFRONT_DIST_ID}` is not set; export CLOUDFRONT_DIST_ID="),
        "{err}"
    );
}

#[test]
fn validate_takes_a_canary_that_compares_with_its_baseline_and_refuses_a_gate_in_a_canarys_place() {
    // canary-ratio judges the canary against the baseline: fed a failing canary beside a
    // healthy baseline it rolls back, so it is no gate that can never fail (8fddcc8 said it
    // was, then `run` accepted it).
    let book = runbook_with(
        "plugin = \"canary-steps\"\nrole = \"canary-policy\"\nenvironment = \"staging\"",
        "plugin = \"canary-ratio\"\nrole = \"canary-policy\"\nenvironment = \"staging\"",
    );
    let out = launch_host(&[
        "validate",
        "--plugins",
        &plugins_dir(),
        "--runbook",
        book.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("can never roll back"));

    // An SLO gate named where the runbook expects a canary policy: refused at its line, not
    // run as a gate that never moves the flag.
    let book = runbook_with(
        "plugin = \"canary-steps\"\nrole = \"canary-policy\"\nenvironment = \"staging\"",
        "plugin = \"error-budget\"\nrole = \"canary-policy\"\nenvironment = \"staging\"",
    );
    let out = launch_host(&[
        "validate",
        "--plugins",
        &plugins_dir(),
        "--runbook",
        book.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("stage `staging-canary`: the stage expects a canary-policy (role = \"canary-policy\"), and `error-budget` is a slo-gate"),
        "{err}"
    );
}
