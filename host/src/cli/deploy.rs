//! `launch-host deploy ENV` (the guide's `deploy-staging.sh`) and `launch-host smoke [--full]`
//! (`staging-smoke-tests.sh`): the runbook's own deploy and smoke stages for one environment.

use clap::Args;
use toml::Value;

use super::Exit;
use super::workspace::{WorkspaceArgs, by_action};
use crate::runtime::{Role, Runtime};

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

pub async fn deploy(runtime: &Runtime, args: DeployArgs) -> anyhow::Result<Exit> {
    let env = args.environment.clone();
    args.ws
        .run_derived(
            runtime,
            &format!("deploy {env}"),
            &format!("deploys to `{env}` (action = \"deploy\")"),
            by_action("deploy", &env),
            Vec::new(),
            args.ws.options(),
        )
        .await
}

pub async fn smoke(runtime: &Runtime, args: SmokeArgs) -> anyhow::Result<Exit> {
    let env = args.environment.clone();
    let mode = if args.full { "full" } else { "quick" };
    args.ws
        .run_derived(
            runtime,
            &format!(
                "smoke --env {env}{}",
                if args.full { " --full" } else { "" }
            ),
            &format!("runs a smoke-suite plugin against `{env}`"),
            |v| {
                if v.role != Some(Role::SmokeSuite) || v.environment != Some(env.as_str()) {
                    return None;
                }
                let mut t = v.table.clone();
                let config = t
                    .entry("config")
                    .or_insert_with(|| Value::Table(Default::default()));
                if let Value::Table(c) = config {
                    c.insert("mode".into(), Value::String(mode.into()));
                }
                Some(t)
            },
            Vec::new(),
            // Smoke tests only read, so they run even while a launch holds the lock.
            crate::engine::RunOptions {
                lock: false,
                ..args.ws.options()
            },
        )
        .await
}
