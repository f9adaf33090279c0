//! `launch-host playbook validate|interactive|auto`: the guide's `execute-launch-playbook.sh`,
//! the whole 14-step launch on the workspace's environments.

use clap::{Args, Subcommand};

use super::Exit;
use super::workspace::{WorkspaceArgs, usage};
use crate::engine::RunOptions;
use crate::engine::operation::{s, stage};
use crate::runtime::Runtime;

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

pub async fn run(runtime: &Runtime, cmd: PlaybookCommand) -> anyhow::Result<Exit> {
    match cmd {
        PlaybookCommand::Validate(a) => {
            let preflight = stage(&[
                ("name", s("preflight")),
                (
                    "title",
                    s("Pre-flight validation: plugins, runbook, targets, flags"),
                ),
                ("action", s("preflight")),
            ]);
            // Preflight checks the runbook against the plugins, then every environment.
            a.ws.run_derived(
                runtime,
                "playbook validate",
                "validates",
                |_| None,
                vec![preflight],
                RunOptions {
                    auto: true,
                    lock: false,
                    ..a.ws.options()
                },
            )
            .await
        }
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
                ..a.ws.options()
            };
            whole(runtime, &a.ws, "playbook interactive", options).await
        }
        PlaybookCommand::Auto(a) => {
            let options = RunOptions {
                auto: true,
                skip_uat_interactive: true,
                ..a.ws.options()
            };
            whole(runtime, &a.ws, "playbook auto", options).await
        }
    }
}

async fn whole(
    runtime: &Runtime,
    ws: &WorkspaceArgs,
    command: &str,
    options: RunOptions,
) -> anyhow::Result<Exit> {
    ws.run_derived(
        runtime,
        command,
        "runs",
        |v| Some(v.table.clone()),
        Vec::new(),
        options,
    )
    .await
}
