//! The policy lab: what lets a plugin author know what a policy will do before it acts on real
//! traffic. Fixtures (one call's inputs and what must come back) run offline against a plugin.

pub mod answer;
pub mod backtest;
pub mod fixture;
pub mod junit;
pub mod record;
pub mod replay;
pub mod run;

pub use fixture::{Fixture, discover};
pub use run::{FixtureResult, Mismatch, run};
