//! `launch-host monitor start|SECS|dashboard`: the guide's `performance-monitor.sh`. The host
//! probes the environment's board, drawer and stats endpoints and shows latency, errors, OCC
//! conflicts and the flag — live on a terminal, as plain lines otherwise.

use std::time::Duration;

use clap::Args;

use super::dashboard;
use super::output::esay;
use super::output::json;
use super::usage;
use super::workspace::WorkspaceArgs;
use super::{Exit, Output};

#[derive(Args, Debug)]
pub struct MonitorArgs {
    /// `start` (until Ctrl-C), a number of seconds, or `dashboard` (one snapshot)
    #[arg(value_name = "start|SECS|dashboard")]
    what: String,
    /// The environment to watch
    #[arg(long = "env", value_name = "ENV", default_value = "production")]
    environment: String,
    /// Seconds per measurement window
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    interval: f64,
    /// `json` prints the final snapshot as JSON
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    #[command(flatten)]
    ws: WorkspaceArgs,
}

pub async fn run(args: MonitorArgs) -> anyhow::Result<Exit> {
    let until = match args.what.as_str() {
        "start" => None,
        "dashboard" => Some(Duration::from_secs(2)),
        secs => match secs.parse::<u64>() {
            Ok(n) if (1..=604_800).contains(&n) => Some(Duration::from_secs(n)),
            _ => {
                esay!(
                    "error: `{secs}` is not `start`, `dashboard` or a number of seconds from 1 to 604800 (a week); e.g. `launch-host monitor 600`"
                );
                return Ok(Exit::Usage);
            }
        },
    };
    if !(0.1..=3600.0).contains(&args.interval) {
        return usage(anyhow::anyhow!(
            "--interval {} is not between 0.1 and 3600 seconds",
            args.interval
        ));
    }
    let (rb, env) = match args.ws.open(&args.environment).await {
        Ok(opened) => opened,
        Err(e) => return usage(e),
    };
    // A one-shot snapshot shows only its result; the others draw as they go.
    let live = args.what != "dashboard" && args.output == Output::Table;
    let last = dashboard::watch(
        &rb,
        &env,
        &args.ws.runs_dir(),
        Duration::from_secs_f64(args.interval),
        until,
        live,
    )
    .await?;
    match (last, args.output) {
        (Some(s), Output::Json) => json(&s)?,
        (Some(s), Output::Table) if !live => dashboard::print(&s),
        (Some(_), Output::Table) => {}
        (None, _) => {
            esay!("error: no measurement window completed");
            return Ok(Exit::GateFailed);
        }
    }
    Ok(Exit::Success)
}
