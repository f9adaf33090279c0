//! The contract's data types under one roof, for the layers above the runtime.

pub use super::bindings::canary_policy::exports::launch::plugin::canary_policy::{
    Action, CanaryState, CanaryWindow, Decision,
};
pub use super::bindings::step::exports::launch::plugin::step::StepContext;
pub use super::bindings::uat_checklist::exports::launch::plugin::uat_checklist::{
    Signoff, SignoffDecision, UatItem, UatOutcome, UatResult,
};
pub use crate::capabilities::bindings::types::*;
