//! The people running a launch, as the engine sees them. The engine asks and tells only through
//! this interface; the binary implements it for a terminal (prompts, colour, progress bars) and
//! for unattended runs. So the engine never touches stdin, stdout or colour, and tests can drive
//! a run's questions without a pseudo-terminal.

use std::time::Duration;

use crate::record::VerdictRecord;
use crate::uat::{ItemFile, Outcome};

/// The answer before a stage of an interactive run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Proceed,
    Skip,
    Abort,
}

/// What a tester reports for one UAT item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UatAnswer {
    pub outcome: Outcome,
    pub notes: String,
}

/// Something worth telling the operator as it happens.
#[derive(Debug, Clone, Copy)]
pub enum Notice<'a> {
    StageStarted {
        title: &'a str,
    },
    StageSkipped {
        title: &'a str,
    },
    /// A stage's verdict, how many of its checks are items nobody tested, and what the host
    /// did about it.
    StageFinished {
        verdict: &'a VerdictRecord,
        skipped: usize,
        action: &'a str,
    },
    CanaryPromoted {
        from: u8,
        to: u8,
    },
    CanaryRolledBack {
        percent: u8,
        reason: &'a str,
    },
    /// A rollback put a flag at 0 — said the moment it is done, whatever still follows.
    RolledBack {
        environment: &'a str,
        flag: &'a str,
    },
    /// A shadow policy answered other than the live one (told when its answer changes).
    ShadowDisagrees {
        plugin: &'a str,
        live: &'a str,
        shadow: &'a str,
        /// The canary's percentage, on a canary stage.
        percent: Option<u8>,
        why: &'a str,
    },
    /// The canary stays at its step, and why: the policy's hold, or no data (told when it
    /// begins and again every few seconds while it lasts).
    CanaryHeld {
        percent: u8,
        reason: &'a str,
    },
    /// Something the operator should know that does not change the run.
    Warning(&'a str),
}

/// What a progress indicator measures.
#[derive(Debug, Clone, Copy)]
pub enum Measure<'a> {
    /// Files uploaded out of `files`.
    Uploads { files: u64, what: &'a str },
    /// A stretch of time: a wait, a monitoring window.
    Timed { total: Duration, what: &'a str },
    /// A canary's flag percentage, with the policy's last decision as its message.
    Canary { what: &'a str },
}

/// A progress indicator; it disappears when dropped, however the work ended.
pub trait Progress: Send + Sync {
    fn set_position(&self, position: u64);
    fn inc(&self, by: u64);
    fn set_message(&self, message: String);
}

pub trait Operator: Send + Sync {
    /// Whether someone is there to answer a question now.
    fn can_ask(&self) -> bool;
    /// Before a stage of an interactive run: proceed, skip or abort. End of input is abort.
    fn ask_step(&self, title: &str) -> Step;
    /// A stage was inconclusive: go on anyway? Only asked when `can_ask`.
    fn ask_proceed(&self, stage: &str, reason: &str) -> bool;
    /// Walks a tester through one UAT item; `None` when they stop answering.
    fn ask_uat_result(&self, item: &ItemFile) -> Option<UatAnswer>;
    fn tell(&self, notice: Notice<'_>);
    fn progress(&self, measure: Measure<'_>) -> Box<dyn Progress>;
}

/// Nobody is there: no question is asked (each answer is the safe one), notices go nowhere.
/// For `--yes` runs driven by other programs, and for tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unattended;

/// A progress indicator nobody sees.
pub struct NoProgress;

impl Progress for NoProgress {
    fn set_position(&self, _: u64) {}
    fn inc(&self, _: u64) {}
    fn set_message(&self, _: String) {}
}

impl Operator for Unattended {
    fn can_ask(&self) -> bool {
        false
    }
    fn ask_step(&self, _: &str) -> Step {
        Step::Abort
    }
    fn ask_proceed(&self, _: &str, _: &str) -> bool {
        false
    }
    fn ask_uat_result(&self, _: &ItemFile) -> Option<UatAnswer> {
        None
    }
    fn tell(&self, _: Notice<'_>) {}
    fn progress(&self, _: Measure<'_>) -> Box<dyn Progress> {
        Box::new(NoProgress)
    }
}
