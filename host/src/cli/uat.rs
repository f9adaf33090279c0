//! `launch-host uat init|status|test ID|approve|report|checklist|signoffs`: the guide's
//! `uat-validation.sh`. The checklist comes from the runbook's UAT plugin; results and
//! sign-offs are kept in the workspace (`<workspace>/uat/`), and `report` runs the UAT gate.

use clap::{Args, Subcommand, ValueEnum};

use super::output::say;
use super::output::{json, table};
use super::usage;
use super::workspace::WorkspaceArgs;
use super::{Exit, Host, Output};
use launch_engine::Operation;
use launch_engine::journal::now_ms;
use launch_engine::uat::{self, ResultFile, SignoffFile, UatData};

#[derive(Args, Debug)]
pub struct UatArgs {
    /// The environment the UAT runs on
    #[arg(long = "env", value_name = "ENV", default_value = "staging")]
    pub environment: String,
    #[command(flatten)]
    pub ws: WorkspaceArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum TestOutcome {
    Pass,
    Fail,
    Blocked,
    Skipped,
}

impl From<TestOutcome> for uat::Outcome {
    fn from(o: TestOutcome) -> uat::Outcome {
        match o {
            TestOutcome::Pass => uat::Outcome::Pass,
            TestOutcome::Fail => uat::Outcome::Fail,
            TestOutcome::Blocked => uat::Outcome::Blocked,
            TestOutcome::Skipped => uat::Outcome::Skipped,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Decision {
    Approved,
    Rejected,
    Conditional,
}

impl From<Decision> for uat::Decision {
    fn from(d: Decision) -> uat::Decision {
        match d {
            Decision::Approved => uat::Decision::Approved,
            Decision::Rejected => uat::Decision::Rejected,
            Decision::Conditional => uat::Decision::Conditional,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum UatCommand {
    /// Record the UAT plugin's checklist and run its automated probes
    #[command(after_help = "Example:\n  launch-host uat init --yes")]
    Init(UatArgs),
    /// Progress: items tested, failures, sign-offs
    #[command(after_help = "Example:\n  launch-host uat status --output json")]
    Status {
        #[command(flatten)]
        args: UatArgs,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Walk through one item and record its result (prompts on a terminal; --result otherwise)
    #[command(
        after_help = "Examples:\n  launch-host uat test func_001\n  launch-host uat test func_001 --result pass --notes \"drawer opens in 120 ms\""
    )]
    Test {
        /// The item id, as `uat checklist` lists it
        id: String,
        /// Record this result without prompting
        #[arg(long, value_enum)]
        result: Option<TestOutcome>,
        #[arg(long, default_value = "")]
        notes: String,
        /// Who tested [default: $USER]
        #[arg(long)]
        tester: Option<String>,
        #[command(flatten)]
        args: UatArgs,
    },
    /// Record a stakeholder's sign-off, with the time and what it approves: the builds of the
    /// runbook's plugins and what each may do (the capability manifest). If either changes,
    /// the UAT gate fails until the sign-off is given again.
    #[command(
        after_help = "Example:\n  launch-host uat approve qa_lead \"Jane Smith\" approved \"All tests pass\" --plugins plugins/"
    )]
    Approve {
        /// The stakeholder's role, e.g. qa_lead, product_owner
        role: String,
        name: String,
        #[arg(value_enum)]
        decision: Decision,
        #[arg(default_value = "")]
        note: String,
        #[command(flatten)]
        args: UatArgs,
    },
    /// Run the UAT gate on what is recorded and write the report
    #[command(after_help = "Example:\n  launch-host uat report --yes")]
    Report(UatArgs),
    /// The test checklist
    #[command(after_help = "Example:\n  launch-host uat checklist")]
    Checklist {
        #[command(flatten)]
        args: UatArgs,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// The sign-offs recorded so far
    #[command(after_help = "Example:\n  launch-host uat signoffs")]
    Signoffs {
        #[command(flatten)]
        args: UatArgs,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

fn dir(ws: &WorkspaceArgs) -> std::path::PathBuf {
    launch_engine::workspace::uat_dir(&ws.workspace)
}

fn at(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

fn load(ws: &WorkspaceArgs) -> anyhow::Result<UatData> {
    let data = UatData::load(&dir(ws))?;
    anyhow::ensure!(
        !data.items.is_empty(),
        "no UAT checklist in {}; run `launch-host uat init` first",
        dir(ws).display()
    );
    Ok(data)
}

/// What an approval covers: the builds of the runbook's plugins and what each may do. A
/// plugin the runbook uses that is not installed cannot be approved.
async fn scope(host: &Host, ws: &WorkspaceArgs) -> anyhow::Result<uat::Scope> {
    let (runbook, _) = ws.parse_runbook()?;
    let catalog = launch_engine::registry::catalog(host.runtime()?, &ws.plugins, &runbook).await?;
    let manifest = launch_engine::manifest::Manifest::of_catalog(&runbook, &catalog);
    if let Some(g) = manifest
        .grants
        .iter()
        .find(|g| catalog.get(&g.plugin).is_none())
    {
        anyhow::bail!(
            "{}: stage `{}` uses plugin `{}`, which is not in {}: an approval covers the plugins' builds, so install it first",
            runbook.source,
            g.stage,
            g.plugin,
            catalog.dir.display()
        );
    }
    Ok(uat::Scope::of(manifest, &catalog))
}

pub async fn run(host: &Host, cmd: UatCommand) -> anyhow::Result<Exit> {
    match cmd {
        UatCommand::Init(a) => {
            let op = Operation::UatInit {
                environment: a.environment.clone(),
            };
            a.ws.run(host, op).await
        }
        UatCommand::Report(a) => {
            let op = Operation::UatReport {
                environment: a.environment.clone(),
            };
            a.ws.run(host, op).await
        }
        UatCommand::Status { args: a, output } => {
            let data = match load(&a.ws) {
                Ok(d) => d,
                Err(e) => return usage(e),
            };
            let count = |o: uat::Outcome| {
                data.items
                    .iter()
                    .filter(|i| data.result(&i.id).is_some_and(|r| r.outcome == o))
                    .count()
            };
            let untested: Vec<&str> = data
                .items
                .iter()
                .filter(|i| data.result(&i.id).is_none())
                .map(|i| i.id.as_str())
                .collect();
            let status = serde_json::json!({
                "items": data.items.len(),
                "pass": count(uat::Outcome::Pass),
                "fail": count(uat::Outcome::Fail),
                "blocked": count(uat::Outcome::Blocked),
                "skipped": count(uat::Outcome::Skipped),
                "untested": untested,
                "signoffs": data.signoffs,
            });
            if output == Output::Json {
                json(&status)?;
            } else {
                say!(
                    "UAT: {} item(s): {} pass, {} fail, {} blocked, {} skipped, {} untested",
                    data.items.len(),
                    status["pass"],
                    status["fail"],
                    status["blocked"],
                    status["skipped"],
                    untested.len()
                );
                if !untested.is_empty() {
                    say!("untested: {}", untested.join(", "));
                }
                say!(
                    "sign-offs: {}",
                    if data.signoffs.is_empty() {
                        "none".to_string()
                    } else {
                        data.signoffs
                            .iter()
                            .map(|s| format!("{} {} ({})", s.role, s.name, s.decision.word()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                );
            }
            Ok(Exit::Success)
        }
        UatCommand::Test {
            id,
            result,
            notes,
            tester,
            args: a,
        } => {
            let data = match load(&a.ws) {
                Ok(d) => d,
                Err(e) => return usage(e),
            };
            let Some(item) = data.items.iter().find(|i| i.id == id) else {
                let ids: Vec<&str> = data.items.iter().map(|i| i.id.as_str()).collect();
                return usage(anyhow::anyhow!(
                    "no UAT item `{id}` (items: {})",
                    ids.join(", ")
                ));
            };
            let tester = tester
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "tester".into());
            let (outcome, notes) = match result {
                Some(outcome) => (outcome.into(), notes),
                None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
                    match super::terminal::walk_through(item) {
                        Some(a) => (a.outcome, a.notes),
                        None => return usage(anyhow::anyhow!("no answer; nothing recorded")),
                    }
                }
                None => {
                    return usage(anyhow::anyhow!(
                        "not on a terminal, so nobody can answer: pass --result pass|fail|blocked|skipped (and --notes)"
                    ));
                }
            };
            let recorded = ResultFile {
                id: item.id.clone(),
                outcome,
                tester,
                notes,
                at_ms: now_ms(),
            };
            say!(
                "{}: {} by {} at {}",
                recorded.id,
                recorded.outcome.word(),
                recorded.tester,
                at(recorded.at_ms)
            );
            uat::record_result(&dir(&a.ws), recorded)?;
            Ok(Exit::Success)
        }
        UatCommand::Approve {
            role,
            name,
            decision,
            note,
            args: a,
        } => {
            if let Err(e) = load(&a.ws) {
                return usage(e);
            }
            let scope = match scope(host, &a.ws).await {
                Ok(s) => s,
                Err(e) => return usage(e),
            };
            say!(
                "this sign-off covers {} plugin grant(s), {}:",
                scope.manifest.grants.len(),
                scope.manifest_sha256
            );
            for g in &scope.manifest.grants {
                say!(
                    "  stage `{}`: {} {} sha256:{}, network {}",
                    g.stage,
                    g.plugin,
                    g.version,
                    g.sha256.get(..12).unwrap_or(&g.sha256),
                    launch_engine::manifest::reach(g)
                );
            }
            let signoff = SignoffFile {
                role,
                name,
                decision: decision.into(),
                note,
                at_ms: now_ms(),
                scope: Some(scope),
                from_runbook: false,
            };
            say!(
                "{} {} {} at {}",
                signoff.role,
                signoff.name,
                signoff.decision.word(),
                at(signoff.at_ms)
            );
            uat::record_signoff(&dir(&a.ws), signoff)?;
            Ok(Exit::Success)
        }
        UatCommand::Checklist { args: a, output } => {
            let data = match load(&a.ws) {
                Ok(d) => d,
                Err(e) => return usage(e),
            };
            if output == Output::Json {
                return json(&data.items).map(|_| Exit::Success);
            }
            let mut t = table(&["id", "category", "item", "blocking", "result"]);
            for i in &data.items {
                t.add_row(vec![
                    i.id.clone(),
                    i.category.clone(),
                    i.title.clone(),
                    if i.blocking { "yes" } else { "" }.into(),
                    data.result(&i.id)
                        .map_or("untested", |r| r.outcome.word())
                        .into(),
                ]);
            }
            say!("{t}");
            Ok(Exit::Success)
        }
        UatCommand::Signoffs { args: a, output } => {
            let data = match load(&a.ws) {
                Ok(d) => d,
                Err(e) => return usage(e),
            };
            if output == Output::Json {
                return json(&data.signoffs).map(|_| Exit::Success);
            }
            let mut t = table(&["role", "name", "decision", "note", "at", "covers"]);
            for s in &data.signoffs {
                t.add_row(vec![
                    s.role.clone(),
                    s.name.clone(),
                    s.decision.word().into(),
                    s.note.clone(),
                    at(s.at_ms),
                    s.scope.as_ref().map_or_else(
                        || "-".to_string(),
                        |c| c.manifest_sha256.chars().take(19).collect(),
                    ),
                ]);
            }
            say!("{t}");
            Ok(Exit::Success)
        }
    }
}
