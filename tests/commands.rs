//! Every guide command of the README's table, run through the real binary against the
//! embedded StatusBoardV2 targets, with its effect checked: what the store serves, where the
//! flags are, what the journal and reports say. (The AWS forms run against moto in aws.rs,
//! shared_state.rs and aws_faults.rs; the interactive ones on a pty in interactive.rs.)

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::*;

struct Workspace {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Workspace {
    fn new() -> Workspace {
        for p in [
            "statusboard-smoke",
            "canary-steps",
            "slo-thresholds",
            "uat-signoff",
        ] {
            stock_plugin(p);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws");
        Workspace { _dir: dir, path }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_launch-host"));
        c.args(args)
            .env("LAUNCH_HOST_WORKSPACE", &self.path)
            .env("LAUNCH_HOST_PLUGINS", repo().join("plugins"))
            .env("LAUNCH_HOST_CACHE_DIR", cache_dir())
            .stdin(Stdio::null());
        c
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.succeeds(&mut self.command(args), args)
    }

    /// Runs `command` (made by `command(args)`, maybe changed) that must succeed.
    fn succeeds(&self, command: &mut Command, args: &[&str]) -> String {
        let out = command.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "launch-host {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    fn flags(&self, env: &str) -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(self.path.join("env").join(env).join("flags.json")).unwrap(),
        )
        .unwrap()
    }

    fn current(&self, env: &str) -> String {
        std::fs::read_to_string(self.path.join("env").join(env).join("store/current")).unwrap()
    }

    fn last_run(&self) -> PathBuf {
        local_runs(&self.path.join("runs")).pop().expect("a run")
    }

    fn last_report(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.last_run().join("report.json")).unwrap())
            .unwrap()
    }
}

fn check_names(report: &serde_json::Value) -> Vec<String> {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap().iter())
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn stage_names(report: &serde_json::Value) -> Vec<String> {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn deploy_staging_then_quick_and_full_smoke_tests() {
    let ws = Workspace::new();
    ws.ok(&["deploy", "staging", "--yes"]);
    let release = ws.current("staging");
    assert!(release.ends_with("-staging-deploy"), "{release}");
    let page = std::fs::read_to_string(
        ws.path
            .join("env/staging/store/releases")
            .join(&release)
            .join("index.html"),
    )
    .unwrap();
    assert!(page.contains("StatusBoardV2"));

    ws.ok(&["smoke", "--yes"]);
    let quick = check_names(&ws.last_report());
    assert!(quick.contains(&"board-p95".to_string()), "{quick:?}");
    assert!(!quick.iter().any(|c| c.starts_with("occ")), "{quick:?}");

    ws.ok(&["smoke", "--full", "--yes"]);
    let full = check_names(&ws.last_report());
    assert!(
        full.contains(&"occ-conflict-and-retry".to_string()),
        "{full:?}"
    );
    assert!(full.iter().any(|c| c.starts_with("asset ")), "{full:?}");
    assert!(full.len() > quick.len());
}

#[test]
fn canary_init_promote_status_rollback_start_and_monitor() {
    let ws = Workspace::new();
    ws.ok(&["deploy", "staging", "--yes"]);
    ws.ok(&["canary", "promote", "40", "--yes"]);
    assert_eq!(ws.flags("staging")["STATUS_BOARD_V2_ENABLED"], 40);
    ws.ok(&["canary", "init", "--yes"]);
    for (flag, value) in ws.flags("staging").as_object().unwrap() {
        assert_eq!(value, 0, "{flag} is off after init");
    }
    ws.ok(&["canary", "promote", "50", "--yes"]);
    let status = ws.json(&["canary", "status", "--output", "json"]);
    assert_eq!(status["percent"], 50, "{status}");
    ws.ok(&["canary", "rollback"]);
    assert_eq!(ws.flags("staging")["STATUS_BOARD_V2_ENABLED"], 0);

    ws.ok(&["canary", "start", "--yes"]);
    assert_eq!(ws.flags("staging")["STATUS_BOARD_V2_ENABLED"], 100);
    let status = ws.json(&["canary", "status", "--output", "json"]);
    assert_eq!(status["canary"]["last_action"], "complete", "{status}");
    assert_eq!(status["canary"]["running"], false);

    let lines = ws.ok(&["canary", "monitor", "--for", "2s"]);
    assert!(
        lines
            .lines()
            .filter(|l| l.contains("STATUS_BOARD_V2_ENABLED=100%") && l.contains("board: p95="))
            .count()
            >= 1,
        "{lines}"
    );
    assert!(lines.contains("canary=staging-canary@100%"), "{lines}");
}

#[test]
fn monitor_dashboard_seconds_and_start_until_interrupted() {
    let ws = Workspace::new();
    let snap = ws.json(&[
        "monitor",
        "dashboard",
        "--env",
        "staging",
        "--output",
        "json",
    ]);
    let endpoints = snap["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 3, "{snap}");
    for e in endpoints {
        assert!(e["requests"].as_u64().unwrap() > 0, "{e}");
        assert!(e["p95_ms"].as_f64().unwrap() > 0.0, "{e}");
    }
    let lines = ws.ok(&["monitor", "2", "--env", "staging"]);
    assert!(
        lines.lines().count() >= 1 && lines.contains("drawer: p95="),
        "{lines}"
    );

    let child = ws
        .command(&["monitor", "start", "--env", "staging"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "Ctrl-C ends monitoring cleanly");
    assert!(String::from_utf8_lossy(&out.stdout).contains("board: p95="));
}

/// A plugins folder with the stock plugins and a file that is not a plugin.
fn plugins_with_a_broken_file(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for entry in std::fs::read_dir(repo().join("plugins")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "wasm") {
            std::fs::copy(&p, plugins.join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(plugins.join("broken.wasm"), b"\0asm garbage").unwrap();
    plugins
}

/// Two releases deployed to production and V2 at `percent`: something to roll back. Returns
/// the first release, which a full rollback makes live again.
fn production_with_two_releases(ws: &Workspace, percent: &str) -> String {
    ws.ok(&["launch", "deploy", "--yes"]);
    let first = ws.current("production");
    ws.ok(&["launch", "deploy", "--yes"]);
    assert_ne!(ws.current("production"), first);
    ws.ok(&["canary", "promote", percent, "--env", "production", "--yes"]);
    first
}

#[test]
fn rollback_emergency_full_and_validate_even_with_a_broken_plugin() {
    let ws = Workspace::new();
    let first = production_with_two_releases(&ws, "100");

    let broken = plugins_with_a_broken_file(ws.path.parent().unwrap());
    let out = ws
        .command(&[
            "rollback",
            "emergency",
            "--reason",
            "Performance degradation detected",
            "--plugins",
            broken.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A rollback loads no plugin, so a broken file cannot even be noticed, let alone block it.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("broken.wasm"));
    assert_eq!(ws.flags("production")["STATUS_BOARD_V2_ENABLED"], 0);
    let journal = std::fs::read_to_string(ws.last_run().join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("Performance degradation detected"),
        "{journal}"
    );

    ws.ok(&[
        "rollback",
        "full",
        "--reason",
        "Critical bug in StatusBoardV2",
    ]);
    assert_eq!(
        ws.current("production"),
        first,
        "the previous release is live again"
    );

    ws.ok(&["rollback", "validate"]);
    let report = ws.last_report();
    assert_eq!(report["outcome"], "passed");
    let checks = check_names(&report);
    for c in ["flag-off", "api-health", "site", "legacy-serving"] {
        assert!(checks.contains(&c.to_string()), "{checks:?}");
    }
}

#[test]
fn rollbacks_work_from_a_folder_without_plugins() {
    let ws = Workspace::new();
    let first = production_with_two_releases(&ws, "50");
    // An operator's shell in some other folder: no plugins/ there, none named anywhere.
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut command = ws.command(args);
        command
            .env_remove("LAUNCH_HOST_PLUGINS")
            .current_dir(elsewhere.path());
        ws.succeeds(&mut command, args);
    };
    run(&["rollback", "emergency", "--reason", "SLO breach detected"]);
    assert_eq!(ws.flags("production")["STATUS_BOARD_V2_ENABLED"], 0);
    run(&["rollback", "full", "--reason", "Critical bug"]);
    assert_eq!(ws.current("production"), first);
    run(&["rollback", "validate"]);
    assert_eq!(ws.last_report()["outcome"], "passed");
    run(&["canary", "rollback", "--env", "production"]);
    assert!(!elsewhere.path().join("plugins").exists());
}

#[test]
fn production_launch_step_by_step() {
    let ws = Workspace::new();
    // Production needs UAT first: the checklist, then the gate (the embedded runbook carries
    // its sign-offs and lets untested items be skipped).
    ws.ok(&["uat", "init", "--yes"]);
    ws.ok(&["launch", "validate", "--yes"]);
    assert!(check_names(&ws.last_report()).contains(&"production-store".to_string()));

    ws.ok(&["launch", "build", "--yes"]);
    let build = ws
        .last_run()
        .join("build/production-deploy-build/index.html");
    assert!(build.is_file(), "{}", build.display());
    assert!(
        ws.current("production").contains("legacy"),
        "build deploys nothing"
    );

    ws.ok(&["launch", "deploy", "--yes"]);
    assert!(ws.current("production").ends_with("-production-deploy"));
    ws.ok(&["launch", "rollout", "--yes"]);
    assert_eq!(ws.flags("production")["STATUS_BOARD_V2_ENABLED"], 100);
    let decisions: Vec<u64> = ws.last_report()["stages"][0]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["percent"].as_u64().unwrap())
        .collect();
    assert!(
        decisions.contains(&5) && decisions.contains(&75),
        "{decisions:?}"
    );

    ws.ok(&["launch", "monitor", "2", "--yes"]);
    let report = ws.last_report();
    assert_eq!(
        stage_names(&report),
        ["production-monitor", "slo-validation"]
    );
    assert_eq!(report["stages"][1]["verdict"]["kind"], "pass", "{report:#}");

    let status = ws.json(&["launch", "status", "--output", "json"]);
    assert_eq!(status["percent"], 100);
    assert_eq!(status["health"]["status"], "200");
    assert!(
        status["release"]
            .as_str()
            .unwrap()
            .ends_with("-production-deploy")
    );
    assert_eq!(status["rollout"]["last_action"], "complete");

    let report = ws.json(&["launch", "report", "--output", "json"]);
    assert_eq!(report["outcome"], "passed");
    assert_eq!(
        report["run_id"],
        ws.last_run().file_name().unwrap().to_str().unwrap()
    );
}

#[test]
fn full_launch_runs_the_production_stages() {
    let ws = Workspace::new();
    ws.ok(&["launch", "full-launch", "--yes"]);
    let report = ws.last_report();
    assert_eq!(
        stage_names(&report),
        [
            "production-deploy",
            "production-rollout",
            "slo-validation",
            "final-validation",
            "report"
        ]
    );
    assert_eq!(report["outcome"], "passed");
    assert_eq!(ws.flags("production")["STATUS_BOARD_V2_ENABLED"], 100);
}

#[test]
fn playbook_validate_and_auto_run_the_fourteen_steps() {
    let ws = Workspace::new();
    ws.ok(&["playbook", "validate"]);
    assert_eq!(stage_names(&ws.last_report()), ["preflight"]);
    let out: Output = ws
        .command(&["playbook", "auto"])
        .env("AUTO_CONFIRM", "true")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = ws.last_report();
    assert_eq!(report["stages"].as_array().unwrap().len(), 14);
    assert_eq!(report["outcome"], "passed");

    // Nobody tested the manual UAT items of an automated run: the policy lets them pass
    // (allow-skipped), and every report says SKIPPED, never PASS.
    let uat = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "uat")
        .unwrap();
    let skipped: Vec<&str> = uat["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["skipped"] == true)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(!skipped.is_empty(), "{uat:#}");
    let run = ws.last_run();
    let read = |f: &str| std::fs::read_to_string(run.join(f)).unwrap();
    let md = read("report.md");
    assert!(md.contains(&format!("`{}` SKIPPED", skipped[0])), "{md}");
    let html = read("report.html");
    assert!(html.contains("class=\"SKIPPED\">SKIPPED<"), "{html}");
    let junit = read("junit.xml");
    assert_eq!(
        junit.matches("<skipped message=").count() - junit.matches("stage did not finish").count(),
        skipped.len(),
        "{junit}"
    );
    let console = String::from_utf8_lossy(&out.stderr);
    assert!(
        console.contains(&format!("{} SKIPPED: untested", skipped.len())),
        "{console}"
    );
    // The summary counts the skipped items as skipped (on 8fddcc8: "9/9 checks passed").
    // The policy's checks, one per item (the host adds `approval-scope:` checks of its own).
    let items: Vec<&serde_json::Value> = uat["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["name"].as_str().unwrap().starts_with("approval-scope:"))
        .collect();
    let total = items.len();
    let passed = items
        .iter()
        .filter(|c| c["skipped"] != true && c["verdict"]["kind"] == "pass")
        .count();
    let summary = uat["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(&format!(
            "{passed} passed, {} skipped (untested)",
            skipped.len()
        )) && summary.contains(&format!("of {total} checks"))
            && !summary.contains(&format!("{total}/{total}")),
        "{summary}"
    );

    // status and report read the same run.
    let status = ws.json(&["status", "--output", "json"]);
    assert_eq!(status["run_id"], report["run_id"]);
}

#[test]
fn every_command_has_help_with_an_example_and_completions_exist() {
    let commands: &[&[&str]] = &[
        &["run"],
        &["resume"],
        &["status"],
        &["report"],
        &["validate"],
        &["rollback"],
        &["deploy"],
        &["smoke"],
        &["monitor"],
        &["canary", "init"],
        &["canary", "start"],
        &["canary", "monitor"],
        &["canary", "promote"],
        &["canary", "rollback"],
        &["canary", "status"],
        &["uat", "init"],
        &["uat", "status"],
        &["uat", "test"],
        &["uat", "approve"],
        &["uat", "report"],
        &["uat", "checklist"],
        &["uat", "signoffs"],
        &["launch", "validate"],
        &["launch", "full-launch"],
        &["launch", "build"],
        &["launch", "deploy"],
        &["launch", "rollout"],
        &["launch", "monitor"],
        &["launch", "status"],
        &["launch", "report"],
        &["playbook", "validate"],
        &["playbook", "interactive"],
        &["playbook", "auto"],
        &["serve"],
        &["completions"],
    ];
    for cmd in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_launch-host"))
            .args(*cmd)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && help.contains("Example"),
            "launch-host {} --help has no example:\n{help}",
            cmd.join(" ")
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_launch-host"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        script.contains("complete -F")
            && script.contains("launch-host")
            && script.contains("rollback"),
        "{script}"
    );
}

#[test]
fn secrets_an_operator_types_never_reach_a_file_or_the_console() {
    let ws = Workspace::new();
    const SECRET: &str = "s3cr3t-hunter2-zz";
    let with_secret = |args: &[&str]| {
        let mut c = ws.command(args);
        c.env("DB_PASSWORD", SECRET);
        let out = c.output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {said}");
        assert!(
            !said.contains(SECRET),
            "{args:?} printed the secret: {said}"
        );
    };
    let reason = format!("leaked {SECRET} in a log");
    with_secret(&[
        "rollback",
        "emergency",
        "--env",
        "staging",
        "--reason",
        &reason,
    ]);
    with_secret(&["uat", "init", "--yes"]);
    let tester = format!("eve {SECRET}");
    with_secret(&[
        "uat", "test", "func_001", "--result", "pass", "--tester", &tester, "--notes", "ok",
    ]);
    let name = format!("Jane {SECRET}");
    with_secret(&[
        "uat",
        "approve",
        "qa_lead",
        &name,
        "approved",
        "All tests pass",
    ]);
    with_secret(&["uat", "signoffs"]);
    // Nothing under the workspace holds it (on 8fddcc8 the rollback's options.json did).
    let mut files = vec![ws.path.clone()];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&p) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(SECRET),
                "{} holds the secret",
                p.display()
            );
        }
    }
}
