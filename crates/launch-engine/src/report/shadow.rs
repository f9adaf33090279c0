//! The "live vs shadow" part of the reports: per shadow policy, how often it was asked, agreed,
//! disagreed and failed, and every disagreement with the numbers the shadow gave.

use serde::Serialize;

use super::{StageReport, numbers};
use crate::record::CheckRecord;

/// One shadow answer, as journaled.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowAnswer {
    pub at_ms: u64,
    pub plugin: String,
    pub percent: Option<u8>,
    pub live: String,
    pub shadow: String,
    pub agrees: bool,
    pub summary: String,
    pub checks: Vec<CheckRecord>,
    pub failed: Option<String>,
}

/// A shadow's tally on one stage.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub asked: usize,
    pub agreed: usize,
    pub disagreed: usize,
    pub failed: usize,
}

/// Per shadow plugin of the stage, in the order first asked.
pub fn tallies(s: &StageReport) -> Vec<(String, Tally)> {
    let mut out: Vec<(String, Tally)> = Vec::new();
    for a in &s.shadows {
        let i = match out.iter().position(|(p, _)| *p == a.plugin) {
            Some(i) => i,
            None => {
                out.push((a.plugin.clone(), Tally::default()));
                out.len() - 1
            }
        };
        let t = &mut out[i].1;
        t.asked += 1;
        match (a.failed.is_some(), a.agrees) {
            (true, _) => t.failed += 1,
            (false, true) => t.agreed += 1,
            (false, false) => t.disagreed += 1,
        }
    }
    out
}

/// Where a disagreement happened: the canary's percentage, or the stage.
pub fn place(a: &ShadowAnswer) -> String {
    a.percent
        .map_or_else(|| "stage".into(), |p| format!("{p}%"))
}

/// The shadow's reasons: its failing checks with their numbers, else its summary.
pub fn reasons(a: &ShadowAnswer) -> String {
    if let Some(why) = &a.failed {
        return format!("failed: {why}");
    }
    // The numbers of failing checks the summary does not already give.
    let failing: Vec<String> = a
        .checks
        .iter()
        .filter(|c| !c.verdict.is_pass() && !a.summary.contains(c.name.as_str()))
        .map(|c| format!("{} {}", c.name, numbers(c)))
        .collect();
    if failing.is_empty() {
        a.summary.clone()
    } else {
        format!("{} ({})", a.summary, failing.join("; "))
    }
}

/// Markdown: a tally table and the disagreements, or nothing without shadows.
pub fn markdown(s: &StageReport) -> String {
    if s.shadows.is_empty() {
        return String::new();
    }
    let cell = |t: &str| t.replace('|', "\\|");
    let mut out = format!(
        "\n### {} — live vs shadow\n\n| shadow | asked | agreed | disagreed | failed |\n|---|---|---|---|---|\n",
        s.title
    );
    for (plugin, t) in tallies(s) {
        out.push_str(&format!(
            "| `{plugin}` | {} | {} | {} | {} |\n",
            t.asked, t.agreed, t.disagreed, t.failed
        ));
    }
    let disagreements: Vec<&ShadowAnswer> = s.shadows.iter().filter(|a| !a.agrees).collect();
    if !disagreements.is_empty() {
        out.push_str("\n| at | live | shadow | shadow's reasons |\n|---|---|---|---|\n");
        for a in disagreements {
            out.push_str(&format!(
                "| {} | {} | `{}`: {} | {} |\n",
                place(a),
                cell(&a.live),
                a.plugin,
                cell(&a.shadow),
                cell(&reasons(a))
            ));
        }
    }
    out
}
