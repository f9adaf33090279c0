//! What every operator command shares: the runbook, the plugins, and the workspace folder
//! where runs, embedded environments and UAT data persist between commands.

use std::path::{Path, PathBuf};

use clap::Args;

use super::Exit;
use super::run::launch;
use crate::engine::environment::Env;
use crate::engine::operation::{self, Derived, StageView};
use crate::engine::{self, RunOptions, Runbook};
use crate::runtime::{Catalog, Role, Runtime};

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

    /// The runbook's text and a name for messages.
    pub fn runbook_text(&self) -> anyhow::Result<(String, String)> {
        runbook_text(self.runbook.as_deref())
    }

    pub fn options(&self) -> RunOptions {
        RunOptions {
            workspace: Some(self.workspace.clone()),
            ..RunOptions::new(self.plugins.clone(), self.yes)
        }
    }

    pub fn parse_runbook(&self) -> anyhow::Result<Runbook> {
        let (text, source) = self.runbook_text()?;
        Ok(Runbook::parse(&text, &source)?)
    }

    /// The runbook and one of its environments, opened as the workspace's commands see it
    /// (an embedded target is started on its workspace state).
    pub async fn open(&self, environment: &str) -> anyhow::Result<(Runbook, Env)> {
        let runbook = self.parse_runbook()?;
        let env =
            crate::engine::workspace::open_env(&runbook, environment, &self.workspace).await?;
        Ok((runbook, env))
    }

    pub async fn catalog(&self, runtime: &Runtime) -> anyhow::Result<Catalog> {
        Ok(runtime.discover(&self.plugins).await?)
    }

    /// Runs `first` and then the stages of the workspace runbook that `pick` keeps, as one run.
    pub async fn run_derived(
        &self,
        runtime: &Runtime,
        command: &str,
        what: &str,
        pick: impl FnMut(&StageView) -> Option<toml::Table>,
        first: Vec<toml::Table>,
        options: RunOptions,
    ) -> anyhow::Result<Exit> {
        let (text, source) = match self.runbook_text() {
            Ok(t) => t,
            Err(e) => return usage(e),
        };
        let catalog = match self.catalog(runtime).await {
            Ok(c) => c,
            Err(e) => return usage(e),
        };
        let Derived { text, source } =
            match operation::derive(&text, &source, command, &catalog, pick, first, what) {
                Ok(d) => d,
                Err(e) => return usage(e),
            };
        if !options.auto && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            eprintln!(
                "error: not on a terminal, so nobody can answer prompts: pass --yes (or AUTO_CONFIRM=true) to run unattended"
            );
            return Ok(Exit::Usage);
        }
        launch(runtime, &text, &source, options, &self.runs_dir()).await
    }
}

pub fn runbook_text(path: Option<&Path>) -> anyhow::Result<(String, String)> {
    match path {
        Some(path) => std::fs::read_to_string(path)
            .map(|t| (t, path.display().to_string()))
            .map_err(|e| anyhow::anyhow!("{}: cannot read the runbook: {e}", path.display())),
        None => Ok((
            engine::runbook::DEFAULT_RUNBOOK.to_string(),
            "(embedded default runbook)".to_string(),
        )),
    }
}

pub fn usage(e: anyhow::Error) -> anyhow::Result<Exit> {
    eprintln!("error: {e:#}");
    Ok(Exit::Usage)
}

/// Picks the runbook's stages whose plugin plays `role` on `environment`.
pub fn by_role(role: Role, environment: &str) -> impl FnMut(&StageView) -> Option<toml::Table> {
    move |v| (v.role == Some(role) && v.environment == Some(environment)).then(|| v.table.clone())
}

/// Picks the runbook's stages doing the built-in `action` on `environment`.
pub fn by_action(action: &str, environment: &str) -> impl FnMut(&StageView) -> Option<toml::Table> {
    move |v| {
        (v.action == Some(action) && v.environment == Some(environment)).then(|| v.table.clone())
    }
}
