//! `launch-host rollback emergency|full|validate`: the guide's `rollback.sh`. Host code only
//! (no plugin is consulted) and never blocked by another run's lock: nothing may stand between
//! an operator and turning the feature off.

use clap::{Args, ValueEnum};
use toml::Value;

use super::Exit;
use super::workspace::WorkspaceArgs;
use crate::engine::operation::{s, stage};
use crate::runtime::Runtime;

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Mode {
    /// The primary flag to 0 at once
    Emergency,
    /// The flag to 0, the previous release current again, and a CDN invalidation
    Full,
    /// Post-rollback health checks: flag at 0, API healthy, site up, legacy serving
    Validate,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    #[arg(value_enum)]
    mode: Mode,
    /// Why; recorded in the journal and the report
    #[arg(long)]
    reason: Option<String>,
    /// The environment to roll back
    #[arg(long = "env", value_name = "ENV", default_value = "production")]
    environment: String,
    #[command(flatten)]
    ws: WorkspaceArgs,
}

/// The reason as journaled: the operator's words and who gave them.
fn reason(given: Option<&str>) -> String {
    let who = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    format!("{} (by {who})", given.unwrap_or("no reason given"))
}

fn emergency_stage(environment: &str, reason: &str) -> toml::Table {
    stage(&[
        ("name", s("rollback-emergency")),
        ("title", s("Emergency rollback: primary flag to 0")),
        ("action", s("rollback")),
        ("environment", s(environment)),
        ("reason", s(reason)),
    ])
}

/// The operator typed the command: it needs no confirmation, and takes no lock.
fn options(ws: &WorkspaceArgs) -> crate::engine::RunOptions {
    crate::engine::RunOptions {
        auto: true,
        lock: false,
        ..ws.options()
    }
}

/// An emergency rollback of `environment`, as `canary rollback` also does.
pub async fn emergency(
    runtime: &Runtime,
    ws: &WorkspaceArgs,
    environment: &str,
    command: &str,
    why: &str,
) -> anyhow::Result<Exit> {
    let stage = emergency_stage(environment, &reason(Some(why)));
    ws.run_derived(
        runtime,
        command,
        "rolls back",
        |_| None,
        vec![stage],
        options(ws),
    )
    .await
}

pub async fn run(runtime: &Runtime, args: RollbackArgs) -> anyhow::Result<Exit> {
    let reason = reason(args.reason.as_deref());
    let env = s(&args.environment);
    let (name, extra) = match args.mode {
        Mode::Emergency => (
            "rollback emergency",
            emergency_stage(&args.environment, &reason),
        ),
        Mode::Full => (
            "rollback full",
            stage(&[
                ("name", s("rollback-full")),
                (
                    "title",
                    s("Full rollback: flag to 0, previous release current"),
                ),
                ("action", s("rollback")),
                ("environment", env),
                ("full", Value::Boolean(true)),
                ("reason", s(&reason)),
            ]),
        ),
        Mode::Validate => (
            "rollback validate",
            stage(&[
                ("name", s("rollback-validate")),
                ("title", s("Post-rollback validation")),
                ("action", s("verify-rollback")),
                ("environment", env),
            ]),
        ),
    };
    args.ws
        .run_derived(
            runtime,
            name,
            "rolls back",
            |_| None,
            vec![extra],
            options(&args.ws),
        )
        .await
}
