//! The engine asks and tells only through `Operator`: a scripted operator drives an interactive
//! run (skip, proceed, abort) with no terminal, and sees every notice the terminal would print.
//! The stages are host-only flag moves on an embedded target, so no plugin is loaded.

use std::sync::{Arc, Mutex};

use launch_engine::operator::{Measure, NoProgress, Notice, Operator, Progress, Step, UatAnswer};
use launch_engine::run::{Launch, start};
use launch_engine::uat::ItemFile;
use launch_engine::{Outcome, RunOptions, Runbook, Unattended};
use launch_runtime::Catalog;

const RUNBOOK: &str = r#"
[launch]
name = "x"
flag = "F"

[environments.staging]
target = "embedded"

[[stage]]
name = "ten"
action = "flag"
environment = "staging"
percent = 10

[[stage]]
name = "thirty"
action = "flag"
environment = "staging"
percent = 30

[[stage]]
name = "fifty"
action = "flag"
environment = "staging"
percent = 50
"#;

/// Answers from a script and writes down what it was told.
struct Scripted {
    answers: Mutex<Vec<Step>>,
    heard: Mutex<Vec<String>>,
}

impl Operator for Scripted {
    fn can_ask(&self) -> bool {
        true
    }
    fn ask_step(&self, title: &str) -> Step {
        self.heard.lock().unwrap().push(format!("asked {title}"));
        self.answers.lock().unwrap().remove(0)
    }
    fn ask_proceed(&self, _: &str, _: &str) -> bool {
        false
    }
    fn ask_uat_result(&self, _: &ItemFile) -> Option<UatAnswer> {
        None
    }
    fn tell(&self, notice: Notice<'_>) {
        let line = match notice {
            Notice::StageStarted { title } => format!("started {title}"),
            Notice::StageSkipped { title } => format!("skipped {title}"),
            Notice::StageFinished { verdict, .. } => format!("finished {}", verdict.word()),
            other => format!("{other:?}"),
        };
        self.heard.lock().unwrap().push(line);
    }
    fn progress(&self, _: Measure<'_>) -> Box<dyn Progress> {
        Box::new(NoProgress)
    }
}

fn flags(run_dir: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read(run_dir.join("env/staging/flags.json")).unwrap();
    serde_json::from_slice(&text).unwrap()
}

#[tokio::test]
async fn an_interactive_run_is_driven_through_the_operator_interface() {
    let runs = tempfile::tempdir().unwrap();
    let runbook = Runbook::parse(RUNBOOK, "launch.toml").unwrap();
    let operator = Arc::new(Scripted {
        answers: Mutex::new(vec![Step::Skip, Step::Proceed, Step::Abort]),
        heard: Mutex::new(Vec::new()),
    });
    let options = RunOptions {
        interactive: true,
        ..RunOptions::new(runs.path().join("no-plugins"), false)
    };
    let summary = start(Launch {
        runbook: &runbook,
        text: RUNBOOK,
        catalog: Catalog::empty(&runs.path().join("no-plugins")),
        options,
        operator: operator.clone(),
        runs_root: runs.path(),
    })
    .await
    .unwrap();
    assert_eq!(summary.outcome, Outcome::Aborted);
    assert_eq!(
        flags(&summary.run_dir)["F"],
        30,
        "skipped 10, set 30, aborted before 50"
    );
    let heard = operator.heard.lock().unwrap().clone();
    assert_eq!(
        heard,
        [
            "started ten",
            "asked ten",
            "skipped ten",
            "started thirty",
            "asked thirty",
            "finished PASS",
            "started fifty",
            "asked fifty",
        ]
    );
}

#[tokio::test]
async fn nobody_there_means_nothing_is_asked() {
    let runs = tempfile::tempdir().unwrap();
    let runbook = Runbook::parse(RUNBOOK, "launch.toml").unwrap();
    let summary = start(Launch {
        runbook: &runbook,
        text: RUNBOOK,
        catalog: Catalog::empty(runs.path()),
        options: RunOptions::new(runs.path().to_path_buf(), true),
        operator: Arc::new(Unattended),
        runs_root: runs.path(),
    })
    .await
    .unwrap();
    assert_eq!(summary.outcome, Outcome::Passed);
    assert_eq!(flags(&summary.run_dir)["F"], 50);
}
