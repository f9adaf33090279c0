//! A call's answer in the fixtures' words (`promote 30`, `hold`, `pass`...), and what a canary
//! call's `call` record keeps of it when its `decision` record, journaled right after, says
//! the rest.

use std::collections::BTreeMap;

use crate::record::{CheckRecord, VerdictRecord};
use launch_runtime::types::Action;

/// An action in the fixtures' words, with its reason: (`promote 30`, ""), (`hold`, why)...
pub fn action_answer(action: &Action) -> (String, String) {
    match action {
        Action::Promote(p) => (format!("promote {p}"), String::new()),
        Action::Hold(r) => ("hold".into(), r.clone()),
        Action::Rollback(r) => ("rollback".into(), r.clone()),
        Action::Complete => ("complete".into(), String::new()),
    }
}

/// An action in the journal's words (`promote 30%`, `hold`...), which decisions are recorded
/// and shadows compared in.
pub fn action_word(action: &Action) -> String {
    match action {
        Action::Promote(p) => format!("promote {p}%"),
        other => action_answer(other).0,
    }
}

/// A verdict in the fixtures' words.
pub fn verdict_answer(v: &VerdictRecord) -> String {
    match v {
        VerdictRecord::Pass => "pass",
        VerdictRecord::Fail(_) => "fail",
        VerdictRecord::Inconclusive(_) => "inconclusive",
        VerdictRecord::NoData(_) => "no-data",
    }
    .into()
}

/// Check name → verdict word, as fixtures expect them.
pub fn check_answers(checks: &[CheckRecord]) -> BTreeMap<String, String> {
    checks
        .iter()
        .map(|c| (c.name.clone(), verdict_answer(&c.verdict)))
        .collect()
}

/// A call's answer as its `call` record holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallAnswer {
    /// Empty: the `decision` journaled next says it.
    pub answer: String,
    /// None: the decision's summary says it (`<answer>: <reason>`).
    pub reason: Option<String>,
    /// Empty: the decision's checks are these.
    pub checks: BTreeMap<String, String>,
}

impl CallAnswer {
    /// An answer no decision repeats (a report's verdict, a failed call): all of it.
    pub fn whole(answer: String, reason: String, checks: BTreeMap<String, String>) -> CallAnswer {
        CallAnswer {
            answer,
            reason: Some(reason),
            checks,
        }
    }
}

/// The fixtures' answer for a decision's action word: `promote 30%` → `promote 30`.
pub fn answer_of_action_word(word: &str) -> String {
    match word.strip_prefix("promote ") {
        Some(p) => format!("promote {}", p.trim_end_matches('%')),
        None => word.to_string(),
    }
}

/// The reason a decision's summary gives, when it is written `<answer>: <reason>` (as the
/// stock policies write theirs); else "".
pub fn reason_in_summary<'a>(answer: &str, summary: &'a str) -> &'a str {
    summary
        .strip_prefix(answer)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or("")
}

/// What a canary call's record keeps of its answer when its decision (`action`, `summary`,
/// `checks`) is journaled right after it: only what the decision does not say. A canary
/// records a call and a decision per window, so saying it once keeps the journal short;
/// `restore_from_decision` takes it back exactly.
pub fn leave_to_decision(
    answer: String,
    reason: String,
    checks: BTreeMap<String, String>,
    action: &str,
    summary: &str,
    decision_checks: &[CheckRecord],
) -> CallAnswer {
    if answer != answer_of_action_word(action) {
        return CallAnswer::whole(answer, reason, checks);
    }
    let reason = (reason_in_summary(&answer, summary) != reason).then_some(reason);
    let checks = if checks == check_answers(decision_checks) {
        BTreeMap::new()
    } else {
        checks
    };
    CallAnswer {
        answer: String::new(),
        reason,
        checks,
    }
}

/// `leave_to_decision` for a policy's own decision, journaled right after its call with the
/// action's word and the checks it gave: its answer and checks are the decision's by
/// construction, so only a reason the summary does not say stays. A canary records this
/// every window; it builds nothing that would be dropped.
pub fn decided_call(action: &Action, summary: &str) -> CallAnswer {
    let reason = match action {
        Action::Hold(r) => (reason_in_summary("hold", summary) != r).then(|| r.clone()),
        Action::Rollback(r) => (reason_in_summary("rollback", summary) != r).then(|| r.clone()),
        // No reason: the summary says one only when it is not `<answer>: ...`.
        Action::Promote(p) => {
            (!reason_in_summary(&format!("promote {p}"), summary).is_empty()).then(String::new)
        }
        Action::Complete => (!reason_in_summary("complete", summary).is_empty()).then(String::new),
    };
    CallAnswer {
        answer: String::new(),
        reason,
        checks: BTreeMap::new(),
    }
}

/// The answer, reason and checks of a call recorded by `leave_to_decision`, from the
/// decision journaled after it.
pub fn restore_from_decision(
    call: &CallAnswer,
    action: &str,
    summary: &str,
    decision_checks: &[CheckRecord],
) -> (String, String, BTreeMap<String, String>) {
    let answer = answer_of_action_word(action);
    let reason = match &call.reason {
        Some(r) => r.clone(),
        None => reason_in_summary(&answer, summary).to_string(),
    };
    let checks = if call.checks.is_empty() {
        check_answers(decision_checks)
    } else {
        call.checks.clone()
    };
    (answer, reason, checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, verdict: VerdictRecord) -> CheckRecord {
        CheckRecord {
            name: name.into(),
            verdict,
            observed: Some(1.0),
            threshold: Some(2.0),
            unit: "ms".into(),
            detail: String::new(),
            skipped: false,
        }
    }

    #[test]
    fn a_call_leaves_to_its_decision_only_what_the_decision_says_and_gets_it_back() {
        let checks = vec![
            check("error-rate", VerdictRecord::Pass),
            check("latency-p95", VerdictRecord::Fail("slow".into())),
        ];
        // (answer, reason, the decision's action word and summary, the reason kept)
        let cases = [
            ("hold", "healthy", "hold", "hold: healthy", None),
            ("promote 30", "", "promote 30%", "promote to 30%", None),
            (
                "rollback",
                "p95 2504 ms",
                "rollback",
                "rollback: p95 2504 ms",
                None,
            ),
            // A summary in other words, or one the host added to (a paused canary's).
            ("hold", "quiet", "hold", "waiting: quiet", Some("quiet")),
            (
                "hold",
                "ok",
                "hold",
                "hold: ok (paused by ana: not acted on)",
                Some("ok"),
            ),
            ("promote 30", "", "promote 30%", "promote 30: now", Some("")),
        ];
        for (answer, reason, action, summary, kept) in cases {
            let full = check_answers(&checks);
            let call = leave_to_decision(
                answer.into(),
                reason.into(),
                full.clone(),
                action,
                summary,
                &checks,
            );
            assert_eq!(call.answer, "", "{summary}: the decision says the answer");
            assert!(call.checks.is_empty(), "{summary}: and the checks");
            assert_eq!(call.reason.as_deref(), kept, "{summary}");
            assert_eq!(
                restore_from_decision(&call, action, summary, &checks),
                (answer.to_string(), reason.to_string(), full),
                "{summary}"
            );
        }
        // A policy's own decision: `decided_call` keeps exactly what `leave_to_decision` of
        // the whole answer keeps.
        let actions = [
            Action::Hold("healthy".into()),
            Action::Rollback("p95 2504 ms".into()),
            Action::Promote(30),
            Action::Complete,
        ];
        let summaries = [
            "hold: healthy",
            "rollback: p95 2504 ms",
            "promote to 30%",
            "promote 30: now",
            "complete: done",
            "canary complete",
            "waiting: healthy",
            "hold: healthy (paused by ana: not acted on)",
        ];
        for action in &actions {
            for summary in summaries {
                let (answer, reason) = action_answer(action);
                let word = action_word(action);
                let whole = leave_to_decision(
                    answer,
                    reason,
                    check_answers(&checks),
                    &word,
                    summary,
                    &checks,
                );
                assert_eq!(decided_call(action, summary), whole, "{word} / {summary}");
            }
        }
        // An answer the decision does not give (a failed call) is kept whole.
        let failed = leave_to_decision(
            "failed".into(),
            "trap".into(),
            BTreeMap::new(),
            "rollback",
            "rollback: trap",
            &[],
        );
        assert_eq!(
            failed,
            CallAnswer::whole("failed".into(), "trap".into(), BTreeMap::new())
        );
    }
}
