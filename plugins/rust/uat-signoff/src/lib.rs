//! UAT checklist of the operator guide (§7) and its gate (§12): every blocking item passed, at
//! least two approvals from the required roles, and no rejection.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "uat-checklist-plugin",
    with: {
        "launch:plugin/types@0.1.0": launch_plugin_sdk::types,
        "launch:plugin/log@0.1.0": launch_plugin_sdk::log,
        "launch:plugin/http@0.1.0": launch_plugin_sdk::http,
    },
});

use exports::launch::plugin::describe;
use exports::launch::plugin::uat_checklist::{self, Signoff, SignoffDecision, UatItem, UatOutcome, UatResult};
use launch_plugin_sdk::{self as sdk, types::*};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct Config {
    min_approvals: u32,
    required_roles: Vec<String>,
    /// Whether a blocking item recorded as skipped may pass (automated runs); otherwise it is
    /// inconclusive and needs a human.
    allow_skipped: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_approvals: 2,
            required_roles: ["qa_lead", "product_owner", "tech_lead", "operations"].map(String::from).to_vec(),
            allow_skipped: false,
        }
    }
}

const SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,
"properties":{"min-approvals":{"type":"integer","minimum":1},"required-roles":{"type":"array","items":{"type":"string"},"minItems":1},"allow-skipped":{"type":"boolean"}}}"#;

/// (id, category, title, expected, blocking, automated probe)
const ITEMS: &[(&str, &str, &str, &str, bool, Option<&str>)] = &[
    ("func_001", "functional", "Board loads with all status columns", "All five status columns render with cards", true, Some("/api/admin/appointments/board")),
    ("func_002", "functional", "Drag & drop moves a card", "Card moves, status persists after reload", true, None),
    ("func_003", "functional", "Appointment drawer opens with details", "Drawer shows customer, vehicle and services", true, Some("/api/appointments/1")),
    ("perf_001", "performance", "Board response time within SLO", "Board p95 below 800 ms", true, None),
    ("perf_002", "performance", "Interactions feel smooth", "No visible lag when dragging or opening the drawer", false, None),
    ("usab_001", "usability", "Interface is intuitive", "Testers find actions without guidance", false, None),
    ("usab_002", "usability", "Clear feedback on actions and errors", "Moves and conflicts show a clear message", false, None),
    ("rel_001", "reliability", "Concurrent edits are handled", "A conflicting move shows a conflict and a retry succeeds", true, None),
    ("rel_002", "reliability", "Network errors recover", "Board recovers after the network returns", false, None),
    ("int_001", "integration", "Dashboard KPIs update", "Stats change after a move", true, Some("/api/admin/dashboard/stats")),
    ("int_002", "integration", "Legacy board still works with the flag off", "Legacy view renders when the flag is 0", true, None),
    ("int_003", "integration", "Feature flags are respected", "Flag changes take effect without a deploy", false, Some("/api/admin/feature-flags")),
];

struct Plugin;

impl describe::Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "uat-signoff".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            role: Role::UatChecklist,
            description: "StatusBoardV2 UAT checklist; gate: blocking items pass, ≥ 2 approvals from required roles, no rejection".into(),
            capabilities: vec![Capability::Log],
            config_schema: Some(SCHEMA.into()),
        }
    }
}

impl uat_checklist::Guest for Plugin {
    fn checklist(_config_json: String) -> Vec<UatItem> {
        ITEMS
            .iter()
            .map(|&(id, category, title, expected, blocking, probe)| UatItem {
                id: id.into(),
                category: category.into(),
                title: title.into(),
                steps: vec![format!("Open the status board and check: {title}")],
                expected: expected.into(),
                blocking,
                automated_probe: probe.map(String::from),
            })
            .collect()
    }

    fn evaluate(results: Vec<UatResult>, signoffs: Vec<Signoff>, config_json: String) -> StepReport {
        let cfg: Config = match sdk::parse_config(&config_json) {
            Ok(c) => c,
            Err(e) => return sdk::config_error(e),
        };
        let mut checks = Vec::new();
        for &(id, _, title, ..) in ITEMS.iter().filter(|i| i.4) {
            // The latest result for an item wins: a re-test replaces an earlier failure.
            let latest = results.iter().filter(|r| r.id == id).max_by_key(|r| r.at_ms);
            let verdict = match latest.map(|r| r.outcome) {
                Some(UatOutcome::Pass) => Verdict::Pass,
                Some(UatOutcome::Fail) => Verdict::Fail(format!("{title}: failed")),
                Some(UatOutcome::Blocked) => Verdict::Fail(format!("{title}: blocked")),
                Some(UatOutcome::Skipped) if cfg.allow_skipped => Verdict::Pass,
                Some(UatOutcome::Skipped) => Verdict::Inconclusive(format!("{title}: skipped; test it or set allow-skipped")),
                None => Verdict::NoData(format!("{title}: not tested yet")),
            };
            let detail = latest.map_or(String::from("no result recorded"), |r| {
                format!("tested by {}: {}", r.tester, r.notes)
            });
            checks.push(sdk::check(id, verdict, detail));
        }

        let from_required = |s: &&Signoff| cfg.required_roles.iter().any(|r| r == &s.role);
        let approvals: Vec<&Signoff> = signoffs
            .iter()
            .filter(from_required)
            .filter(|s| matches!(s.decision, SignoffDecision::Approved))
            .collect();
        let who = approvals.iter().map(|s| format!("{} ({})", s.name, s.role)).collect::<Vec<_>>().join(", ");
        checks.push(Check {
            name: "stakeholder-approvals".into(),
            verdict: if approvals.len() as u32 >= cfg.min_approvals {
                Verdict::Pass
            } else {
                Verdict::Fail(format!("{} approval(s) from required roles, {} needed", approvals.len(), cfg.min_approvals))
            },
            observed: Some(approvals.len() as f64),
            threshold: Some(cfg.min_approvals as f64),
            unit: "approvals".into(),
            detail: format!("required roles: {}; approved by: {}", cfg.required_roles.join(", "), if who.is_empty() { "nobody" } else { &who }),
        });
        let rejections: Vec<String> = signoffs
            .iter()
            .filter(|s| matches!(s.decision, SignoffDecision::Rejected))
            .map(|s| format!("{} ({}): {}", s.name, s.role, s.note))
            .collect();
        checks.push(sdk::check(
            "no-rejections",
            if rejections.is_empty() { Verdict::Pass } else { Verdict::Fail(format!("rejected by {}", rejections.join("; "))) },
            format!("{} sign-off(s) recorded", signoffs.len()),
        ));
        sdk::report(checks, "UAT gate")
    }
}

export!(Plugin);
