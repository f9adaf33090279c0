//! Exit codes, documented in `--help` and the README, so CI can tell outcomes apart.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    GateFailed = 1,
    Usage = 2,
    RolledBack = 3,
    Internal = 4,
    /// Another run holds an environment this run needs.
    Locked = 5,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Prints a usage or configuration error; the command exits 2.
pub fn usage(e: anyhow::Error) -> anyhow::Result<Exit> {
    error(&e);
    Ok(Exit::Usage)
}

/// Prints `error: ...` with its causes, secrets masked.
pub fn error(e: &dyn std::fmt::Display) {
    eprintln!("error: {}", launch_engine::redact::text(&format!("{e:#}")));
}
