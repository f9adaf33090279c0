//! `launch-host serve`: the workspace's runs as web pages, live while they run (see the
//! `launch-web` crate). Loopback by default; actions only with `--allow-actions`, each needing
//! the token printed here.

use std::net::SocketAddr;

use clap::Args;

use super::output::{esay, say};
use super::workspace::WorkspaceArgs;
use super::{Exit, usage};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where to listen: loopback unless you say otherwise
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Also show the runs mirrored in this shared state (`s3://bucket/prefix`)
    #[arg(long, value_name = "URL")]
    state: Option<String>,
    /// Add the operator's buttons — rollback emergency, canary pause|resume|abort — guarded by
    /// a token printed at start; each action is journaled with the operator's name
    #[arg(long)]
    allow_actions: bool,
    #[command(flatten)]
    ws: WorkspaceArgs,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<Exit> {
    let actions = if args.allow_actions {
        let (runbook, text) = match args.ws.parse_runbook() {
            Ok(parsed) => parsed,
            Err(e) => return usage(e),
        };
        Some(launch_web::Actions::new(
            runbook,
            text,
            args.ws.plugins.clone(),
            args.ws.workspace.clone(),
        ))
    } else {
        None
    };
    let listener = match tokio::net::TcpListener::bind(args.bind).await {
        Ok(l) => l,
        Err(e) => return usage(anyhow::anyhow!("cannot listen on {}: {e}", args.bind)),
    };
    let addr = listener.local_addr()?;
    if !launch_web::is_loopback(&addr) {
        esay!(
            "warning: serving on {addr}, reachable from other machines; every page shows your launches"
        );
    }
    say!(
        "serving the runs of {} on http://{addr}/",
        args.ws.runs_dir().display()
    );
    if let Some(a) = &actions {
        // On the console only: the token is typed into the page's form, never put in a URL.
        esay!(
            "actions allowed; the token for the page's action form: {}",
            a.token()
        );
    }
    launch_web::serve(
        listener,
        launch_web::Config {
            runs: launch_web::Runs {
                dir: args.ws.runs_dir(),
                state: args.state,
                cache: Some(args.ws.workspace.join("cache").join("runs")),
            },
            actions,
        },
    )
    .await?;
    Ok(Exit::Success)
}
