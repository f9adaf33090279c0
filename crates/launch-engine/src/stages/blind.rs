//! How long a watching stage (a canary, a stability gate) may go without data. A window no
//! source could answer, a measure that came back empty, or a policy holding for lack of
//! traffic is *no data*: never a pass, never a reason to promote. A run of them is bounded —
//! past `no-data-limit` the stage rolls back, because a launch nobody can see is not one to
//! leave at its step for hours — and the operator hears about it as it happens.

use std::time::{Duration, Instant};

use crate::record::{CheckRecord, VerdictRecord};
use crate::runbook::Stage;

/// The stage's bound on consecutive time without data.
pub fn limit(stage: &Stage, interval: Duration) -> Duration {
    stage.no_data_limit(interval)
}

/// A no-data check, as the host writes it when it does not ask the policy.
pub fn check(reason: &str) -> CheckRecord {
    CheckRecord {
        name: "data".into(),
        verdict: VerdictRecord::NoData(reason.into()),
        observed: None,
        threshold: None,
        unit: String::new(),
        detail: "a missing measure is no data, never 0: the policy was not asked".into(),
        skipped: false,
    }
}

pub use crate::record::is_no_data;

/// Consecutive time without data.
pub struct Blindness {
    limit: Duration,
    /// When data was last seen (or the watch or step began).
    seen: Instant,
    /// Windows without data in a row.
    windows: u32,
    /// When the operator was last told about it.
    told: Option<Instant>,
}

/// What to do about a window without data.
pub enum Blind {
    /// Keep watching; `tell` is set when the operator should hear about it now.
    Hold { tell: Option<String> },
    /// The limit is reached: roll back for this reason.
    RollBack(String),
}

/// How often the operator is reminded of a stage that still has no data.
const REMIND_EVERY: Duration = Duration::from_secs(10);

impl Blindness {
    pub fn new(limit: Duration) -> Blindness {
        Blindness {
            limit,
            seen: Instant::now(),
            windows: 0,
            told: None,
        }
    }

    /// A window with data: the count starts again.
    pub fn seen(&mut self) {
        self.seen = Instant::now();
        self.windows = 0;
        self.told = None;
    }

    /// A window without data, and why.
    pub fn blind(&mut self, reason: &str) -> Blind {
        self.windows = self.windows.saturating_add(1);
        let for_ = self.seen.elapsed();
        let shown = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
        if for_ >= self.limit {
            return Blind::RollBack(format!(
                "no data for {} ({} window(s) in a row, no-data-limit {}): {reason}",
                shown(for_),
                self.windows,
                shown(self.limit)
            ));
        }
        let due = self.told.is_none_or(|t| t.elapsed() >= REMIND_EVERY);
        let tell = due.then(|| {
            self.told = Some(Instant::now());
            format!(
                "{reason} — no data for {} of the {} allowed before a rollback",
                shown(for_),
                shown(self.limit)
            )
        });
        Blind::Hold { tell }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limit_is_minutes_or_three_intervals() {
        let stage = Stage::builtin("c", "c", crate::runbook::Action::Wait, None);
        assert_eq!(
            stage.no_data_limit(Duration::from_secs(1)),
            Duration::from_secs(300)
        );
        assert_eq!(
            stage.no_data_limit(Duration::from_secs(600)),
            Duration::from_secs(1800)
        );
    }

    #[test]
    fn blindness_rolls_back_past_its_limit_and_resets_on_data() {
        let mut b = Blindness::new(Duration::from_millis(30));
        assert!(matches!(b.blind("empty"), Blind::Hold { tell: Some(_) }));
        assert!(
            matches!(b.blind("empty"), Blind::Hold { tell: None }),
            "reminded at most every 10 s"
        );
        std::thread::sleep(Duration::from_millis(40));
        let Blind::RollBack(why) = b.blind("p95-ms missing") else {
            panic!("past the limit")
        };
        assert!(
            why.contains("3 window(s) in a row") && why.ends_with("p95-ms missing"),
            "{why}"
        );
        b.seen();
        assert!(matches!(b.blind("empty"), Blind::Hold { .. }));
    }

    #[test]
    fn a_hold_with_a_no_data_check_and_no_failure_is_no_data() {
        let nd = check("2 canary requests, 10 needed");
        assert!(is_no_data(std::slice::from_ref(&nd)));
        let failed = crate::stages::fail("error-rate", "5% > 1%");
        assert!(!is_no_data(&[nd, failed]));
        assert!(!is_no_data(&[]));
    }
}
