//! What every operator command shares: the runbook, the plugins, and the workspace folder
//! where runs, embedded environments and UAT data persist between commands.

use std::path::{Path, PathBuf};

use clap::Args;

use super::outcome::launch;
use super::output::esay;
use super::{Exit, Host, usage};
use launch_engine::environment::Env;
use launch_engine::{Operation, RunOptions, Runbook};
use launch_runtime::Catalog;

#[derive(Args, Debug, Clone)]
pub struct WorkspaceArgs {
    /// Directory holding the plugin `.wasm` files
    #[arg(
        long,
        value_name = "DIR",
        default_value = "plugins",
        env = "LAUNCH_HOST_PLUGINS"
    )]
    pub plugins: PathBuf,
    /// The runbook [default: the embedded default]
    #[arg(long, value_name = "FILE", env = "LAUNCH_HOST_RUNBOOK")]
    pub runbook: Option<PathBuf>,
    /// Where runs, embedded environments and UAT data persist between commands
    #[arg(
        long,
        value_name = "DIR",
        default_value = ".launch",
        env = "LAUNCH_HOST_WORKSPACE"
    )]
    pub workspace: PathBuf,
    /// Proceed without asking (also AUTO_CONFIRM=true); needed when not on a terminal
    #[arg(long, short = 'y', env = "AUTO_CONFIRM", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub yes: bool,
}

impl WorkspaceArgs {
    pub fn runs_dir(&self) -> PathBuf {
        self.workspace.join("runs")
    }

    pub fn options(&self, operation: Operation) -> RunOptions {
        RunOptions {
            lock: operation.takes_lock(),
            auto: self.yes || operation.never_asks(),
            workspace: Some(self.workspace.clone()),
            operation,
            ..RunOptions::new(self.plugins.clone(), self.yes)
        }
    }

    pub fn parse_runbook(&self) -> anyhow::Result<(Runbook, String)> {
        parse_runbook(self.runbook.as_deref())
    }

    /// The runbook and one of its environments, opened as the workspace's commands see it
    /// (an embedded target is started on its workspace state).
    pub async fn open(&self, environment: &str) -> anyhow::Result<(Runbook, Env)> {
        let (runbook, _) = self.parse_runbook()?;
        let env =
            launch_engine::workspace::open_env(&runbook, environment, &self.workspace).await?;
        Ok((runbook, env))
    }

    /// Runs an operator command on the workspace: the runbook parsed once, the plugins
    /// discovered only when the command needs them, the command planned by the engine.
    pub async fn run(&self, host: &Host, operation: Operation) -> anyhow::Result<Exit> {
        let options = self.options(operation);
        self.run_with(host, options).await
    }

    pub async fn run_with(&self, host: &Host, options: RunOptions) -> anyhow::Result<Exit> {
        let (runbook, text) = match self.parse_runbook() {
            Ok(parsed) => parsed,
            Err(e) => return usage(e),
        };
        if !answerable(options.auto) {
            return Ok(Exit::Usage);
        }
        let catalog = if options.operation.needs_plugins() && runbook.names_plugins() {
            match launch_engine::registry::catalog(host.runtime()?, &self.plugins, &runbook).await {
                Ok(c) => c,
                Err(e) => return usage(e),
            }
        } else {
            Catalog::empty(&self.plugins)
        };
        launch(&runbook, &text, catalog, options, &self.runs_dir()).await
    }
}

/// The runbook at `path` (the embedded default when `None`), parsed, with its text.
pub fn parse_runbook(path: Option<&Path>) -> anyhow::Result<(Runbook, String)> {
    let (text, source) = runbook_text(path)?;
    Ok((Runbook::parse(&text, &source)?, text))
}

pub fn runbook_text(path: Option<&Path>) -> anyhow::Result<(String, String)> {
    match path {
        Some(path) => {
            launch_engine::files::read_to_string(path, launch_engine::files::RUNBOOK, "the runbook")
                .map(|t| (t, path.display().to_string()))
                .map_err(|e| anyhow::anyhow!("{}: cannot read the runbook: {e:#}", path.display()))
        }
        None => Ok((
            launch_engine::runbook::DEFAULT_RUNBOOK.to_string(),
            "(embedded default runbook)".to_string(),
        )),
    }
}

/// Whether a run's questions can be answered: `--yes`, or a terminal. Says why not.
pub fn answerable(auto: bool) -> bool {
    let ok = auto || std::io::IsTerminal::is_terminal(&std::io::stdin());
    if !ok {
        esay!(
            "error: not on a terminal, so nobody can answer prompts: pass --yes (or AUTO_CONFIRM=true) to run unattended"
        );
    }
    ok
}
