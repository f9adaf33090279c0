//! The command line: argument parsing and output only; the work happens in the layers below.

mod exit;
mod output;
mod plugins;
mod rollback;
mod run;
mod status;
mod validate;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use exit::Exit;

use crate::runtime::Runtime;

const ABOUT: &str = "Run software launches whose policies are sandboxed WebAssembly plugins";

const EXAMPLES: &str = "\
Examples:
  launch-host run --plugins plugins/ --yes        # the whole playbook on the embedded default
  launch-host plugins list --plugins plugins/     # what is installed
  launch-host plugins inspect plugins/slo-thresholds.wasm
  launch-host validate --plugins plugins/         # load everything, time cold and warm loads

Exit codes:
  0  success
  1  a gate failed
  2  usage or configuration error (bad flag, bad runbook, unusable plugin)
  3  the launch was rolled back
  4  internal error
  5  an environment is locked by another run";

#[derive(Parser, Debug)]
#[command(name = "launch-host", version, about = ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    /// Where compiled plugins are cached [default: the user's cache dir, launch-host/compiled]
    #[arg(long, global = true, value_name = "DIR", env = "LAUNCH_HOST_CACHE_DIR")]
    cache_dir: Option<PathBuf>,

    /// Compile every plugin from scratch; read and write no cache
    #[arg(long, global = true)]
    no_cache: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List and inspect plugins
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Run the launch playbook (the embedded default, or --runbook FILE)
    #[command(
        after_help = "Examples:\n  launch-host run --plugins plugins/ --yes\n  launch-host run --plugins plugins/ --yes --inject v2-latency=2500ms   # watch the canary roll back"
    )]
    Run(run::RunArgs),
    /// Continue an interrupted run without repeating a completed effect
    #[command(after_help = "Example:\n  launch-host resume 20261127T150000Z-1a2b")]
    Resume(run::ResumeArgs),
    /// Load every plugin of a directory and check it is usable (and the runbook, if given)
    #[command(after_help = "Example:\n  launch-host validate --plugins plugins/ --cold")]
    Validate(validate::ValidateArgs),
    /// A run's stages and verdicts (the latest run when no id is given)
    #[command(
        after_help = "Examples:\n  launch-host status\n  launch-host status 20261127T150000Z-1a2b --output json\n  launch-host status --state s3://my-bucket/launch   # a run started on another machine"
    )]
    Status(status::StatusArgs),
    /// Print a run's report (Markdown, or JSON with --output json), rebuilt from its journal
    #[command(
        after_help = "Examples:\n  launch-host report\n  launch-host report --output json > report.json"
    )]
    Report(status::ReportArgs),
    /// Roll back: emergency (flag to 0), full (previous release), validate (health checks)
    #[command(
        after_help = "Examples:\n  launch-host rollback emergency --reason \"Performance degradation detected\"\n  launch-host rollback full --reason \"Critical bug in StatusBoardV2\"\n  launch-host rollback validate"
    )]
    Rollback(rollback::RollbackArgs),
}

/// How results are printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    /// Aligned columns for people
    #[default]
    Table,
    /// One JSON document for machines
    Json,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Success.into()
            };
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(
                Exit::Internal,
                anyhow::anyhow!("cannot start the async runtime: {e}"),
            );
        }
    };
    match rt.block_on(run(cli)) {
        Ok(exit) => exit.into(),
        Err(e) => report(Exit::Internal, e),
    }
}

fn report(exit: Exit, e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    exit.into()
}

async fn run(cli: Cli) -> anyhow::Result<Exit> {
    let cache_dir = if cli.no_cache {
        None
    } else {
        cli.cache_dir
            .or_else(crate::runtime::cache::ArtifactCache::default_dir)
    };
    let runtime = Runtime::new(cache_dir)?;
    match cli.command {
        Command::Plugins(cmd) => plugins::run(&runtime, cmd).await,
        Command::Run(args) => run::run(&runtime, args).await,
        Command::Resume(args) => run::resume(&runtime, args).await,
        Command::Validate(args) => validate::run(&runtime, args).await,
        Command::Status(args) => status::status(args).await,
        Command::Report(args) => status::report(args).await,
        Command::Rollback(args) => rollback::run(&runtime, args).await,
    }
}
