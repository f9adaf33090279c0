//! Each role's stock plugin, loaded from its real built component and called with real data;
//! results are checked field by field.

mod support;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use launch_runtime::types::*;
use launch_runtime::{Role, Sandbox};
use support::*;

/// A StatusBoardV2 stand-in: site page with the V2 marker, and the API the smoke suite probes.
async fn statusboard(cors: bool) -> Server {
    let json = move |body: &'static str| {
        move || async move {
            let mut resp = body.into_response();
            let headers = resp.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if cors {
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
            resp
        }
    };
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                (
                    [(header::CACHE_CONTROL, "no-cache")],
                    "<html><div id=\"StatusBoardV2\"></div></html>",
                )
            }),
        )
        .route("/api/health", get(json(r#"{"status":"ok"}"#)))
        .route("/api/admin/dashboard/stats", get(json(r#"{"today":12}"#)))
        .route(
            "/api/admin/appointments/board",
            get(json(r#"{"columns":[]}"#)),
        )
        .route("/api/appointments/1", get(json(r#"{"id":1}"#)));
    Server::start(app).await
}

fn target(server: &Server) -> Target {
    Target {
        environment: "staging".into(),
        base_url: server.url(""),
        api_base_url: server.url(""),
        release_id: Some("r1".into()),
    }
}

fn check<'a>(report: &'a StepReport, name: &str) -> &'a Check {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {report:#?}"))
}

/// The embedded StatusBoardV2 simulator with a V2 build live, in `dir`.
async fn simulator(dir: &std::path::Path) -> launch_targets::simulator::Simulator {
    use launch_targets::flags::LocalFlags;
    use launch_targets::store::LocalStore;
    let store = std::sync::Arc::new(LocalStore::new(dir.join("store")));
    launch_targets::simulator::site::write_statusboard_build(&dir.join("build"), "test", true)
        .unwrap();
    store.publish("r1", &dir.join("build")).unwrap();
    store.set_current("r1").unwrap();
    let config = launch_targets::simulator::SimulatorConfig {
        store,
        flags: std::sync::Arc::new(LocalFlags::new(dir.join("flags.json"))),
        flag: "STATUS_BOARD_V2_ENABLED".into(),
        inject: Default::default(),
        inject_file: None,
        listen: None,
        traffic: 0,
    };
    launch_targets::simulator::Simulator::start(config)
        .await
        .unwrap()
}

#[tokio::test]
async fn smoke_suite_probes_the_embedded_target_and_reports_each_check() {
    let rt = runtime();
    let plugin = load(&rt, stock_plugin("statusboard-smoke")).await;
    assert_eq!(plugin.info.name, "statusboard-smoke");
    assert_eq!(plugin.info.role, Role::SmokeSuite);
    assert_eq!(plugin.info.capabilities, vec!["log", "http"]);
    assert!(plugin.info.config_schema.is_some());

    let dir = tempfile::tempdir().unwrap();
    let sim = simulator(dir.path()).await;
    let sandbox = sandbox(&[sim.addr.to_string()]);
    let target = Target {
        environment: "staging".into(),
        base_url: sim.url(),
        api_base_url: sim.url(),
        release_id: Some("r1".into()),
    };
    let called = plugin
        .run_smoke_suite(&sandbox, &target, r#"{"samples": 10}"#)
        .await
        .expect("smoke suite runs");
    let report = called.value;
    assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
    for name in [
        "site-reachable",
        "feature-marker",
        "no-secrets-exposed",
        "api-health",
        "cors-headers",
        "api-stats",
        "occ-conflict-and-retry",
    ] {
        assert_eq!(check(&report, name).verdict, Verdict::Pass, "{name}");
    }
    let occ = check(&report, "occ-conflict-and-retry");
    assert_eq!((occ.observed, occ.threshold), (Some(409.0), Some(409.0)));
    let assets: Vec<&Check> = report
        .checks
        .iter()
        .filter(|c| c.name.starts_with("asset /assets/"))
        .collect();
    assert_eq!(assets.len(), 2, "the page links a script and a stylesheet");
    assert!(
        assets
            .iter()
            .all(|c| c.verdict == Verdict::Pass && c.detail.contains("immutable")),
        "{assets:#?}"
    );
    let p95 = check(&report, "board-p95");
    assert_eq!(p95.verdict, Verdict::Pass);
    assert_eq!(p95.threshold, Some(800.0));
    assert_eq!(p95.unit, "ms");
    assert!(
        p95.observed.is_some_and(|v| v > 0.0 && v < 800.0),
        "{p95:?}"
    );
    let drawer = check(&report, "drawer-avg");
    assert_eq!(drawer.threshold, Some(200.0));
    // site + 2 assets + health + stats + 10 board + 10 drawer + OCC (read, stale move, retry)
    assert_eq!(called.http_requests, 28);
    assert!(
        report.summary.contains("checks passed"),
        "{}",
        report.summary
    );
    assert!(
        called
            .logs
            .iter()
            .any(|l| l.message.contains("smoke suite against")),
        "{:?}",
        called.logs
    );
}

#[tokio::test]
async fn smoke_suite_fails_the_check_that_broke() {
    let rt = runtime();
    let plugin = load(&rt, stock_plugin("statusboard-smoke")).await;
    let server = statusboard(false).await;
    let report = plugin
        .run_smoke_suite(&sandbox(&[server.host()]), &target(&server), "")
        .await
        .unwrap()
        .value;
    let cors = check(&report, "cors-headers");
    assert!(
        matches!(&cors.verdict, Verdict::Fail(r) if r.contains("Access-Control-Allow-Origin")),
        "{cors:?}"
    );
    assert!(
        matches!(&report.verdict, Verdict::Fail(_)),
        "{:?}",
        report.verdict
    );
    assert_eq!(check(&report, "api-health").verdict, Verdict::Pass);
}

#[tokio::test]
async fn smoke_suite_without_network_grant_fails_instead_of_passing() {
    let rt = runtime();
    let plugin = load(&rt, stock_plugin("statusboard-smoke")).await;
    let server = statusboard(true).await;
    let report = plugin
        .run_smoke_suite(&Sandbox::default(), &target(&server), "")
        .await
        .unwrap()
        .value;
    assert!(
        matches!(report.verdict, Verdict::Fail(_)),
        "{:?}",
        report.verdict
    );
    assert!(
        matches!(&check(&report, "site-reachable").verdict, Verdict::Fail(r) if r.contains("grants no network"))
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn smoke_suite_rejects_a_misspelled_config() {
    let rt = runtime();
    let plugin = load(&rt, stock_plugin("statusboard-smoke")).await;
    let server = statusboard(true).await;
    let report = plugin
        .run_smoke_suite(
            &sandbox(&[server.host()]),
            &target(&server),
            r#"{"board-p59-ms": 5}"#,
        )
        .await
        .unwrap()
        .value;
    assert!(
        matches!(&report.verdict, Verdict::Fail(r) if r.contains("invalid config") && r.contains("board-p59-ms")),
        "{:?}",
        report.verdict
    );
    assert_eq!(server.hits(), 0);
}

fn endpoint(name: &str, requests: u64, errors: u64, p95: f64, avg: f64) -> EndpointWindow {
    EndpointWindow {
        endpoint: name.into(),
        requests,
        errors,
        conflicts: 0,
        p50_ms: avg,
        p95_ms: p95,
        p99_ms: p95,
        avg_ms: avg,
        max_ms: p95,
        latencies_ms: Vec::new(),
    }
}

fn window(start_ms: u64, endpoints: Vec<EndpointWindow>) -> MetricWindow {
    MetricWindow {
        start_ms,
        duration_ms: 60_000,
        endpoints,
    }
}

#[tokio::test]
async fn slo_gate_passes_breaches_and_reports_no_data() {
    let rt = runtime();
    let plugin = load(&rt, stock_plugin("slo-thresholds")).await;
    assert_eq!(plugin.info.role, Role::SloGate);
    let sb = Sandbox::default();

    let healthy = Samples {
        windows: vec![window(
            0,
            vec![
                endpoint("board", 100, 0, 420.0, 300.0),
                endpoint("drawer", 100, 0, 150.0, 90.0),
            ],
        )],
    };
    let report = plugin.evaluate_slo(&sb, &healthy, "").await.unwrap().value;
    assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
    let p95 = check(&report, "board-p95");
    assert_eq!(
        (p95.observed, p95.threshold, p95.unit.as_str()),
        (Some(420.0), Some(800.0), "ms")
    );
    let avg = check(&report, "drawer-avg");
    assert_eq!((avg.observed, avg.threshold), (Some(90.0), Some(200.0)));
    let err = check(&report, "all-error-rate");
    assert_eq!(
        (err.observed, err.threshold, err.unit.as_str()),
        (Some(0.0), Some(1.0), "%")
    );

    let slow = Samples {
        windows: vec![window(
            0,
            vec![
                endpoint("board", 100, 2, 950.0, 600.0),
                endpoint("drawer", 100, 0, 150.0, 90.0),
            ],
        )],
    };
    let report = plugin.evaluate_slo(&sb, &slow, "").await.unwrap().value;
    let p95 = check(&report, "board-p95");
    assert!(
        matches!(&p95.verdict, Verdict::Fail(r) if r.contains("950.00 ms is not below 800 ms")),
        "{p95:?}"
    );
    let err = check(&report, "all-error-rate");
    assert_eq!(err.observed, Some(1.0));
    assert!(
        matches!(err.verdict, Verdict::Fail(_)),
        "1 % is not below 1 %"
    );
    assert!(matches!(report.verdict, Verdict::Fail(_)));

    let empty = Samples {
        windows: vec![window(0, vec![endpoint("board", 3, 0, 100.0, 100.0)])],
    };
    let report = plugin.evaluate_slo(&sb, &empty, "").await.unwrap().value;
    assert!(
        matches!(report.verdict, Verdict::NoData(_)),
        "too few requests must be no-data: {:?}",
        report.verdict
    );
    assert!(matches!(
        check(&report, "board-p95").verdict,
        Verdict::NoData(_)
    ));

    let none = Samples {
        windows: Vec::new(),
    };
    let report = plugin.evaluate_slo(&sb, &none, "").await.unwrap().value;
    assert!(
        matches!(report.verdict, Verdict::NoData(_)),
        "{:?}",
        report.verdict
    );
}

#[tokio::test]
async fn slo_gate_needs_consecutive_breaches_when_configured() {
    let rt = runtime();
    let plugin = load(&rt, stock_plugin("slo-thresholds")).await;
    let cfg = r#"{"objectives":[{"endpoint":"board","metric":"p95","below":800}],"consecutive":2}"#;
    let w = |start, p95| window(start, vec![endpoint("board", 50, 0, p95, 100.0)]);
    let once = Samples {
        windows: vec![w(0, 500.0), w(60_000, 900.0)],
    };
    let report = plugin
        .evaluate_slo(&Sandbox::default(), &once, cfg)
        .await
        .unwrap()
        .value;
    assert!(
        matches!(report.verdict, Verdict::Inconclusive(_)),
        "{:?}",
        report.verdict
    );
    let twice = Samples {
        windows: vec![w(0, 900.0), w(60_000, 900.0)],
    };
    let report = plugin
        .evaluate_slo(&Sandbox::default(), &twice, cfg)
        .await
        .unwrap()
        .value;
    assert!(
        matches!(&report.verdict, Verdict::Fail(r) if r.contains("2 consecutive")),
        "{:?}",
        report.verdict
    );
}

#[tokio::test]
async fn a_python_exception_reaches_the_operator_by_its_own_message() {
    let rt = runtime();
    let plugin = load(&rt, stock_plugin("error-budget")).await;
    let samples = Samples {
        windows: vec![window(0, vec![endpoint("board", 1000, 2, 100.0, 50.0)])],
    };
    // A config the schema would refuse, sent straight to the plugin: comparing an int with a
    // string raises a TypeError that the policy does not catch.
    let failure = plugin
        .evaluate_slo(&Sandbox::default(), &samples, r#"{"min-requests": "ten"}"#)
        .await
        .expect_err("the exception escapes the plugin");
    let message = failure.to_string();
    assert!(
        message.contains("TypeError:") && message.contains("not supported between"),
        "{message}"
    );
    // The whole stderr (the traceback) is still there for the journal.
    assert!(
        failure.logs.iter().any(|l| l.message.contains("Traceback")),
        "{:?}",
        failure.logs
    );
}

#[tokio::test]
async fn python_error_budget_gate_runs_with_wasi_linked_empty() {
    let rt = runtime();
    let plugin = load(&rt, stock_plugin("error-budget")).await;
    assert_eq!(plugin.info.name, "error-budget");
    assert_eq!(plugin.info.role, Role::SloGate);
    let sb = Sandbox::default();

    let healthy = Samples {
        windows: vec![window(0, vec![endpoint("board", 1000, 2, 100.0, 50.0)])],
    };
    let called = plugin
        .evaluate_slo(&sb, &healthy, "")
        .await
        .expect("python plugin runs");
    let report = called.value;
    assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
    let availability = check(&report, "availability");
    assert_eq!(availability.threshold, Some(99.0));
    assert!((availability.observed.unwrap() - 99.8).abs() < 1e-9);
    // print() went to the captured stdout, log.log() through the log capability.
    assert!(
        called
            .logs
            .iter()
            .any(|l| l.message.contains("evaluated 1 window(s)")),
        "{:?}",
        called.logs
    );
    assert!(
        called
            .logs
            .iter()
            .any(|l| l.message.contains("checks passed")),
        "{:?}",
        called.logs
    );

    let burning = Samples {
        windows: vec![window(0, vec![endpoint("board", 100, 5, 100.0, 50.0)])],
    };
    let report = plugin.evaluate_slo(&sb, &burning, "").await.unwrap().value;
    assert!(
        matches!(&check(&report, "burn-rate").verdict, Verdict::Fail(r) if r.contains("5.00x")),
        "{report:#?}"
    );

    let quiet = Samples {
        windows: vec![window(0, vec![endpoint("board", 5, 0, 100.0, 50.0)])],
    };
    let report = plugin.evaluate_slo(&sb, &quiet, "").await.unwrap().value;
    assert!(
        matches!(report.verdict, Verdict::NoData(_)),
        "{:?}",
        report.verdict
    );

    let report = plugin
        .evaluate_slo(&sb, &healthy, r#"{"slo-target": 99}"#)
        .await
        .unwrap()
        .value;
    assert!(
        matches!(&report.verdict, Verdict::Fail(r) if r.contains("slo-target")),
        "{:?}",
        report.verdict
    );
}

fn signoff(role: &str, name: &str, decision: SignoffDecision) -> Signoff {
    Signoff {
        role: role.into(),
        name: name.into(),
        decision,
        note: "ok".into(),
        at_ms: 1,
    }
}

#[tokio::test]
async fn uat_checklist_lists_the_guide_scope_and_gates_on_signoffs() {
    let rt = runtime();
    let plugin = load(&rt, stock_plugin("uat-signoff")).await;
    let sb = Sandbox::default();
    let items = plugin.uat_checklist(&sb, "").await.unwrap().value;
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    assert!(ids.contains(&"func_001"), "{ids:?}");
    for category in [
        "functional",
        "performance",
        "usability",
        "reliability",
        "integration",
    ] {
        assert!(
            items.iter().any(|i| i.category == category),
            "no {category} item"
        );
    }
    let board = items.iter().find(|i| i.id == "func_001").unwrap();
    assert!(board.blocking);
    assert_eq!(
        board.automated_probe.as_deref(),
        Some("/api/admin/appointments/board")
    );

    let all_pass: Vec<UatResult> = items
        .iter()
        .map(|i| UatResult {
            id: i.id.clone(),
            outcome: UatOutcome::Pass,
            tester: "qa".into(),
            notes: String::new(),
            at_ms: 1,
        })
        .collect();
    let two = [
        signoff("qa_lead", "Jane Smith", SignoffDecision::Approved),
        signoff("product_owner", "Sam Lee", SignoffDecision::Approved),
    ];
    let report = plugin
        .evaluate_uat(&sb, &all_pass, &two, "")
        .await
        .unwrap()
        .value;
    assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
    let approvals = check(&report, "stakeholder-approvals");
    assert_eq!(
        (approvals.observed, approvals.threshold),
        (Some(2.0), Some(2.0))
    );
    assert!(approvals.detail.contains("Jane Smith (qa_lead)"));

    let one = [
        signoff("qa_lead", "Jane Smith", SignoffDecision::Approved),
        signoff("intern", "Pat", SignoffDecision::Approved),
    ];
    let report = plugin
        .evaluate_uat(&sb, &all_pass, &one, "")
        .await
        .unwrap()
        .value;
    assert!(
        matches!(&check(&report, "stakeholder-approvals").verdict, Verdict::Fail(r) if r.contains("1 approval"))
    );

    let rejected = [
        two[0].clone(),
        two[1].clone(),
        signoff("tech_lead", "Kim", SignoffDecision::Rejected),
    ];
    let report = plugin
        .evaluate_uat(&sb, &all_pass, &rejected, "")
        .await
        .unwrap()
        .value;
    assert!(
        matches!(&check(&report, "no-rejections").verdict, Verdict::Fail(r) if r.contains("Kim"))
    );

    let report = plugin.evaluate_uat(&sb, &[], &two, "").await.unwrap().value;
    assert!(matches!(
        &check(&report, "func_001").verdict,
        Verdict::NoData(_)
    ));
    assert!(
        matches!(report.verdict, Verdict::NoData(_)),
        "untested items are not a pass: {:?}",
        report.verdict
    );
}

fn canary_window(requests: u64, errors: u64, p95: f64) -> CanaryWindow {
    CanaryWindow {
        start_ms: 0,
        duration_ms: 60_000,
        canary: vec![endpoint("board", requests, errors, p95, p95 / 2.0)],
        baseline: vec![endpoint("board", requests * 9, 0, 300.0, 150.0)],
    }
}

#[tokio::test]
async fn canary_policy_promotes_holds_and_rolls_back_with_numbers() {
    let rt = runtime();
    let plugin = load(&rt, stock_plugin("canary-steps")).await;
    let sb = Sandbox::default();
    let cfg = r#"{"step-duration-ms": 1000}"#;
    let at = |percent, elapsed| CanaryState {
        percent,
        step_index: 0,
        step_elapsed_ms: elapsed,
        total_elapsed_ms: elapsed,
    };

    let d = plugin
        .decide_canary(&sb, &at(10, 1500), &[canary_window(200, 0, 300.0)], cfg)
        .await
        .unwrap()
        .value;
    assert_eq!(d.action, Action::Promote(30), "{d:#?}");
    assert_eq!(d.checks.len(), 2);

    let d = plugin
        .decide_canary(&sb, &at(10, 200), &[canary_window(200, 0, 300.0)], cfg)
        .await
        .unwrap()
        .value;
    assert!(matches!(d.action, Action::Hold(_)), "{d:#?}");

    let d = plugin
        .decide_canary(&sb, &at(30, 1500), &[canary_window(200, 6, 300.0)], cfg)
        .await
        .unwrap()
        .value;
    let Action::Rollback(reason) = &d.action else {
        panic!("expected rollback: {d:#?}")
    };
    assert!(
        reason.contains("error-rate") && reason.contains("3.00 %") && reason.contains("1 %"),
        "{reason}"
    );
    let err = d.checks.iter().find(|c| c.name == "error-rate").unwrap();
    assert_eq!((err.observed, err.threshold), (Some(3.0), Some(1.0)));

    let d = plugin
        .decide_canary(&sb, &at(50, 1500), &[canary_window(200, 0, 2500.0)], cfg)
        .await
        .unwrap()
        .value;
    assert!(
        matches!(&d.action, Action::Rollback(r) if r.contains("latency-p95")),
        "{d:#?}"
    );

    let d = plugin
        .decide_canary(&sb, &at(10, 1500), &[canary_window(2, 0, 100.0)], cfg)
        .await
        .unwrap()
        .value;
    assert!(
        matches!(&d.action, Action::Hold(r) if r.contains("2 canary request")),
        "no data must hold, not promote: {d:#?}"
    );

    let d = plugin
        .decide_canary(&sb, &at(100, 1500), &[canary_window(200, 0, 300.0)], cfg)
        .await
        .unwrap()
        .value;
    assert_eq!(d.action, Action::Complete);
}

#[tokio::test]
async fn custom_step_checks_status_codes() {
    let rt = runtime();
    let plugin = load(&rt, stock_plugin("health-check")).await;
    assert_eq!(plugin.info.role, Role::Step);
    let server = statusboard(true).await;
    let context = StepContext {
        run_id: "run-1".into(),
        stage: "post-deploy".into(),
        target: target(&server),
        params: Vec::new(),
    };
    let cfg = r#"{"probes":[{"path":"/api/health"},{"path":"/missing","expect-status":200}]}"#;
    let report = plugin
        .run_step(&sandbox(&[server.host()]), &context, cfg)
        .await
        .unwrap()
        .value;
    assert_eq!(report.checks.len(), 2);
    assert_eq!(report.checks[0].verdict, Verdict::Pass);
    assert_eq!(report.checks[1].observed, Some(404.0));
    assert!(matches!(&report.checks[1].verdict, Verdict::Fail(r) if r.contains("answered 404")));
    assert!(report.summary.contains("post-deploy"));
}

#[tokio::test]
async fn statistical_canary_compares_canary_and_baseline_with_mann_whitney() {
    let rt = runtime();
    let plugin = load(&rt, stock_plugin("canary-steps")).await;
    let cfg = r#"{"step-duration-ms": 1000, "mode": "statistical", "alpha": 0.01}"#;
    let state = CanaryState {
        percent: 10,
        step_index: 0,
        step_elapsed_ms: 100,
        total_elapsed_ms: 100,
    };
    let with_raw = |canary: Vec<f64>, baseline: Vec<f64>| {
        let mut w = canary_window(200, 0, 400.0);
        w.canary[0].latencies_ms = canary;
        w.baseline[0].latencies_ms = baseline;
        w
    };
    let baseline: Vec<f64> = (0..60).map(|i| 100.0 + f64::from(i % 20)).collect();
    // 40 % slower, well under the 2000 ms limit: only the comparison can catch it.
    let slower: Vec<f64> = (0..30).map(|i| 140.0 + f64::from(i % 20)).collect();
    let d = plugin
        .decide_canary(
            &Sandbox::default(),
            &state,
            &[with_raw(slower, baseline.clone())],
            cfg,
        )
        .await
        .unwrap()
        .value;
    let Action::Rollback(reason) = &d.action else {
        panic!("a clearly slower canary must roll back: {d:#?}")
    };
    assert!(
        reason.contains("latency-vs-baseline") && reason.contains("Mann-Whitney"),
        "{reason}"
    );
    let check = d
        .checks
        .iter()
        .find(|c| c.name == "latency-vs-baseline")
        .unwrap();
    assert!(check.observed.unwrap() < 0.01, "{check:?}");
    assert!(check.detail.contains("baseline"), "{check:?}");

    let same: Vec<f64> = (0..30).map(|i| 100.0 + f64::from((i * 7) % 20)).collect();
    let d = plugin
        .decide_canary(
            &Sandbox::default(),
            &state,
            &[with_raw(same, baseline.clone())],
            cfg,
        )
        .await
        .unwrap()
        .value;
    assert!(
        matches!(d.action, Action::Hold(_)),
        "an equal canary holds until its step is over: {d:#?}"
    );
    let check = d
        .checks
        .iter()
        .find(|c| c.name == "latency-vs-baseline")
        .unwrap();
    assert_eq!(check.verdict, Verdict::Pass, "{check:?}");

    let d = plugin
        .decide_canary(
            &Sandbox::default(),
            &state,
            &[with_raw(vec![100.0; 3], baseline)],
            cfg,
        )
        .await
        .unwrap()
        .value;
    let check = d
        .checks
        .iter()
        .find(|c| c.name == "latency-vs-baseline")
        .unwrap();
    assert!(
        matches!(check.verdict, Verdict::Inconclusive(_)),
        "three samples prove nothing: {check:?}"
    );
}
