//! Plugins are untrusted: whatever they return is cut to sizes a journal, a report and a
//! terminal can hold, and numbers that are not numbers are dropped.

use crate::capabilities::bindings::types::{Check, PluginInfo, StepReport, Verdict};
pub use crate::text::truncate;

/// Longest summary, reason or detail kept.
pub const MAX_TEXT: usize = 16 << 10;
/// Longest name kept.
pub const MAX_NAME: usize = 256;
/// Most checks kept in one report.
pub const MAX_CHECKS: usize = 1_000;
/// Most windows a canary policy is shown: the step's most recent. A canary held for hours at a
/// sub-second interval would otherwise hand its policy a list that grows every window (and
/// each call's time with it). The state's `step-elapsed-ms` still counts from the step's start.
pub const MAX_HISTORY: usize = 1_000;

pub trait Bound {
    fn bound(&mut self);
}

fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        *s = truncate(s, max);
    }
}

impl Bound for Verdict {
    fn bound(&mut self) {
        match self {
            Verdict::Pass => {}
            Verdict::Fail(r) | Verdict::Inconclusive(r) | Verdict::NoData(r) => cut(r, MAX_TEXT),
        }
    }
}

impl Bound for Check {
    fn bound(&mut self) {
        cut(&mut self.name, MAX_NAME);
        cut(&mut self.unit, MAX_NAME);
        cut(&mut self.detail, MAX_TEXT);
        self.verdict.bound();
        self.observed = self.observed.filter(|v| v.is_finite());
        self.threshold = self.threshold.filter(|v| v.is_finite());
    }
}

impl Bound for Vec<Check> {
    fn bound(&mut self) {
        if self.len() > MAX_CHECKS {
            let dropped = self.len() - MAX_CHECKS;
            self.truncate(MAX_CHECKS);
            self.push(Check {
                name: "checks-dropped".into(),
                verdict: Verdict::Inconclusive(format!(
                    "the plugin returned {dropped} more checks than the {MAX_CHECKS} kept"
                )),
                observed: Some((MAX_CHECKS + dropped) as f64),
                threshold: Some(MAX_CHECKS as f64),
                unit: "checks".into(),
                detail: String::new(),
            });
        }
        self.iter_mut().for_each(Bound::bound);
    }
}

impl Bound for StepReport {
    fn bound(&mut self) {
        self.verdict.bound();
        self.checks.bound();
        cut(&mut self.summary, MAX_TEXT);
    }
}

impl Bound for PluginInfo {
    fn bound(&mut self) {
        cut(&mut self.name, MAX_NAME);
        cut(&mut self.version, MAX_NAME);
        cut(&mut self.description, MAX_TEXT);
        if let Some(schema) = &mut self.config_schema {
            cut(schema, 256 << 10);
        }
        self.capabilities.truncate(16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        let s = "é".repeat(10);
        let t = truncate(&s, 5);
        assert!(t.starts_with("éé"));
        assert!(t.contains("more bytes cut"));
    }

    #[test]
    fn report_is_bounded() {
        let check = Check {
            name: "n".repeat(1000),
            verdict: Verdict::Fail("r".repeat(MAX_TEXT * 2)),
            observed: Some(f64::NAN),
            threshold: Some(1.0),
            unit: String::new(),
            detail: String::new(),
        };
        let mut r = StepReport {
            verdict: Verdict::Pass,
            checks: vec![check; MAX_CHECKS + 5],
            summary: "s".repeat(MAX_TEXT * 3),
        };
        r.bound();
        assert_eq!(r.checks.len(), MAX_CHECKS + 1);
        assert!(r.summary.len() < MAX_TEXT + 64);
        assert!(r.checks[0].name.len() < MAX_NAME + 64);
        assert_eq!(r.checks[0].observed, None);
    }
}
