//! `launch-host canary init|start|monitor|promote N|rollback|status`: the guide's
//! `canary-rollout.sh`. Every flag change is a journaled run; `monitor` and `status` only read.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::dashboard;
use super::output::json;
use super::usage;
use super::workspace::WorkspaceArgs;
use super::{Exit, Host, Output};
use launch_engine::{Operation, workspace};

#[derive(Args, Debug)]
pub struct CanaryArgs {
    /// The environment whose canary this is
    #[arg(long = "env", value_name = "ENV", default_value = "staging")]
    pub environment: String,
    #[command(flatten)]
    pub ws: WorkspaceArgs,
}

#[derive(Subcommand, Debug)]
pub enum CanaryCommand {
    /// Set up: the primary and every component flag OFF, and read back
    #[command(after_help = "Example:\n  launch-host canary init --yes")]
    Init(CanaryArgs),
    /// Run the runbook's canary policy: 10→30→50→100 with health checks and auto-rollback
    #[command(after_help = "Example:\n  launch-host canary start --yes")]
    Start(CanaryArgs),
    /// Live health dashboard: latency, errors, OCC conflicts, flag %, step, last decision
    #[command(
        after_help = "Examples:\n  launch-host canary monitor                 # until Ctrl-C\n  launch-host canary monitor --for 60s"
    )]
    Monitor {
        #[command(flatten)]
        args: CanaryArgs,
        /// Stop after this long [default: until Ctrl-C]
        #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
    },
    /// Move the flag to PERCENT at once (manual stage advancement)
    #[command(after_help = "Example:\n  launch-host canary promote 50 --yes")]
    Promote {
        /// The new rollout percentage, 0-100
        #[arg(value_parser = clap::value_parser!(u8).range(0..=100))]
        percent: u8,
        #[command(flatten)]
        args: CanaryArgs,
    },
    /// Emergency revert: the primary flag to 0%
    #[command(after_help = "Example:\n  launch-host canary rollback")]
    Rollback(CanaryArgs),
    /// Flags, live release and the canary's progress
    #[command(after_help = "Example:\n  launch-host canary status --output json")]
    Status {
        #[command(flatten)]
        args: CanaryArgs,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

pub async fn run(host: &Host, cmd: CanaryCommand) -> anyhow::Result<Exit> {
    match cmd {
        CanaryCommand::Init(a) => {
            let op = Operation::CanaryInit {
                environment: a.environment.clone(),
            };
            a.ws.run(host, op).await
        }
        CanaryCommand::Start(a) => {
            let op = Operation::CanaryStart {
                environment: a.environment.clone(),
            };
            a.ws.run(host, op).await
        }
        CanaryCommand::Promote { percent, args: a } => {
            let op = Operation::CanaryPromote {
                environment: a.environment.clone(),
                percent,
            };
            a.ws.run(host, op).await
        }
        CanaryCommand::Rollback(a) => {
            let op = Operation::CanaryRollback {
                environment: a.environment.clone(),
                reason: super::rollback::reason(Some("canary rollback")),
            };
            a.ws.run(host, op).await
        }
        CanaryCommand::Monitor { args: a, duration } => {
            let (rb, env) = match a.ws.open(&a.environment).await {
                Ok(opened) => opened,
                Err(e) => return usage(e),
            };
            dashboard::watch(
                &rb,
                &env,
                &a.ws.runs_dir(),
                Duration::from_secs(1),
                duration,
                true,
            )
            .await?;
            Ok(Exit::Success)
        }
        CanaryCommand::Status { args: a, output } => {
            let (rb, env) = match a.ws.open(&a.environment).await {
                Ok(opened) => opened,
                Err(e) => return usage(e),
            };
            let flags = env.flags.all().await?;
            let status = serde_json::json!({
                "environment": env.name,
                "flag": rb.launch.flag,
                "percent": flags.get(&rb.launch.flag).copied().unwrap_or(0),
                "flags": flags,
                "flag_store": env.flags.describe(),
                "release": env.store.current().await?,
                "canary": workspace::canary_progress(&a.ws.runs_dir(), &rb, &env.name),
            });
            if output == Output::Json {
                json(&status)?;
            } else {
                println!(
                    "{}: {} at {}% ({})",
                    env.name,
                    rb.launch.flag,
                    status["percent"],
                    env.flags.describe()
                );
                for f in &rb.launch.component_flags {
                    println!("  {f}: {}%", flags.get(f).copied().unwrap_or(0));
                }
                println!(
                    "live release: {}",
                    status["release"].as_str().unwrap_or("(none)")
                );
                match workspace::canary_progress(&a.ws.runs_dir(), &rb, &env.name) {
                    Some(c) => println!(
                        "canary: stage {} of run {} — {} at {}%, last decision {}: {}",
                        c.stage,
                        c.run_id,
                        if c.running { "running" } else { "finished" },
                        c.percent,
                        c.last_action,
                        c.last_summary
                    ),
                    None => println!("canary: not started in this workspace"),
                }
            }
            Ok(Exit::Success)
        }
    }
}
