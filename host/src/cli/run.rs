//! `launch-host run` and `launch-host resume`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::outcome::{exit_for, launch, print_summary};
use super::output::esay;
use super::terminal::Terminal;
use super::workspace::{answerable, runbook_text};
use super::{Exit, Host, usage};
use launch_engine::{RunOptions, Runbook};
use launch_runtime::Runtime;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Directory holding the plugin `.wasm` files
    #[arg(
        long,
        value_name = "DIR",
        default_value = "plugins",
        env = "LAUNCH_HOST_PLUGINS"
    )]
    plugins: PathBuf,
    /// The runbook; the embedded default (the guide's 14 steps on a local StatusBoardV2) when absent
    #[arg(long, value_name = "FILE", env = "LAUNCH_HOST_RUNBOOK")]
    runbook: Option<PathBuf>,
    /// Proceed without asking (also AUTO_CONFIRM=true); needed when not on a terminal
    #[arg(long, short = 'y', env = "AUTO_CONFIRM", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    yes: bool,
    /// Inject a fault into the embedded target's V2: v2-latency=2500ms, v2-errors=20%, down
    #[arg(long, value_name = "FAULT")]
    inject: Vec<String>,
    /// Where run folders are created
    #[arg(long, value_name = "DIR", default_value = ".launch/runs")]
    runs_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// The run id (a folder of --runs-dir) or a run folder path
    run: String,
    #[arg(long, value_name = "DIR", default_value = ".launch/runs")]
    runs_dir: PathBuf,
    /// Fetch the run from this shared state location (s3://bucket/prefix) first: resume a run
    /// that another machine started
    #[arg(long, value_name = "URL", env = "LAUNCH_HOST_STATE")]
    state: Option<String>,
    /// The plugins directory on this machine [default: the one the run started with]; each
    /// plugin must still have the digest the run started with
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// Proceed without asking (also AUTO_CONFIRM=true), like `run --yes`
    #[arg(long, short = 'y', env = "AUTO_CONFIRM", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    yes: bool,
}

pub async fn run(host: &Host, args: RunArgs) -> anyhow::Result<Exit> {
    let (text, source) = match runbook_text(args.runbook.as_deref()) {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    let runbook = match Runbook::parse(&text, &source) {
        Ok(rb) => rb,
        Err(e) => return usage(e.into()),
    };
    if !answerable(args.yes) {
        return Ok(Exit::Usage);
    }
    let catalog = if runbook.names_plugins() {
        match launch_engine::registry::catalog(host.runtime()?, &args.plugins, &runbook).await {
            Ok(c) => c,
            Err(e) => return usage(e),
        }
    } else {
        launch_runtime::Catalog::empty(&args.plugins)
    };
    let options = RunOptions {
        inject: args.inject.clone(),
        ..RunOptions::new(args.plugins.clone(), args.yes)
    };
    launch(&runbook, &text, catalog, options, &args.runs_dir).await
}

pub async fn resume(runtime: &Runtime, args: ResumeArgs) -> anyhow::Result<Exit> {
    let run = super::status::RunRef {
        run: Some(args.run.clone()),
        state: args.state.clone(),
        workspace: PathBuf::from(".launch"),
        runs_dir: Some(args.runs_dir.clone()),
    };
    let dir = match run.resolve().await {
        Ok(d) => d,
        Err(e) => {
            esay!("error: cannot resume {}: {e:#}", args.run);
            return Ok(Exit::Usage);
        }
    };
    match launch_engine::run::resume(
        runtime,
        &dir,
        args.plugins.clone(),
        args.yes,
        Arc::new(Terminal),
    )
    .await
    {
        Ok(summary) => {
            print_summary(&summary);
            Ok(exit_for(summary.outcome))
        }
        Err(e) => {
            esay!("error: cannot resume {}: {e:#}", dir.display());
            let held = e.downcast_ref::<launch_engine::lock::LockError>().is_some()
                || e.downcast_ref::<launch_engine::owner::OwnerError>()
                    .is_some_and(|o| {
                        !matches!(o, launch_engine::owner::OwnerError::Unavailable { .. })
                    });
            Ok(if held { Exit::Locked } else { Exit::Usage })
        }
    }
}
