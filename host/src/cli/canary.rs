//! `launch-host canary init|start|monitor|promote N|rollback|status`: the guide's
//! `canary-rollout.sh`. Every flag change is a journaled run; `monitor` and `status` only read.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::dashboard;
use super::output::json;
use super::output::say;
use super::usage;
use super::workspace::WorkspaceArgs;
use super::{Exit, Host, Output};
use launch_engine::{Operation, control, workspace};

#[derive(Args, Debug)]
pub struct CanaryArgs {
    /// The environment whose canary this is
    #[arg(long = "env", value_name = "ENV", default_value = "staging")]
    pub environment: String,
    #[command(flatten)]
    pub ws: WorkspaceArgs,
}

/// Who asks a running canary, and why: both journaled.
#[derive(Args, Debug)]
pub struct ControlArgs {
    /// Why, for the journal and the report
    #[arg(long, default_value = "no reason given")]
    pub reason: String,
    /// Who is asking [default: $USER]
    #[arg(long, env = "LAUNCH_HOST_OPERATOR")]
    pub operator: Option<String>,
    /// A canary started on another machine: the runs' shared state (s3://bucket/prefix)
    #[arg(long, value_name = "URL", env = "LAUNCH_HOST_STATE")]
    pub state: Option<String>,
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
    /// Move the flag to PERCENT at once (manual stage advancement); --full ends a running
    /// canary at 100 %
    #[command(
        after_help = "Examples:\n  launch-host canary promote 50 --yes\n  launch-host canary promote --full --reason \"metrics look great\"   # a canary running in another terminal"
    )]
    Promote {
        /// The new rollout percentage, 0-100
        #[arg(value_parser = clap::value_parser!(u8).range(0..=100), required_unless_present = "full", conflicts_with = "full")]
        percent: Option<u8>,
        /// Promote the running canary to 100 % now and end it (or, with none running, set 100 %)
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        control: ControlArgs,
        #[command(flatten)]
        args: CanaryArgs,
    },
    /// Hold a running canary at its current step: decisions are still recorded, none promotes
    #[command(
        after_help = "Example:\n  launch-host canary pause --reason \"waiting for the support team\""
    )]
    Pause {
        #[command(flatten)]
        control: ControlArgs,
        #[command(flatten)]
        args: CanaryArgs,
    },
    /// Let a paused canary go on
    #[command(after_help = "Example:\n  launch-host canary resume")]
    Resume {
        #[command(flatten)]
        control: ControlArgs,
        #[command(flatten)]
        args: CanaryArgs,
    },
    /// Roll a running canary back now (flag to 0), recorded with who and why
    #[command(
        after_help = "Example:\n  launch-host canary abort --reason \"support tickets rising\""
    )]
    Abort {
        #[command(flatten)]
        control: ControlArgs,
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
        CanaryCommand::Promote {
            percent: Some(percent),
            args: a,
            ..
        } => {
            let op = Operation::CanaryPromote {
                environment: a.environment.clone(),
                percent,
            };
            a.ws.run(host, op).await
        }
        CanaryCommand::Promote {
            percent: None,
            control,
            args: a,
            ..
        } => {
            // A canary running in another process is told; with none, the flag is set here.
            if control.state.is_some() || running(&a).await?.is_some() {
                return send(&a, control::Command::PromoteFull, &control).await;
            }
            let op = Operation::CanaryPromote {
                environment: a.environment.clone(),
                percent: 100,
            };
            a.ws.run(host, op).await
        }
        CanaryCommand::Pause { control, args } => {
            send(&args, control::Command::Pause, &control).await
        }
        CanaryCommand::Resume { control, args } => {
            send(&args, control::Command::Resume, &control).await
        }
        CanaryCommand::Abort { control, args } => {
            send(&args, control::Command::Abort, &control).await
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
            let flags = env.launch_flags(&rb).await?;
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
                say!(
                    "{}: {} at {}% ({})",
                    env.name,
                    rb.launch.flag,
                    status["percent"],
                    env.flags.describe()
                );
                for f in &rb.launch.component_flags {
                    say!("  {f}: {}%", flags.get(f).copied().unwrap_or(0));
                }
                say!(
                    "live release: {}",
                    status["release"].as_str().unwrap_or("(none)")
                );
                match workspace::canary_progress(&a.ws.runs_dir(), &rb, &env.name) {
                    Some(c) => say!(
                        "canary: stage {} of run {} — {} at {}%, last: {}: {}",
                        c.stage,
                        c.run_id,
                        c.state(),
                        c.percent,
                        c.last_action,
                        c.last_summary
                    ),
                    None => say!("canary: not started in this workspace"),
                }
            }
            Ok(Exit::Success)
        }
    }
}

/// The canary running on the environment in this workspace, if any.
async fn running(a: &CanaryArgs) -> anyhow::Result<Option<workspace::CanaryProgress>> {
    let (rb, _) = a.ws.parse_runbook()?;
    Ok(workspace::canary_progress(&a.ws.runs_dir(), &rb, &a.environment).filter(|c| c.running))
}

/// Hands a request to the canary running in another process; it acts within one check interval.
async fn send(a: &CanaryArgs, command: control::Command, c: &ControlArgs) -> anyhow::Result<Exit> {
    let (rb, _) = match a.ws.parse_runbook() {
        Ok(parsed) => parsed,
        Err(e) => return usage(e),
    };
    let operator = control::operator_name(c.operator.as_deref());
    let env = &a.environment;
    let sent = match &c.state {
        Some(url) => control::send_shared(url, &rb, env, command, &operator, &c.reason).await,
        None => control::send(&a.ws.runs_dir(), &rb, env, command, &operator, &c.reason),
    };
    match sent {
        Ok(run_id) => {
            say!(
                "asked the canary of run {run_id} on {} to {} (as {operator}); it acts within one check interval — `launch-host canary status --env {}` shows it",
                a.environment,
                command.word(),
                a.environment
            );
            Ok(Exit::Success)
        }
        Err(e) => usage(e),
    }
}
