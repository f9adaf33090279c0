//! Operator actions from the page (`serve --allow-actions`): pause, resume and abort a running
//! canary, and roll back in an emergency. Each needs the token the server printed at start,
//! sent in the form's body (so it is never in a URL a proxy or the server could log), and
//! names the operator, who is journaled with it. A refused action does nothing at all.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use subtle::ConstantTimeEq;

use launch_engine::control::{self, Command};
use launch_engine::run::{Launch, start};
use launch_engine::{Operation, RollbackMode, RunOptions, Runbook, Unattended};
use launch_runtime::Catalog;

/// What the server may do for an operator.
pub struct Actions {
    token: String,
    /// The workspace's runbook and plugins, for a rollback (which loads no plugin).
    pub runbook: Arc<Runbook>,
    pub text: String,
    pub plugins: PathBuf,
    pub workspace: PathBuf,
}

/// The buttons of the page.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pause,
    Resume,
    Abort,
    Rollback,
}

#[derive(Debug, Deserialize)]
pub struct Form {
    pub action: Action,
    #[serde(default)]
    pub operator: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub token: String,
    /// The emergency rollback's confirmation box (`yes` when ticked).
    #[serde(default)]
    pub confirm: String,
}

/// Why an action was not done.
pub enum Refusal {
    /// No token, or not the server's.
    Forbidden,
    /// The form is incomplete (no operator).
    Incomplete(String),
    /// It cannot be done to this run now (no canary running, no environment…).
    Conflict(String),
}

impl Actions {
    pub fn new(runbook: Runbook, text: String, plugins: PathBuf, workspace: PathBuf) -> Actions {
        let mut bytes = [0u8; 32];
        // Without the system's randomness no token can be trusted: then no action is possible.
        let token = match getrandom::fill(&mut bytes) {
            Ok(()) => hex::encode(bytes),
            Err(_) => String::new(),
        };
        Actions {
            token,
            runbook: Arc::new(runbook),
            text,
            plugins,
            workspace,
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    fn allows(&self, given: &str) -> bool {
        !self.token.is_empty() && bool::from(self.token.as_bytes().ct_eq(given.trim().as_bytes()))
    }

    /// Does `form` to the run in `run_dir`; what was done, for the operator.
    pub async fn act(&self, run_dir: &Path, form: &Form) -> Result<String, Refusal> {
        if !self.allows(&form.token) {
            return Err(Refusal::Forbidden);
        }
        let operator = form.operator.trim();
        if operator.is_empty() {
            return Err(Refusal::Incomplete(
                "say who you are: the operator is journaled with the action".into(),
            ));
        }
        let reason = match form.reason.trim() {
            "" => "from the web dashboard".to_string(),
            r => format!("{r} (from the web dashboard)"),
        };
        let command = match form.action {
            Action::Pause => Command::Pause,
            Action::Resume => Command::Resume,
            Action::Abort => Command::Abort,
            Action::Rollback if form.confirm != "yes" => {
                return Err(Refusal::Incomplete(
                    "tick the confirmation: an emergency rollback sets the flag to 0% at once; nothing was done".into(),
                ));
            }
            Action::Rollback => return self.rollback(run_dir, operator, &reason).await,
        };
        // The run's own runbook says which environment its canary is on.
        let runbook = run_runbook(run_dir).map_err(|e| Refusal::Conflict(format!("{e:#}")))?;
        let env = control::send_to_run(run_dir, &runbook, command, operator, &reason)
            .map_err(|e| Refusal::Conflict(format!("{e:#}")))?;
        Ok(format!(
            "{} sent to the canary on `{env}` by {operator}; it acts within one check interval",
            command.word()
        ))
    }

    /// An emergency rollback of the environment the run reached, as `rollback emergency` does.
    async fn rollback(
        &self,
        run_dir: &Path,
        operator: &str,
        reason: &str,
    ) -> Result<String, Refusal> {
        let runbook = run_runbook(run_dir).map_err(|e| Refusal::Conflict(format!("{e:#}")))?;
        let environment = reached(run_dir, &runbook).map_err(Refusal::Conflict)?;
        let options = RunOptions {
            lock: false,
            auto: true,
            workspace: Some(self.workspace.clone()),
            operator: Some(operator.to_string()),
            operation: Operation::Rollback {
                environment: environment.clone(),
                mode: RollbackMode::Emergency,
                reason: format!("{reason} (by {operator})"),
            },
            ..RunOptions::new(self.plugins.clone(), true)
        };
        let launch = Launch {
            runbook: &self.runbook,
            text: &self.text,
            catalog: Catalog::empty(&self.plugins),
            options,
            operator: Arc::new(Unattended),
            runs_root: &self.workspace.join("runs"),
        };
        match start(launch).await {
            Ok(summary) => Ok(format!(
                "emergency rollback of `{environment}` by {operator}: run {} {}",
                summary.run_id,
                summary.outcome.word()
            )),
            Err(e) => Err(Refusal::Conflict(format!("{e:#}"))),
        }
    }
}

/// The environment the run in `run_dir` reached last: the one an emergency rollback sets back.
fn reached(run_dir: &Path, runbook: &Runbook) -> Result<String, String> {
    let report =
        launch_engine::report::RunReport::from_journal(run_dir).map_err(|e| format!("{e:#}"))?;
    report
        .stages
        .iter()
        .rev()
        .find_map(|s| {
            runbook
                .stages
                .iter()
                .find(|r| r.name.get_ref() == &s.name)
                .and_then(|r| r.environment())
        })
        .map(str::to_string)
        .ok_or_else(|| "this run has reached no environment to roll back".into())
}

/// What the emergency rollback of the run in `run_dir` would do, for its confirmation.
pub fn emergency(run_dir: &Path) -> String {
    let runbook = match run_runbook(run_dir) {
        Ok(r) => r,
        Err(e) => return format!("No rollback is possible: {e:#}"),
    };
    match reached(run_dir, &runbook) {
        Ok(env) => format!(
            "Sets {} to 0% in {env} now: an emergency rollback, journaled as a run of its own under your name.",
            runbook.launch.flag
        ),
        Err(why) => format!("No rollback is possible: {why}."),
    }
}

fn run_runbook(run_dir: &Path) -> anyhow::Result<Runbook> {
    let path = run_dir.join("runbook.toml");
    let text = launch_engine::files::read_to_string(
        &path,
        launch_engine::files::RUNBOOK,
        "the run's runbook copy",
    )?;
    Ok(Runbook::parse(&text, &path.display().to_string())?)
}
