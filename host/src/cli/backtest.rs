//! `launch-host backtest`: a policy replayed over the launches already run — which it would
//! have stopped, which it would have let through — before it acts on real traffic.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::output::{json, say, table};
use super::{Exit, Output, usage};
use launch_engine::lab::backtest::{self, Backtested, Finding};
use launch_runtime::{Role, Runtime};

/// The roles a backtest replays (a step decides nothing to compare).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BacktestRole {
    CanaryPolicy,
    SloGate,
    SmokeSuite,
    UatChecklist,
}

impl From<BacktestRole> for Role {
    fn from(r: BacktestRole) -> Role {
        match r {
            BacktestRole::CanaryPolicy => Role::CanaryPolicy,
            BacktestRole::SloGate => Role::SloGate,
            BacktestRole::SmokeSuite => Role::SmokeSuite,
            BacktestRole::UatChecklist => Role::UatChecklist,
        }
    }
}

#[derive(Args, Debug)]
pub struct BacktestArgs {
    /// The policy: a .wasm file
    policy: PathBuf,
    /// The role to backtest; must be the policy's own (it says which calls are replayed)
    #[arg(long, value_enum)]
    role: Option<BacktestRole>,
    /// Where the runs are
    #[arg(long, value_name = "DIR", default_value = ".launch/runs")]
    runs_dir: PathBuf,
    /// Also every run mirrored in this shared state (s3://BUCKET/PREFIX), fetched into a
    /// scratch folder; a run in --runs-dir too is read from there
    #[arg(long, value_name = "URL")]
    state: Option<String>,
    /// Only runs started on or after this day (YYYY-MM-DD, UTC)
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// JSON merged over each replayed call's recorded config, e.g. '{"max-latency-ms": 3000}'
    #[arg(long, value_name = "JSON")]
    config: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// How many runs a backtest reads at most: a bound, like every list.
const MAX_RUNS: usize = 100_000;

pub async fn run(runtime: &Runtime, args: BacktestArgs) -> anyhow::Result<Exit> {
    let config = match args.config.as_deref().map(serde_json::from_str) {
        None => None,
        Some(Ok(serde_json::Value::Object(map))) => Some(map),
        Some(_) => {
            return usage(anyhow::anyhow!(
                "--config takes a JSON object, e.g. '{{\"max-latency-ms\": 3000}}'"
            ));
        }
    };
    // Run ids begin with their start day: `20261203T…`.
    let since = match args.since.as_deref() {
        None => None,
        Some(d) if is_day(d) => Some(d.replace('-', "")),
        Some(d) => {
            return usage(anyhow::anyhow!(
                "--since {d}: give a day as YYYY-MM-DD, e.g. --since 2026-12-01"
            ));
        }
    };
    let policy = match runtime.load(&args.policy).await {
        Ok(p) => p,
        Err(e) => return usage(e.into()),
    };
    if let Some(role) = args.role.map(Role::from)
        && role != policy.role()
    {
        return usage(anyhow::anyhow!(
            "{} is a {} plugin, not a {role}: backtest it as --role {}",
            args.policy.display(),
            policy.role(),
            policy.role()
        ));
    }
    if policy.role() == Role::Step {
        return usage(anyhow::anyhow!(
            "{} is a step: it decides nothing a backtest could compare (backtest a canary-policy, slo-gate, smoke-suite or uat-checklist)",
            args.policy.display()
        ));
    }
    // Local runs, then those mirrored in the shared state that are not here (fetched).
    let mut found: Vec<(String, PathBuf)> = launch_engine::workspace::runs(&args.runs_dir)
        .into_iter()
        .map(|id| (id.clone(), args.runs_dir.join(id)))
        .collect();
    let scratch = tempfile::tempdir()?;
    let mut unreadable = Vec::new();
    if let Some(url) = &args.state {
        let local: std::collections::BTreeSet<String> =
            found.iter().map(|(id, _)| id.clone()).collect();
        let mirrored = match launch_engine::mirror::list(url).await {
            Ok(ids) => ids,
            Err(e) => return usage(e.context(format!("listing the runs in {url}"))),
        };
        let wanted: Vec<String> = mirrored
            .into_iter()
            .filter(|id| !local.contains(id))
            .filter(|id| since.as_deref().is_none_or(|s| id.as_str() >= s))
            .take(MAX_RUNS)
            .collect();
        let fetched = fetch_all(url, &wanted, scratch.path()).await;
        for (id, result) in wanted.into_iter().zip(fetched) {
            match result {
                Ok(dir) => found.push((id, dir)),
                Err(e) => unreadable.push(format!("{id}: fetching from {url}: {e:#}")),
            }
        }
    }
    if found.is_empty() && unreadable.is_empty() {
        return usage(anyhow::anyhow!(
            "no runs in {}{} (pass the folder with --runs-dir, or the shared state with --state)",
            args.runs_dir.display(),
            args.state
                .as_deref()
                .map(|u| format!(" or {u}"))
                .unwrap_or_default()
        ));
    }
    // Runs are independent: as many at once as there are cores, each on a task of its own.
    let (policy, config) = (std::sync::Arc::new(policy), std::sync::Arc::new(config));
    let wanted: Vec<&(String, PathBuf)> = found
        .iter()
        .take(MAX_RUNS)
        .filter(|(id, _)| since.as_deref().is_none_or(|s| id.as_str() >= s))
        .collect();
    let at_once = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut tasks = tokio::task::JoinSet::new();
    let mut done = Vec::with_capacity(wanted.len());
    for (i, (id, dir)) in wanted.iter().enumerate() {
        if tasks.len() >= at_once
            && let Some(finished) = tasks.join_next().await
        {
            done.push(finished?);
        }
        let (dir, policy, config) = (dir.clone(), policy.clone(), config.clone());
        let id = id.to_string();
        tasks.spawn(async move {
            let result = backtest::run(&dir, &policy, config.as_ref().as_ref()).await;
            (i, id, result)
        });
    }
    while let Some(finished) = tasks.join_next().await {
        done.push(finished?);
    }
    done.sort_by_key(|(i, _, _)| *i);
    let mut rows = Vec::new();
    for (_, id, result) in done {
        match result {
            Ok(Some(row)) => rows.push(row),
            Ok(None) => {}
            Err(e) if e.is::<backtest::ConfigRefused>() => return usage(e),
            Err(e) => unreadable.push(format!("{id}: {e:#}")),
        }
    }
    match args.output {
        Output::Json => json(&serde_json::json!({
            "policy": policy.info.name,
            "role": policy.role().to_string(),
            "runs": rows,
            "unreadable": unreadable,
        }))?,
        Output::Table => print(&policy.info.name, &rows, &unreadable),
    }
    let changed = rows
        .iter()
        .any(|r| matches!(r.finding, Finding::WouldRollBack | Finding::WouldPass));
    Ok(if changed {
        Exit::GateFailed
    } else {
        Exit::Success
    })
}

/// Fetches each run from the shared state into `into/<id>`, eight at a time (S3 answers many
/// small reads at once far faster than one after another).
async fn fetch_all(
    url: &str,
    ids: &[String],
    into: &std::path::Path,
) -> Vec<anyhow::Result<PathBuf>> {
    use futures::StreamExt as _;
    futures::stream::iter(ids.iter().map(|id| async move {
        let dir = into.join(id);
        launch_engine::mirror::fetch_to(url, id, &dir).await?;
        Ok(dir)
    }))
    .buffered(8)
    .collect()
    .await
}

fn is_day(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn word(f: Finding) -> &'static str {
    match f {
        Finding::Agreed => "agreed",
        Finding::WouldRollBack => "WOULD ROLL BACK",
        Finding::WouldPass => "WOULD PASS",
        Finding::NoData => "no data",
    }
}

fn print(policy: &str, rows: &[Backtested], unreadable: &[String]) {
    let mut t = table(&["RUN", "RECORDED", "POLICY", "CALLS", "FIRST DIVERGENCE"]);
    for r in rows {
        let first = r.first_divergence.as_ref().map_or(String::new(), |d| {
            let (i, d) = (d.call, &d.replayed);
            let at = d.percent.map_or(String::new(), |p| format!(" at {p}%"));
            format!(
                "#{i} `{}`{at}: {} → {} {}",
                d.stage, d.recorded, d.answer, d.reason
            )
        });
        t.add_row(vec![
            r.run_id.clone(),
            r.outcome.clone(),
            word(r.finding).to_string(),
            format!("{} ({} different)", r.calls, r.different),
            first,
        ]);
    }
    if !rows.is_empty() {
        say!("{t}");
    }
    for u in unreadable {
        say!("not read: {u}");
    }
    let ids = |f: Finding| -> Vec<&str> {
        rows.iter()
            .filter(|r| r.finding == f)
            .map(|r| r.run_id.as_str())
            .collect()
    };
    let (agreed, roll, pass, blind) = (
        ids(Finding::Agreed),
        ids(Finding::WouldRollBack),
        ids(Finding::WouldPass),
        ids(Finding::NoData),
    );
    let mut s = table(&["SUMMARY", "RUNS", "RUN IDS"]);
    s.add_row(vec![
        "agreed".into(),
        agreed.len().to_string(),
        String::new(),
    ]);
    s.add_row(vec![
        "would have rolled back a launch that went on".into(),
        roll.len().to_string(),
        roll.join(" "),
    ]);
    s.add_row(vec![
        "would have passed a launch that was stopped".into(),
        pass.len().to_string(),
        pass.join(" "),
    ]);
    s.add_row(vec![
        "no data (it judged nothing)".into(),
        blind.len().to_string(),
        blind.join(" "),
    ]);
    say!("{s}");
    say!(
        "{policy} over {} run(s) with calls of its role{}",
        rows.len(),
        if unreadable.is_empty() {
            String::new()
        } else {
            format!("; {} not read", unreadable.len())
        }
    );
}
