//! Hostile plugins against the sandbox, all in one host process: after every attack the same
//! runtime must still run a well-behaved plugin.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;
use launch_runtime::bounds::{MAX_CHECKS, MAX_TEXT};
use launch_runtime::capabilities::grants::ReadOnlyDir;
use launch_runtime::capabilities::log::Source;
use launch_runtime::capabilities::{AllowList, Grants};
use launch_runtime::types::*;
use launch_runtime::{FailureKind, HttpSource, Limits, Plugin, Runtime, Sandbox};
use support::*;

fn context() -> StepContext {
    StepContext {
        run_id: "run-1".into(),
        stage: "attack".into(),
        target: Target {
            environment: "test".into(),
            base_url: String::new(),
            api_base_url: String::new(),
            release_id: None,
        },
        params: Vec::new(),
    }
}

async fn attack(
    plugin: &Plugin,
    sandbox: &Sandbox,
    what: &str,
) -> Result<launch_runtime::Called<StepReport>, launch_runtime::CallFailure> {
    plugin.run_step(sandbox, &context(), what).await
}

/// The well-behaved plugin the runtime must still serve after each attack.
async fn still_serves(rt: &Runtime) {
    let good = load(rt, stock_plugin("slo-thresholds")).await;
    let samples = Samples {
        windows: vec![MetricWindow {
            start_ms: 0,
            duration_ms: 60_000,
            endpoints: vec![EndpointWindow {
                endpoint: "board".into(),
                requests: 100,
                errors: 0,
                conflicts: 0,
                p50_ms: 100.0,
                p95_ms: 200.0,
                p99_ms: 300.0,
                avg_ms: 120.0,
                max_ms: 400.0,
                latencies_ms: Vec::new(),
            }],
        }],
    };
    let cfg = r#"{"objectives":[{"endpoint":"board","metric":"p95","below":800}]}"#;
    let report = good
        .evaluate_slo(&Sandbox::default(), &samples, cfg)
        .await
        .expect("good plugin still runs")
        .value;
    assert_eq!(report.verdict, Verdict::Pass);
}

fn limits(deadline_ms: u64, memory_mib: usize) -> Sandbox {
    Sandbox {
        limits: Limits {
            deadline: Duration::from_millis(deadline_ms),
            memory_bytes: memory_mib << 20,
        },
        grants: Arc::default(),
        http: Default::default(),
    }
}

/// Runs the hostile loop under `sandbox`, whose deadline is `ms`: it fails at the deadline,
/// within a second after it.
async fn stopped_at_its_deadline(
    hostile: &Plugin,
    sandbox: &Sandbox,
    ms: u64,
) -> launch_runtime::CallFailure {
    let started = Instant::now();
    let failure = attack(hostile, sandbox, "loop")
        .await
        .expect_err("a loop cannot succeed");
    let took = started.elapsed();
    let deadline = Duration::from_millis(ms);
    assert_eq!(failure.kind, FailureKind::Deadline(deadline));
    assert!(
        took >= deadline && took < deadline + Duration::from_secs(1),
        "stopped after {took:?}"
    );
    failure
}

#[tokio::test]
async fn infinite_loop_is_stopped_at_its_deadline() {
    let rt = runtime();
    let hostile = load(&rt, test_plugin("hostile")).await;
    let failure = stopped_at_its_deadline(&hostile, &limits(500, 64), 500).await;
    let msg = failure.to_string();
    assert!(
        msg.contains("plugin `hostile`")
            && msg.contains("deadline of 500 ms")
            && msg.contains("step.run"),
        "{msg}"
    );
    still_serves(&rt).await;
}

#[tokio::test]
async fn memory_growth_past_the_limit_traps() {
    let rt = runtime();
    let hostile = load(&rt, test_plugin("hostile")).await;
    let failure = attack(&hostile, &limits(5_000, 32), "oom")
        .await
        .expect_err("must not get unbounded memory");
    let FailureKind::MemoryLimit { limit, requested } = failure.kind else {
        panic!("expected a memory-limit failure: {failure}")
    };
    assert_eq!(limit, 32 << 20);
    assert!(requested > limit);
    assert!(
        failure.to_string().contains("memory limit of 32 MiB"),
        "{failure}"
    );
    still_serves(&rt).await;
}

/// The failure of test plugin `name` told to panic: a trap.
async fn panicked(rt: &Runtime, name: &str) -> launch_runtime::CallFailure {
    let hostile = load(rt, test_plugin(name)).await;
    let failure = attack(&hostile, &Sandbox::default(), "panic")
        .await
        .expect_err("a panic is a failure");
    assert!(matches!(failure.kind, FailureKind::Trap(_)), "{failure:?}");
    failure
}

#[tokio::test]
async fn panic_becomes_an_error_naming_the_plugin_and_its_message() {
    let rt = runtime();
    let msg = panicked(&rt, "hostile").await.to_string();
    assert!(
        msg.contains("plugin `hostile` trapped in `step.run`"),
        "{msg}"
    );
    assert!(
        msg.contains("hostile plugin panicked on purpose"),
        "the panic message from stderr belongs in the error: {msg}"
    );
    still_serves(&rt).await;
}

#[tokio::test]
async fn a_plugin_without_wasi_names_its_panic_through_its_log() {
    // Built for wasm32-unknown-unknown, as the stock Rust plugins are: no stderr to write to.
    let rt = runtime();
    let failure = panicked(&rt, "hostile-no-wasi").await;
    let msg = failure.to_string();
    assert!(
        msg.contains("its log says: panicked at hostile/src/lib.rs:")
            && msg.ends_with(": hostile plugin panicked on purpose"),
        "the SDK's panic hook logs the message, and a failed call keeps its log: {msg}"
    );
    assert!(
        failure.logs.iter().all(|l| l.source == Source::Log),
        "{:?}",
        failure.logs
    );
    still_serves(&rt).await;
}

#[tokio::test]
async fn only_a_plugin_that_imports_wasi_is_given_a_wasi_context() {
    let rt = runtime();
    // The stock policies import only `launch:plugin` interfaces: their calls build no WASI
    // context. The hostile plugin imports WASI and is confined by its context (the tests above).
    let gate = load(&rt, stock_plugin("slo-thresholds")).await;
    assert!(!gate.wasi, "slo-thresholds imports no WASI");
    let hostile = load(&rt, test_plugin("hostile")).await;
    assert!(hostile.wasi, "the hostile plugin imports WASI");
    still_serves(&rt).await;
}

#[tokio::test]
async fn http_to_a_host_off_the_allow_list_never_leaves_the_process() {
    let rt = runtime();
    let hostile = load(&rt, test_plugin("hostile")).await;
    let allowed = plain_server().await;
    let forbidden = plain_server().await;
    let sb = sandbox(&[allowed.host()]);

    let report = attack(&hostile, &sb, &format!("http {}", forbidden.url("/secret")))
        .await
        .unwrap()
        .value;
    assert!(
        matches!(&report.verdict, Verdict::Fail(r) if r.contains("denied by host") && r.contains(&forbidden.host())),
        "{:?}",
        report.verdict
    );
    assert_eq!(forbidden.hits(), 0, "a denied request reached the server");

    // The same plugin may reach the allowed host.
    let report = attack(&hostile, &sb, &format!("http {}", allowed.url("/")))
        .await
        .unwrap()
        .value;
    assert!(
        matches!(&report.verdict, Verdict::Inconclusive(r) if r == "status 200"),
        "{:?}",
        report.verdict
    );
    assert_eq!(allowed.hits(), 1);
    still_serves(&rt).await;
}

#[tokio::test]
async fn redirect_to_a_host_off_the_allow_list_is_refused() {
    let rt = runtime();
    let hostile = load(&rt, test_plugin("hostile")).await;
    let forbidden = plain_server().await;
    let target = forbidden.url("/loot");
    let redirector = Server::start(Router::new().route(
        "/go",
        get(move || async move { Redirect::temporary(&target) }),
    ))
    .await;
    let report = attack(
        &hostile,
        &sandbox(&[redirector.host()]),
        &format!("http {}", redirector.url("/go")),
    )
    .await
    .unwrap()
    .value;
    assert!(
        matches!(&report.verdict, Verdict::Fail(r) if r.contains("denied")),
        "{:?}",
        report.verdict
    );
    assert_eq!(redirector.hits(), 1);
    assert_eq!(
        forbidden.hits(),
        0,
        "the redirect was followed off the allow-list"
    );
}

#[tokio::test]
async fn wasi_http_goes_through_the_same_allow_list() {
    let rt = runtime();
    let hostile = load(&rt, test_plugin("hostile")).await;
    let allowed = plain_server().await;
    let forbidden = plain_server().await;
    let sb = sandbox(&[allowed.host()]);

    let called = attack(&hostile, &sb, &format!("wasi-http {}", forbidden.url("/x")))
        .await
        .unwrap();
    assert!(
        matches!(&called.value.verdict, Verdict::Fail(r) if r.contains("HttpRequestDenied")),
        "{:?}",
        called.value.verdict
    );
    assert_eq!(forbidden.hits(), 0);
    assert!(
        called
            .logs
            .iter()
            .any(|l| l.message.contains("wasi:http request") && l.message.contains("denied")),
        "{:?}",
        called.logs
    );

    let report = attack(&hostile, &sb, &format!("wasi-http {}", allowed.url("/x")))
        .await
        .unwrap()
        .value;
    assert!(
        matches!(&report.verdict, Verdict::Inconclusive(r) if r == "status 200"),
        "{:?}",
        report.verdict
    );
    assert_eq!(allowed.hits(), 1);
    still_serves(&rt).await;
}

#[tokio::test]
async fn wasi_shows_no_environment_files_or_sockets() {
    let rt = runtime();
    let hostile = load(&rt, test_plugin("hostile")).await;
    assert!(
        std::env::var_os("PATH").is_some(),
        "the host process itself has an environment"
    );
    let report = attack(&hostile, &Sandbox::default(), "snoop")
        .await
        .unwrap()
        .value;
    assert_eq!(report.summary, "", "the plugin saw: {}", report.summary);
    still_serves(&rt).await;
}

/// After two calls under one sandbox, the plugin's next instance is made ahead for it
/// (`standby`). It must never serve a call under another sandbox: three calls granting a
/// folder see it; the call after them, granting nothing, sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_made_ahead_serves_only_the_sandbox_it_was_made_for() {
    let rt = runtime();
    let hostile = load(&rt, test_plugin("hostile")).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("granted-marker"), "x").unwrap();
    let granted = Sandbox {
        grants: Arc::new(Grants::default().with_read_only_dirs(vec![ReadOnlyDir {
            host: dir.path().to_path_buf(),
            guest: "/".into(),
        }])),
        ..Sandbox::default()
    };
    for call in 1..=3 {
        let seen = attack(&hostile, &granted, "snoop")
            .await
            .unwrap()
            .value
            .summary;
        assert!(
            seen.contains("dir entry /granted-marker"),
            "call {call} under the grant saw: {seen}"
        );
        // Time for the spare, made on a task of its own, to be ready for the next call.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = attack(&hostile, &Sandbox::default(), "snoop")
        .await
        .unwrap()
        .value
        .summary;
    assert_eq!(seen, "", "a call granting nothing saw: {seen}");
    still_serves(&rt).await;
}

/// A spare waits between calls, for as long as a canary's interval: its call's deadline counts
/// from the call, not from when the instance was made. After a wait longer than the deadline a
/// quick call still answers, and a loop is still stopped at the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_made_ahead_has_the_whole_deadline_of_its_call() {
    let rt = runtime();
    let hostile = load(&rt, test_plugin("hostile")).await;
    let sandbox = limits(300, 64);
    for _ in 0..2 {
        attack(&hostile, &sandbox, "snoop").await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    attack(&hostile, &sandbox, "snoop")
        .await
        .expect("a quick call on an instance made 700 ms ago answers");
    tokio::time::sleep(Duration::from_millis(700)).await;
    stopped_at_its_deadline(&hostile, &sandbox, 300).await;
}

#[tokio::test]
async fn huge_results_and_floods_are_bounded() {
    let rt = runtime();
    let hostile = load(&rt, test_plugin("hostile")).await;
    let roomy = limits(10_000, 512);
    let report = attack(&hostile, &roomy, &format!("huge {}", 16 << 20))
        .await
        .expect("a big answer is not a failure")
        .value;
    assert!(
        report.summary.len() <= MAX_TEXT + 64,
        "summary of {} bytes kept",
        report.summary.len()
    );
    assert!(report.summary.contains("more bytes cut"));
    assert_eq!(report.checks.len(), MAX_CHECKS + 1);
    assert_eq!(report.checks.last().unwrap().name, "checks-dropped");

    let called = attack(&hostile, &Sandbox::default(), "flood-stdout")
        .await
        .expect("flooding stdout is not fatal");
    let stdout_bytes: usize = called.logs.iter().map(|l| l.message.len()).sum();
    assert!(
        stdout_bytes <= (64 << 10) + 1024,
        "kept {stdout_bytes} bytes of a 64 MiB flood"
    );
    still_serves(&rt).await;
}

#[tokio::test]
async fn request_budget_and_empty_grants_deny_without_io() {
    let rt = runtime();
    let hostile = load(&rt, test_plugin("hostile")).await;
    let server = plain_server().await;
    let grants = Grants {
        http_max_requests: 0,
        ..Grants::default()
    }
    .with_hosts(AllowList::parse(&[server.host()]).unwrap());
    let sb = Sandbox {
        limits: Limits::default(),
        grants: Arc::new(grants),
        http: Default::default(),
    };
    let report = attack(&hostile, &sb, &format!("http {}", server.url("/")))
        .await
        .unwrap()
        .value;
    assert!(
        matches!(&report.verdict, Verdict::Fail(r) if r.contains("budget")),
        "{:?}",
        report.verdict
    );
    assert_eq!(server.hits(), 0);
}

/// Every exchange is recorded, through `http` and through `wasi:http`; the same call with the
/// recording canned is answered from it without a request reaching the server.
#[tokio::test]
async fn exchanges_are_recorded_and_a_canned_call_never_reaches_the_network() {
    let rt = runtime();
    let hostile = load(&rt, test_plugin("hostile")).await;
    let server = plain_server().await;
    let live = sandbox(&[server.host()]);
    for attack_with in ["http", "wasi-http"] {
        let url = server.url("/health");
        let called = attack(&hostile, &live, &format!("{attack_with} {url}"))
            .await
            .unwrap();
        let hits = server.hits();
        assert_eq!(
            called.exchanges.len(),
            1,
            "{attack_with}: {:?}",
            called.exchanges
        );
        let mut recorded = called.exchanges[0].clone();
        assert_eq!(
            (recorded.method.as_str(), recorded.url.as_str()),
            ("GET", url.as_str())
        );
        assert_eq!(recorded.status, Some(200), "{attack_with}: {recorded:?}");

        // Canned: the recorded answer, changed, comes back; the server sees nothing.
        recorded.status = Some(418);
        let canned = Sandbox {
            http: HttpSource::Canned(vec![recorded.clone()].into()),
            ..live.clone()
        };
        let report = attack(&hostile, &canned, &format!("{attack_with} {url}"))
            .await
            .unwrap();
        let text = format!("{:?}", report.value.verdict);
        assert!(text.contains("status 418"), "{attack_with}: {text}");
        assert_eq!(
            report.exchanges,
            vec![recorded],
            "{attack_with}: replayed calls record too"
        );
        assert_eq!(
            server.hits(),
            hits,
            "{attack_with}: a canned call reached the server"
        );

        // A request the recording has no answer for fails; it is not sent.
        let other = server.url("/other");
        let report = attack(&hostile, &canned, &format!("{attack_with} {other}"))
            .await
            .unwrap()
            .value;
        assert!(
            matches!(report.verdict, Verdict::Fail(_)),
            "{:?}",
            report.verdict
        );
        assert_eq!(server.hits(), hits);
    }
}
