//! The command line: argument parsing and output only; the work happens in the layers below.

mod agent;
mod backtest;
mod canary;
mod dashboard;
mod deploy;
mod exit;
mod launch;
mod monitor;
mod outcome;
mod output;
mod playbook;
mod plugin_test;
mod plugins;
mod registry;
mod replay;
mod rollback;
mod run;
mod scaffold;
mod serve;
mod status;
mod terminal;
mod uat;
mod validate;
mod verify;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use exit::{Exit, usage};

use launch_runtime::Runtime;

/// The plugin runtime, started on first use: commands that load no plugin (a rollback, a flag
/// move, a status) never start wasmtime, so they are as quick as the effect itself.
pub struct Host {
    cache_dir: Option<PathBuf>,
    runtime: std::sync::OnceLock<Runtime>,
}

impl Host {
    pub fn runtime(&self) -> anyhow::Result<&Runtime> {
        if let Some(rt) = self.runtime.get() {
            return Ok(rt);
        }
        let rt = Runtime::new(self.cache_dir.clone())?;
        let cached = self.cache_dir.is_some();
        rt.on_compile(move |path, size| {
            let once = if cached {
                "once: later loads come from the cache in milliseconds"
            } else {
                "no cache (--no-cache)"
            };
            eprintln!(
                "compiling {} ({}) to native code — {once}",
                path.display(),
                output::size(size)
            );
        });
        Ok(self.runtime.get_or_init(|| rt))
    }
}

const ABOUT: &str = "Run software launches whose policies are sandboxed WebAssembly plugins";

const EXAMPLES: &str = "\
Examples:
  launch-host run --plugins plugins/ --yes        # the whole playbook on the embedded default
  launch-host playbook interactive                # the guided launch: proceed / skip / abort
  launch-host deploy staging --yes                # one step of the guide at a time
  launch-host canary promote 50 --yes
  launch-host rollback emergency --reason \"SLO breach detected\"
  launch-host plugins list --plugins plugins/     # what is installed
  launch-host validate --plugins plugins/         # load everything, time cold and warm loads

Operator commands act on the runbook's environments (--runbook, or the embedded default) and
keep their state in the workspace (--workspace, default .launch/): embedded targets, UAT data
and every command's run folder with its journal and reports.

Exit codes:
  0  success
  1  a gate failed
  2  usage or configuration error (bad flag, bad runbook, unusable plugin)
  3  the launch was rolled back
  4  internal error
  5  an environment is locked by another run, or another process is running this run";

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
    /// List, inspect and test plugins (`plugin` works too)
    #[command(subcommand, visible_alias = "plugin")]
    Plugins(plugins::PluginsCommand),
    /// Run the launch playbook (the embedded default, or --runbook FILE)
    #[command(
        after_help = "Examples:\n  launch-host run --plugins plugins/ --yes\n  launch-host run --plugins plugins/ --yes --inject v2-latency=2500ms   # watch the canary roll back"
    )]
    Run(run::RunArgs),
    /// Stand by for the runs mirrored in S3: take a launch over when its runner dies (its
    /// lease goes silent), and carry it on or roll its canary back
    #[command(
        after_help = "Examples:\n  launch-host agent --state s3://my-bucket/launch --plugins plugins/\n  LAUNCH_HOST_STATE=s3://my-bucket/launch launch-host agent --workspace /var/lib/launch-host\n\nAny number of agents on any machines: one conditional write decides which takes a run.\nexamples/agent/ runs one under systemd and Kubernetes, with the IAM policy it needs."
    )]
    Agent(agent::AgentArgs),
    /// Continue an interrupted run without repeating a completed effect
    #[command(after_help = "Example:\n  launch-host resume 20261127T150000123Z-1a2b")]
    Resume(run::ResumeArgs),
    /// Load every plugin of a directory and check it is usable (and the runbook, if given)
    #[command(after_help = "Example:\n  launch-host validate --plugins plugins/ --cold")]
    Validate(validate::ValidateArgs),
    /// A run's stages and verdicts (the latest run when no id is given); with --state and no
    /// id, every run mirrored there
    #[command(
        after_help = "Examples:\n  launch-host status\n  launch-host status 20261127T150000123Z-1a2b --output json\n  launch-host status --state s3://my-bucket/launch   # every run there: outcome, stage, lease holder, takeovers\n  launch-host status 20261127T150000123Z-1a2b --state s3://my-bucket/launch   # a run started on another machine"
    )]
    Status(status::StatusArgs),
    /// Print a run's report (Markdown, or JSON with --output json), rebuilt from its journal
    #[command(
        after_help = "Examples:\n  launch-host report\n  launch-host report --output json > report.json"
    )]
    Report(status::ReportArgs),
    /// Check a run's history is the one its runner wrote: the journal's hash chain, the
    /// runner's signatures, the reports and recorded calls against the journal, (with
    /// --plugins) the plugins it ran, and (with --state) its S3 copy against the local one
    #[command(
        after_help = "Examples:\n  launch-host verify                                  # the latest run\n  launch-host verify 20261127T150000123Z-1a2b --plugins plugins/\n  launch-host verify --state s3://my-bucket/launch --trust ci-runner.pub   # the S3 copy, beside the local one\n\nThe runner signs the journal's head with its ed25519 key (LAUNCH_HOST_RUNNER_KEY, else\n~/.config/launch-host/runner_ed25519): verify trusts this machine's runner key and each --trust.\nIt never writes: the S3 copy is fetched into a scratch folder and compared.\n\nExit status: 0 intact · 1 a line, a signature, a report, a call or a plugin differs, or the copies disagree (named) · 2 usage"
    )]
    Verify(verify::VerifyArgs),
    /// Re-run a run's recorded plugin calls offline (HTTP answered from the recording), against
    /// the recorded plugins or a new one
    #[command(
        after_help = "Examples:\n  launch-host replay                       # the latest run: every decision must be reproduced\n  launch-host replay RUN --stage staging-canary --config '{\"max-latency-ms\": 3000}'\n  launch-host replay RUN --plugin my-canary.wasm --save-fixtures incident/\n\nExit status: 0 every replayed call answered as recorded · 1 one differs · 2 usage"
    )]
    Replay(replay::ReplayArgs),
    /// Replay one policy over every recorded call of its role in every run: which launches it
    /// would have rolled back, which it would have let through
    #[command(
        after_help = "Examples:\n  launch-host backtest my-canary.wasm --runs-dir .launch/runs\n  launch-host backtest plugins/canary-steps.wasm --config '{\"max-latency-ms\": 3000}' --since 2026-12-01\n\nEach call is replayed on the inputs recorded then: the first divergence is exact; after it, a\ncanary's later calls show what the policy says on the launch as it went, not as it would have.\n\nExit status: 0 it agrees on every run · 1 it would have rolled back or passed a run otherwise · 2 usage"
    )]
    Backtest(backtest::BacktestArgs),
    /// Roll back: emergency (flag to 0), full (previous release), validate (health checks)
    #[command(
        after_help = "Examples:\n  launch-host rollback emergency --reason \"Performance degradation detected\"\n  launch-host rollback full --reason \"Critical bug in StatusBoardV2\"\n  launch-host rollback validate"
    )]
    Rollback(rollback::RollbackArgs),
    /// Build and deploy to an environment (the guide's deploy-staging.sh)
    #[command(
        after_help = "Examples:\n  launch-host deploy staging --yes\n  launch-host deploy production --runbook launch.toml --yes"
    )]
    Deploy(deploy::DeployArgs),
    /// Smoke tests against an environment: quick checks, or --full (staging-smoke-tests.sh)
    #[command(
        after_help = "Examples:\n  launch-host smoke --yes\n  launch-host smoke --full --yes"
    )]
    Smoke(deploy::SmokeArgs),
    /// The feature-flag canary (canary-rollout.sh): init, start, monitor, promote, rollback, status
    #[command(subcommand)]
    Canary(canary::CanaryCommand),
    /// Performance monitoring (performance-monitor.sh): start, SECS, dashboard
    #[command(
        after_help = "Examples:\n  launch-host monitor start              # live, until Ctrl-C\n  launch-host monitor 600                # ten minutes\n  launch-host monitor dashboard --output json"
    )]
    Monitor(monitor::MonitorArgs),
    /// User acceptance testing (uat-validation.sh): checklist, tests, sign-offs, gate
    #[command(subcommand)]
    Uat(uat::UatCommand),
    /// The production launch (production-launch.sh)
    #[command(subcommand)]
    Launch(launch::LaunchCommand),
    /// The whole 14-step playbook (execute-launch-playbook.sh): validate, interactive, auto
    #[command(subcommand)]
    Playbook(playbook::PlaybookCommand),
    /// The runs as web pages, live while they run (server-sent events); with --allow-actions,
    /// token-guarded rollback and canary buttons
    #[command(
        after_help = "Examples:\n  launch-host serve                                   # http://127.0.0.1:8080/\n  launch-host serve --state s3://my-bucket/launch     # also the runs started elsewhere\n  launch-host serve --allow-actions --bind 127.0.0.1:9000"
    )]
    Serve(serve::ServeArgs),
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  launch-host completions bash > /etc/bash_completion.d/launch-host\n  launch-host completions zsh > \"${fpath[1]}/_launch-host\""
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
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
        // A launch runs on a worker (`on_worker`): the main thread's 8 MiB, not tokio's 2 MiB,
        // which a debug build's rollback path overflowed.
        .thread_stack_size(8 << 20)
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

/// Runs a launch on a worker thread of the runtime, not on the thread blocking in `main`: a
/// plugin's next instance (`launch_runtime::standby`) is then made on that worker while the
/// launch waits, instead of by waking another thread at the end of every call — ~10 µs of a
/// ~50 µs canary decision on a 2-core VM (`cargo bench --bench lab`).
async fn on_worker(
    launch: impl std::future::Future<Output = anyhow::Result<Exit>> + Send + 'static,
) -> anyhow::Result<Exit> {
    tokio::spawn(launch)
        .await
        .map_err(|e| anyhow::anyhow!("the launch stopped: {e}"))?
}

fn report(exit: Exit, e: anyhow::Error) -> ExitCode {
    exit::error(&e);
    exit.into()
}

async fn run(cli: Cli) -> anyhow::Result<Exit> {
    if let Command::Completions { shell } = cli.command {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut cmd, "launch-host", &mut std::io::stdout());
        return Ok(Exit::Success);
    }
    let cache_dir = if cli.no_cache {
        None
    } else {
        cli.cache_dir
            .or_else(launch_runtime::cache::ArtifactCache::default_dir)
    };
    let host = Host {
        cache_dir,
        runtime: std::sync::OnceLock::new(),
    };
    match cli.command {
        Command::Plugins(plugins::PluginsCommand::New(args)) => scaffold::run(args),
        Command::Plugins(cmd) => plugins::run(host.runtime()?, cmd).await,
        Command::Run(args) => on_worker(async move { run::run(&host, args).await }).await,
        Command::Resume(args) => {
            on_worker(async move { run::resume(host.runtime()?, args).await }).await
        }
        Command::Agent(args) => {
            on_worker(async move { agent::run(host.runtime()?, args).await }).await
        }
        Command::Validate(args) => validate::run(host.runtime()?, args).await,
        Command::Status(args) => status::status(args).await,
        Command::Report(args) => status::report(args).await,
        Command::Verify(args) => verify::verify(host.runtime()?, args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Replay(args) => replay::run(host.runtime()?, args).await,
        Command::Backtest(args) => backtest::run(host.runtime()?, args).await,
        Command::Rollback(args) => on_worker(async move { rollback::run(&host, args).await }).await,
        Command::Deploy(args) => on_worker(async move { deploy::deploy(&host, args).await }).await,
        Command::Smoke(args) => on_worker(async move { deploy::smoke(&host, args).await }).await,
        Command::Canary(cmd) => on_worker(async move { canary::run(&host, cmd).await }).await,
        Command::Monitor(args) => monitor::run(args).await,
        Command::Uat(cmd) => on_worker(async move { uat::run(&host, cmd).await }).await,
        Command::Launch(cmd) => on_worker(async move { launch::run(&host, cmd).await }).await,
        Command::Playbook(cmd) => on_worker(async move { playbook::run(&host, cmd).await }).await,
        Command::Completions { .. } => unreachable!("answered before the runtime starts"),
    }
}
