//! `launch-host agent --state s3://…`: a standby that takes a launch over when its runner dies
//! (`launch_engine::agent`). Runs until Ctrl-C or SIGTERM; any number of agents on any
//! machines, exactly one takes each run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::output::{esay, say};
use super::terminal::Labelled;
use super::{Exit, usage};
use launch_engine::agent::{self, Happened};
use launch_runtime::Runtime;

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The shared state whose runs to stand by for (`s3://bucket/prefix`, as the runbooks'
    /// `state`)
    #[arg(long, value_name = "URL", env = "LAUNCH_HOST_STATE")]
    state: String,
    /// The plugins the runs it takes over run with (each must be the build the run started
    /// with)
    #[arg(
        long,
        value_name = "DIR",
        default_value = "plugins",
        env = "LAUNCH_HOST_PLUGINS"
    )]
    plugins: PathBuf,
    /// Where it keeps the runs it takes over
    #[arg(
        long,
        value_name = "DIR",
        default_value = ".launch",
        env = "LAUNCH_HOST_WORKSPACE"
    )]
    workspace: PathBuf,
    /// How often it lists the runs' leases
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    poll: Duration,
}

pub async fn run(runtime: &Runtime, args: AgentArgs) -> anyhow::Result<Exit> {
    if !args.state.starts_with("s3://") {
        return usage(anyhow::anyhow!(
            "--state `{}` is not an s3:// URL: agents coordinate through S3 only",
            args.state
        ));
    }
    if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&args.poll) {
        return usage(anyhow::anyhow!("--poll: write 100ms to 60s"));
    }
    say!(
        "agent: pid {} on {}, standing by for the runs at {} (leases listed every {})",
        std::process::id(),
        launch_engine::owner::hostname(),
        args.state,
        humantime::format_duration(args.poll)
    );
    let config = agent::Config {
        state: args.state.clone(),
        plugins: args.plugins.clone(),
        workspace: args.workspace.clone(),
        poll: args.poll,
    };
    let operator = |run: &str| Arc::new(Labelled(run.to_string())) as Arc<_>;
    let log = |h: Happened| match h {
        Happened::Took {
            run_id,
            from,
            silent,
        } => say!(
            "agent: took run {run_id} over from {from} (its lease silent {:.1} s)",
            silent.as_secs_f64()
        ),
        Happened::Ended { run_id, outcome } => match outcome {
            Ok(s) => say!(
                "agent: run {run_id} ended {} — {}",
                s.outcome.word().to_uppercase(),
                s.summary
            ),
            Err(e) => esay!("agent: run {run_id}: {e:#}"),
        },
        Happened::Trouble(e) => esay!("agent: {e}"),
    };
    let watched = agent::watch(runtime.clone(), config, operator, log, stopped()).await;
    match watched {
        Ok(()) => {
            say!(
                "agent: stopped after {} S3 requests",
                launch_engine::agent::s3_requests()
            );
            Ok(Exit::Success)
        }
        Err(e) => usage(e),
    }
}

/// Ctrl-C, or SIGTERM (systemd, Kubernetes).
async fn stopped() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
