//! `launch-host status` and `launch-host report`: a run's state and reports, read from its
//! journal — in the local workspace, or fetched from the shared state in S3 (`--state`), so
//! another machine sees the same run.

use std::path::PathBuf;

use clap::Args;

use super::output::{esay, say};
use super::output::{json, table};
use super::{Exit, Output};
use launch_engine::report::RunReport;

#[derive(Args, Debug)]
pub struct RunRef {
    /// The run id [default: the latest run; `status --state URL` lists every run there]
    pub run: Option<String>,
    /// Read runs from this shared state location (s3://bucket/prefix) instead of the local
    /// workspace
    #[arg(long, value_name = "URL", env = "LAUNCH_HOST_STATE")]
    pub state: Option<String>,
    /// The workspace whose runs to read
    #[arg(
        long,
        value_name = "DIR",
        default_value = ".launch",
        env = "LAUNCH_HOST_WORKSPACE"
    )]
    pub workspace: PathBuf,
    /// Where runs are kept locally (and fetched runs are copied to) [default: WORKSPACE/runs]
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub run: RunRef,
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub run: RunRef,
    /// `table` prints the Markdown report, `json` the JSON one
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

impl RunRef {
    pub fn runs_dir(&self) -> PathBuf {
        self.runs_dir
            .clone()
            .unwrap_or_else(|| self.workspace.join("runs"))
    }

    /// The run's local folder, fetched from the shared state first when `--state` is given.
    pub async fn resolve(&self) -> anyhow::Result<PathBuf> {
        launch_engine::workspace::find_run(
            &self.runs_dir(),
            self.run.as_deref(),
            self.state.as_deref(),
        )
        .await
    }
}

pub async fn status(args: StatusArgs) -> anyhow::Result<Exit> {
    if let (None, Some(url)) = (&args.run.run, &args.run.state) {
        return fleet(url, &args).await;
    }
    let dir = match args.run.resolve().await {
        Ok(d) => d,
        Err(e) => return super::usage(e),
    };
    let report = RunReport::from_journal(&dir)?;
    if args.output == Output::Json {
        json(&report)?;
        return Ok(Exit::Success);
    }
    say!("run {} — {}", report.run_id, report.outcome.to_uppercase());
    say!("runbook: {}", report.runbook);
    if !report.summary.is_empty() {
        say!("{}", report.summary);
    }
    for t in &report.takeovers {
        say!("{}", t.describe());
    }
    let mut t = table(&["stage", "verdict", "what happened", "time"]);
    for s in &report.stages {
        t.add_row(vec![
            s.title.clone(),
            s.verdict
                .as_ref()
                .map_or("running".into(), |v| v.word().to_string()),
            s.outcome.clone(),
            format!("{:.1} s", s.elapsed_ms as f64 / 1000.0),
        ]);
    }
    say!("{t}");
    // Shadow policies: what they would have done beside the live one.
    for s in &report.stages {
        for (plugin, t) in launch_engine::report::tallies(s) {
            let mut also = String::new();
            if t.disagreed > 0 {
                also.push_str(&format!(", disagreed {}", t.disagreed));
            }
            if t.failed > 0 {
                also.push_str(&format!(", failed {}", t.failed));
            }
            say!(
                "shadow `{plugin}` on `{}`: agreed {} of {}{also}",
                s.name,
                t.agreed,
                t.asked
            );
        }
    }
    say!("folder: {}", dir.display());
    Ok(Exit::Success)
}

/// Every run under the state location, newest first: from the runs' summaries and leases,
/// each summary read once per version (kept in WORKSPACE/cache/runs/shared).
async fn fleet(url: &str, args: &StatusArgs) -> anyhow::Result<Exit> {
    let cache = args.run.workspace.join("cache").join("runs").join("shared");
    let rows = launch_engine::fleet::list(url, Some(&cache)).await?;
    if args.output == Output::Json {
        json(&rows)?;
        return Ok(Exit::Success);
    }
    let mut t = table(&["run", "launch", "outcome", "stage", "held by", "taken over"]);
    for r in &rows {
        let s = &r.summary;
        let stage = match &s.stage {
            Some(title) if s.finished_ms.is_none() => {
                format!("{title} ({}/{})", s.stages_finished + 1, s.stages_planned)
            }
            _ => format!("{}/{} stages", s.stages_finished, s.stages_planned),
        };
        let held = match (&r.owner, r.lease_age_ms) {
            (Some(who), Some(age)) => format!("{who}, renewed {:.1} s ago", age as f64 / 1000.0),
            _ => String::new(),
        };
        let takeovers = s
            .takeovers
            .iter()
            .map(|t| format!("by {} from {}", t.by, t.from))
            .collect::<Vec<_>>()
            .join("; ");
        t.add_row(vec![
            s.run_id.clone(),
            s.launch.clone(),
            s.outcome.clone(),
            stage,
            held,
            takeovers,
        ]);
    }
    say!("{} run(s) in {url}, newest first", rows.len());
    if !rows.is_empty() {
        say!("{t}");
    }
    Ok(Exit::Success)
}

pub async fn report(args: ReportArgs) -> anyhow::Result<Exit> {
    let dir = match args.run.resolve().await {
        Ok(d) => d,
        Err(e) => return super::usage(e),
    };
    // Rebuilt from the journal, so an interrupted or fetched run has current reports too.
    launch_engine::report::write_all(&dir)?;
    let file = match args.output {
        Output::Json => "report.json",
        Output::Table => "report.md",
    };
    print!("{}", std::fs::read_to_string(dir.join(file))?);
    esay!(
        "reports: {}/report.{{md,html,json}}, {}/junit.xml",
        dir.display(),
        dir.display()
    );
    Ok(Exit::Success)
}
