//! JUnit XML: one test suite per stage, one test case per check. Fail is a failure; no-data and
//! inconclusive are failures too (they never count as a pass), typed so CI can tell them apart.

use super::{RunReport, numbers};
use crate::record::VerdictRecord;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 forbids most control characters even when escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

pub fn render(r: &RunReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total: usize = r.stages.iter().map(|s| s.checks.len().max(1)).sum();
    let skipped: usize = r
        .stages
        .iter()
        .map(|s| s.checks.iter().filter(|c| c.skipped).count())
        .sum();
    let failing = |v: &Option<VerdictRecord>| !matches!(v, Some(VerdictRecord::Pass));
    let failures: usize = r
        .stages
        .iter()
        .map(|s| {
            if s.checks.is_empty() {
                usize::from(failing(&s.verdict))
            } else {
                s.checks.iter().filter(|c| !c.verdict.is_pass()).count()
            }
        })
        .sum();
    out.push_str(&format!(
        "<testsuites name=\"launch-host run {}\" tests=\"{total}\" failures=\"{failures}\" skipped=\"{skipped}\">\n",
        escape(&r.run_id)
    ));
    for s in &r.stages {
        let fails = s.checks.iter().filter(|c| !c.verdict.is_pass()).count();
        let skips = s.checks.iter().filter(|c| c.skipped).count();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\" skipped=\"{skips}\" time=\"{:.3}\">\n",
            escape(&s.name),
            s.checks.len().max(1),
            s.elapsed_ms as f64 / 1000.0
        ));
        if s.checks.is_empty() {
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\">",
                escape(&s.name),
                escape(&s.title)
            ));
            if let Some(v) = s.verdict.as_ref().filter(|v| !v.is_pass()) {
                out.push_str(&format!(
                    "<failure type=\"{}\" message=\"{}\"/>",
                    v.word(),
                    escape(v.reason())
                ));
            } else if s.verdict.is_none() {
                out.push_str("<skipped message=\"stage did not finish\"/>");
            }
            out.push_str("</testcase>\n");
        }
        for c in &s.checks {
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\">",
                escape(&s.name),
                escape(&c.name)
            ));
            if c.skipped {
                out.push_str(&format!("<skipped message=\"{}\"/>", escape(&c.detail)));
            } else if !c.verdict.is_pass() {
                out.push_str(&format!(
                    "<failure type=\"{}\" message=\"{}\">{}</failure>",
                    c.verdict.word(),
                    escape(c.verdict.reason()),
                    escape(&format!("{} {}", numbers(c), c.detail))
                ));
            } else {
                out.push_str(&format!(
                    "<system-out>{}</system-out>",
                    escape(format!("{} {}", numbers(c), c.detail).trim())
                ));
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
