//! `launch-host playbook validate|interactive|auto`: the guide's `execute-launch-playbook.sh`,
//! the whole 14-step launch on the workspace's environments.

use clap::{Args, Subcommand};

use super::usage;
use super::workspace::WorkspaceArgs;
use super::{Exit, Host};
use launch_engine::{Operation, RunOptions};

#[derive(Args, Debug)]
pub struct PlaybookArgs {
    /// Do not walk testers through untested UAT items in interactive mode
    #[arg(long, env = "SKIP_UAT_INTERACTIVE", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    skip_uat_interactive: bool,
    #[command(flatten)]
    ws: WorkspaceArgs,
}

#[derive(Subcommand, Debug)]
pub enum PlaybookCommand {
    /// Check everything before a launch: plugins, runbook, targets, stores, flags
    #[command(after_help = "Example:\n  launch-host playbook validate")]
    Validate(PlaybookArgs),
    /// The guided launch: proceed / skip / abort before each step (needs a terminal)
    #[command(after_help = "Example:\n  launch-host playbook interactive")]
    Interactive(PlaybookArgs),
    /// The automated launch for CI: no prompts (AUTO_CONFIRM), UAT items untested are skipped
    #[command(after_help = "Example:\n  AUTO_CONFIRM=true launch-host playbook auto")]
    Auto(PlaybookArgs),
}

pub async fn run(host: &Host, cmd: PlaybookCommand) -> anyhow::Result<Exit> {
    match cmd {
        PlaybookCommand::Validate(a) => a.ws.run(host, Operation::PlaybookValidate).await,
        PlaybookCommand::Interactive(a) => {
            if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return usage(anyhow::anyhow!(
                    "interactive mode needs a terminal to ask proceed / skip / abort; use `launch-host playbook auto` in pipelines"
                ));
            }
            let options = RunOptions {
                auto: false,
                interactive: true,
                skip_uat_interactive: a.skip_uat_interactive,
                ..a.ws.options(Operation::Playbook)
            };
            a.ws.run_with(host, options).await
        }
        PlaybookCommand::Auto(a) => {
            let options = RunOptions {
                auto: true,
                skip_uat_interactive: true,
                ..a.ws.options(Operation::Playbook)
            };
            a.ws.run_with(host, options).await
        }
    }
}
