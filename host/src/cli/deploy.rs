//! `launch-host deploy ENV` (the guide's `deploy-staging.sh`) and `launch-host smoke [--full]`
//! (`staging-smoke-tests.sh`): the runbook's own deploy and smoke stages for one environment.

use clap::Args;

use super::workspace::WorkspaceArgs;
use super::{Exit, Host};
use launch_engine::Operation;

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The environment to build and deploy to (as named in the runbook)
    #[arg(value_name = "ENV")]
    environment: String,
    #[command(flatten)]
    ws: WorkspaceArgs,
}

#[derive(Args, Debug)]
pub struct SmokeArgs {
    /// The comprehensive suite (assets, cache headers, secrets, CORS, OCC); quick checks only
    /// without it
    #[arg(long)]
    full: bool,
    /// The environment to test
    #[arg(long = "env", value_name = "ENV", default_value = "staging")]
    environment: String,
    #[command(flatten)]
    ws: WorkspaceArgs,
}

pub async fn deploy(host: &Host, args: DeployArgs) -> anyhow::Result<Exit> {
    let op = Operation::Deploy {
        environment: args.environment.clone(),
    };
    args.ws.run(host, op).await
}

pub async fn smoke(host: &Host, args: SmokeArgs) -> anyhow::Result<Exit> {
    let op = Operation::Smoke {
        environment: args.environment.clone(),
        full: args.full,
    };
    args.ws.run(host, op).await
}
