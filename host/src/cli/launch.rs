//! `launch-host launch validate|full-launch|build|deploy|rollout|monitor SECS|status|report`:
//! the guide's `production-launch.sh`, on the runbook's production environment.

use clap::{Args, Subcommand};

use super::output::json;
use super::output::say;
use super::usage;
use super::workspace::WorkspaceArgs;
use super::{Exit, Host, Output};
use launch_engine::{Operation, workspace};

#[derive(Args, Debug)]
pub struct LaunchArgs {
    /// The production environment's name in the runbook
    #[arg(long = "env", value_name = "ENV", default_value = "production")]
    pub environment: String,
    #[command(flatten)]
    pub ws: WorkspaceArgs,
}

#[derive(Subcommand, Debug)]
pub enum LaunchCommand {
    /// Prerequisites: targets reachable, stores readable, flags off, UAT approved
    #[command(after_help = "Example:\n  launch-host launch validate --yes")]
    Validate(LaunchArgs),
    /// The whole production sequence: deploy, gradual rollout, SLO validation, report
    #[command(
        name = "full-launch",
        after_help = "Example:\n  launch-host launch full-launch --yes"
    )]
    FullLaunch(LaunchArgs),
    /// Build the production artifacts (into the run folder) without deploying
    #[command(after_help = "Example:\n  launch-host launch build --yes")]
    Build(LaunchArgs),
    /// Deploy to production's store and publish as current
    #[command(after_help = "Example:\n  launch-host launch deploy --yes")]
    Deploy(LaunchArgs),
    /// Gradual rollout: 5→15→25→50→75→100 with auto-rollback
    #[command(after_help = "Example:\n  launch-host launch rollout --yes")]
    Rollout(LaunchArgs),
    /// Monitor production for SECS seconds, then run its SLO gates on what was measured
    #[command(after_help = "Example:\n  launch-host launch monitor 600 --yes")]
    Monitor {
        /// 1 to 604800 (a week), the runbook's range for a duration
        #[arg(value_parser = clap::value_parser!(u64).range(1..=604_800))]
        secs: u64,
        #[command(flatten)]
        args: LaunchArgs,
    },
    /// Production health: API health, flags, live release, rollout progress
    #[command(after_help = "Example:\n  launch-host launch status --output json")]
    Status {
        #[command(flatten)]
        args: LaunchArgs,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// The latest run's report (Markdown, or JSON with --output json)
    #[command(after_help = "Example:\n  launch-host launch report --output json")]
    Report {
        #[command(flatten)]
        args: LaunchArgs,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

pub async fn run(host: &Host, cmd: LaunchCommand) -> anyhow::Result<Exit> {
    let (a, op) = match cmd {
        LaunchCommand::Validate(a) => (a, Operation::LaunchValidate),
        LaunchCommand::FullLaunch(a) => {
            let environment = a.environment.clone();
            (a, Operation::LaunchFull { environment })
        }
        LaunchCommand::Build(a) => {
            let environment = a.environment.clone();
            (a, Operation::LaunchBuild { environment })
        }
        LaunchCommand::Deploy(a) => {
            let environment = a.environment.clone();
            (a, Operation::LaunchDeploy { environment })
        }
        LaunchCommand::Rollout(a) => {
            let environment = a.environment.clone();
            (a, Operation::LaunchRollout { environment })
        }
        LaunchCommand::Monitor { secs, args: a } => {
            let environment = a.environment.clone();
            (a, Operation::LaunchMonitor { environment, secs })
        }
        LaunchCommand::Status { args: a, output } => return status(&a, output).await,
        LaunchCommand::Report { args: a, output } => {
            return super::status::report(super::status::ReportArgs {
                run: super::status::RunRef {
                    run: None,
                    state: None,
                    workspace: a.ws.workspace.clone(),
                    runs_dir: None,
                },
                output,
            })
            .await;
        }
    };
    a.ws.run(host, op).await
}

async fn status(a: &LaunchArgs, output: Output) -> anyhow::Result<Exit> {
    let (rb, env) = match a.ws.open(&a.environment).await {
        Ok(opened) => opened,
        Err(e) => return usage(e),
    };
    let health_url = env.health_url();
    let health = match env.health().await {
        Ok(status) => status.to_string(),
        Err(e) => format!("unreachable: {e}"),
    };
    let flags = env.launch_flags(&rb).await?;
    let percent = flags.get(&rb.launch.flag).copied().unwrap_or(0);
    let canary = workspace::canary_progress(&a.ws.runs_dir(), &rb, &env.name);
    let last_run = workspace::runs(&a.ws.runs_dir()).pop();
    let status = serde_json::json!({
        "environment": env.name,
        "url": env.url,
        "health": { "url": health_url, "status": health },
        "flag": rb.launch.flag,
        "percent": percent,
        "flags": flags,
        "release": env.store.current().await?,
        "store": env.store.describe(),
        "rollout": canary,
        "last_run": last_run,
    });
    if output == Output::Json {
        json(&status)?;
    } else {
        say!("{} ({})", env.name, env.url);
        say!("  health: GET {health_url} → {health}");
        say!("  {}: {percent}%", rb.launch.flag);
        for f in &rb.launch.component_flags {
            say!("  {f}: {}%", flags.get(f).copied().unwrap_or(0));
        }
        say!(
            "  live release: {} in {}",
            status["release"].as_str().unwrap_or("(none)"),
            env.store.describe()
        );
        if let Some(c) = canary {
            say!(
                "  rollout: {} at {}% ({}), last decision {}: {}",
                c.stage,
                c.percent,
                if c.running { "running" } else { "finished" },
                c.last_action,
                c.last_summary
            );
        }
        if let Some(r) = last_run {
            say!("  last run: {r} (`launch-host status {r}`)");
        }
    }
    Ok(Exit::Success)
}
