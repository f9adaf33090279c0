//! What a journal holds: one record per line, each an event of the run, chained to the line
//! before it.

use serde::{Deserialize, Serialize};

use crate::record::{CheckRecord, Outcome, VerdictRecord, WindowRecord};

use super::now_ms;

/// A call's inputs inside its record: written as the recorder rendered them (a canary
/// records a call per window, so they are serialized once, not built as a value first), read
/// back as a value.
#[derive(Debug, Clone)]
pub enum Inputs {
    Rendered(Box<serde_json::value::RawValue>),
    Read(serde_json::Value),
}

impl Inputs {
    pub fn to_value(&self) -> serde_json::Result<serde_json::Value> {
        match self {
            Inputs::Rendered(raw) => serde_json::from_str(raw.get()),
            Inputs::Read(value) => Ok(value.clone()),
        }
    }
}

impl Serialize for Inputs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Inputs::Rendered(raw) => raw.serialize(s),
            Inputs::Read(value) => value.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Inputs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(d).map(Inputs::Read)
    }
}

/// A canary policy's call, inside the decision it made: what the policy was shown besides the
/// decision's `percent` and `plugin`, and what the decision does not say of its answer. A
/// canary calls its policy every window, and a record of its own per call cost a line, a hash
/// and most of the time recording took (`just bench`); these are a few numbers in a line the
/// run writes anyway. Journals written before have a `call` record before the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryCall {
    pub step_index: u32,
    pub step_elapsed_ms: u64,
    pub total_elapsed_ms: u64,
    /// The history: `history_len` of the stage's complete windows from the run's window
    /// number `history_from` on, as in a `call` record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_from: Option<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub history_len: u64,
    /// The stage's config, when the stage's last recorded call did not hold the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
    /// The policy's reason, when the summary does not say it (`lab::answer::decided_call`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    RunStarted {
        run_id: String,
        runbook: String,
        runbook_sha256: String,
        plugins: Vec<(String, String)>,
        auto: bool,
        /// Who started it: `--operator`, else the login name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_by: Option<String>,
        /// The runbook's launch name, flag and environments: what pages and the fleet name the
        /// run by. Empty in journals written before they were kept.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        launch: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        flag: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        environments: Vec<String>,
    },
    /// The stages the run means to go through, in order (name, title): what a page shows as
    /// pending before they start.
    Planned {
        stages: Vec<(String, String)>,
    },
    /// The capability manifest the run starts with: each plugin's build and grants.
    Capabilities {
        manifest_sha256: String,
        grants: Vec<crate::manifest::Grant>,
    },
    Resumed {
        pid: u32,
        /// Bytes of a torn last record (a crash mid-write) cut off before resuming.
        #[serde(default, skip_serializing_if = "is_zero")]
        torn_bytes_dropped: u64,
    },
    StageStarted {
        stage: String,
        title: String,
    },
    /// An effect is about to happen; `EffectDone` with the same key says it did.
    EffectStarted {
        stage: String,
        key: String,
        detail: String,
    },
    EffectDone {
        stage: String,
        key: String,
        detail: String,
    },
    Window {
        stage: String,
        environment: String,
        window: WindowRecord,
    },
    /// A canary's decision. One its policy made holds the `call` that made it, so the call
    /// is replayable without a `call` record of its own.
    Decision {
        stage: String,
        percent: u8,
        action: String,
        summary: String,
        checks: Vec<CheckRecord>,
        plugin: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CanaryCall>,
    },
    /// An operator's request to a running canary (`canary pause` ...), as it was obeyed.
    Control {
        stage: String,
        seq: u64,
        /// When the operator asked.
        requested_ms: u64,
        command: crate::control::Command,
        operator: String,
        reason: String,
        /// What the canary did about it.
        outcome: String,
    },
    /// A notification's delivery (never the webhook's URL).
    Notified {
        channel: crate::runbook::Channel,
        /// What it told: `run-started`, `stage-finished`, `auto-rollback`...
        what: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        level: Option<u8>,
        delivered: bool,
        attempts: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        elapsed_ms: u64,
    },
    Log {
        stage: String,
        source: String,
        level: String,
        message: String,
    },
    StageFinished {
        stage: String,
        verdict: VerdictRecord,
        checks: Vec<CheckRecord>,
        summary: String,
        plugin: Option<String>,
        dry_run: bool,
        /// What the host did about the verdict: `continued`, `aborted`, `rolled back`...
        outcome: String,
        elapsed_ms: u64,
    },
    /// A plugin call and what it saw, so it can be replayed: the inputs are a fixture, in the
    /// record when small (`inputs`), else in the run folder (`input`: `calls/<sha256>.json`,
    /// content-addressed, written before this record). A canary's history is `history-len`
    /// of the run's `window` records from number `history-from` on (0 = the run's first
    /// window): those of its stage with every measure present, as the policy was shown them.
    /// A range, not a list, so a call's record stays the same size however long the canary
    /// holds (a list made a 2 000-window canary's journal grow with its square). Journals
    /// written before list the numbers in `windows`.
    Call {
        stage: String,
        plugin: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        input: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Inputs>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        windows: Vec<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        history_from: Option<u64>,
        #[serde(default, skip_serializing_if = "is_zero")]
        history_len: u64,
        /// In the fixtures' words: `promote 30`, `hold`, `pass`, `no-data`... or `failed`.
        /// Absent on a canary call whose `decision`, journaled right after it, says it (as
        /// the checks and, when written `<answer>: <reason>`, the reason): a canary makes a
        /// call per window, and none of it is said twice (`lab::answer::leave_to_decision`).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        answer: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        checks: std::collections::BTreeMap<String, String>,
    },
    /// A shadow policy's answer to exactly the live plugin's inputs: journaled, never obeyed.
    Shadow {
        stage: String,
        plugin: String,
        /// The canary's percentage when it was asked; absent on other stages.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percent: Option<u8>,
        /// What the live plugin answered, in the same words: `promote 30%`, `hold`, `PASS`...
        live: String,
        shadow: String,
        agrees: bool,
        summary: String,
        checks: Vec<CheckRecord>,
        /// Why the shadow gave no answer (a trap, its deadline): it never touches the run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed: Option<String>,
    },
    /// The host failed mid-stage and put a flag the stage had moved back to its safe value.
    FlagRestored {
        stage: String,
        environment: String,
        flag: String,
        percent: u8,
        /// False when even that failed; the operator must set the flag by hand.
        restored: bool,
        reason: String,
    },
    RunFinished {
        outcome: Outcome,
        summary: String,
    },
    /// The runner's signature over the chain's head at line `line` (`signing`): what makes
    /// the history authentic, not only self-consistent.
    Signed {
        line: u64,
        /// The sha256 of line `line`.
        head: String,
        /// The signer's key fingerprint (`SHA256:...`).
        key: String,
        /// An armored OpenSSH signature (SSHSIG).
        signature: String,
    },
    /// Another process took the run over after its lease went silent (a standby agent, or a
    /// `resume` on another machine), and what it did about the stage in progress.
    TakenOver {
        /// The new owner (pid on host).
        by: String,
        /// The owner whose lease went silent.
        from: String,
        /// How long the lease had been silent when it was taken.
        lease_silent_ms: u64,
        /// The lease's new generation: the fencing token flag writes carry from now on.
        generation: u64,
        /// `resume` the stage in progress, or `rollback` (the stage's `takeover`).
        action: String,
    },
    /// The UAT checklist, results and sign-offs as the run ended, so its reports are drawn
    /// from the journal alone.
    Uat {
        data: crate::uat::UatData,
    },
}

impl Event {
    /// The stage a record belongs to, for the events that belong to one.
    pub fn stage(&self) -> Option<&str> {
        match self {
            Event::StageStarted { stage, .. }
            | Event::EffectStarted { stage, .. }
            | Event::EffectDone { stage, .. }
            | Event::Window { stage, .. }
            | Event::Decision { stage, .. }
            | Event::Control { stage, .. }
            | Event::Log { stage, .. }
            | Event::StageFinished { stage, .. }
            | Event::FlagRestored { stage, .. }
            | Event::Shadow { stage, .. }
            | Event::Call { stage, .. } => Some(stage),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub at: u64,
    /// The record's line number (1-based), so a removed or reordered line is named by the gap
    /// it leaves; 0 (absent) in journals written before it was kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub n: u64,
    /// The sha256 of the line before this one, as written: the journal is a hash chain, so an
    /// edited, removed or reordered line breaks it (`launch-host verify`). None on a first line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    #[serde(flatten)]
    pub event: Event,
}

impl Record {
    pub fn new(event: Event) -> Record {
        Record {
            at: now_ms(),
            n: 0,
            prev: None,
            event,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
