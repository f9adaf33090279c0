//! `launch-host serve` in a real browser: Debian's Chromium, headless, driven over WebDriver
//! (chromedriver) by fantoccini. The runs list shows a finished run; a live run page follows the
//! canary's flag as the run goes, without a reload; a latency fault shows the rollback
//! decision and the threshold line; an action without the token is refused (403) and changes
//! nothing, one with it is journaled with the operator. Screenshots of the live page and the
//! report are written and checked for size.

mod support;

use fantoccini::Locator;
use std::time::{Duration, Instant};

use support::web::{Browser, Server, journal, runbook, start_run, wait_for_run};
use support::{launch_host_with, repo};

#[tokio::test(flavor = "multi_thread")]
async fn a_live_run_page_follows_the_canary_and_refuses_actions_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let book = runbook(dir.path());
    let server = Server::start(&ws, &book);
    let browser = Browser::start().await;
    let mut run = start_run(&ws, &book, None);
    let run_dir = wait_for_run(&ws.join("runs"));
    let id = run_dir.file_name().unwrap().to_string_lossy().to_string();

    browser
        .page()
        .goto(&format!("{}/runs/{id}", server.url))
        .await
        .unwrap();
    // A mark on this document: a reload would lose it.
    browser
        .page()
        .execute("window.loadedOnce = 42;", vec![])
        .await
        .unwrap();
    let mut seen: Vec<u64> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let flag = browser
            .page()
            .execute(
                "var f = document.querySelector('.flagnow'); return f ? Number(f.dataset.flag) : null;",
                vec![],
            )
            .await
            .unwrap();
        if let Some(f) = flag.as_u64()
            && seen.last() != Some(&f)
        {
            seen.push(f);
        }
        if seen.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen.len() >= 3 && seen.windows(2).all(|w| w[0] < w[1]),
        "the page showed the flag at {seen:?}"
    );
    let mark = browser
        .page()
        .execute("return window.loadedOnce;", vec![])
        .await
        .unwrap();
    assert_eq!(mark, 42, "the page was reloaded");
    browser.screenshot("live-run").await;

    // Without the token: 403, and nothing reaches the canary.
    browser
        .act("abort", &[("operator", "eve"), ("token", "not-the-token")])
        .await;
    // The form's answer replaces the page once its navigation ends: waited for, not raced.
    let started = Instant::now();
    loop {
        let body = browser.text("body").await;
        if body.contains("refused: the token is missing or wrong") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = server
        .post_action(&id, "action=abort&operator=eve&token=")
        .await
        .status();
    assert_eq!(status, 403);
    assert!(!run_dir.join("control.json").exists());
    assert!(!journal(&run_dir).iter().any(|r| r["event"] == "control"));

    // With it, the canary is aborted, and the journal names who did it.
    browser
        .page()
        .goto(&format!("{}/runs/{id}", server.url))
        .await
        .unwrap();
    browser
        .act(
            "abort",
            &[
                ("operator", "eve"),
                ("reason", "checking the button"),
                ("token", &server.token),
            ],
        )
        .await;
    let code = tokio::task::spawn_blocking(move || run.wait().unwrap().code())
        .await
        .unwrap();
    assert_eq!(code, Some(3), "an aborted canary is rolled back");
    let control = journal(&run_dir)
        .into_iter()
        .find(|r| r["event"] == "control")
        .expect("a control record");
    assert_eq!(control["operator"], "eve", "{control}");
    // The page (back from the form) says so as soon as the journal does.
    let started = Instant::now();
    loop {
        let outcome = browser.text("#outcome").await;
        if outcome == "ROLLED-BACK" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "outcome {outcome}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The body the updates built, line changes on line changes, is the body the server
    // renders for the finished run: compared as the browser parses both (the page's own
    // whitespace around it aside).
    let started = Instant::now();
    loop {
        let same = browser
            .page()
            .execute_async(
                "var done = arguments[0];
                 fetch(location.href, {cache: 'no-store'}).then(function (r) { return r.text(); }).then(function (t) {
                   var fresh = new DOMParser().parseFromString(t, 'text/html').getElementById('run').innerHTML.trim();
                   var live = document.getElementById('run').innerHTML.trim();
                   done(fresh === live ? 'same' : 'fresh ' + fresh.length + ' B, live ' + live.length + ' B');
                 });",
                vec![],
            )
            .await
            .unwrap();
        if same == "same" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{same}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.close().await;

    // The emergency rollback button: a run of its own in the workspace, started by eve.
    let response = server
        .post_action(
            &id,
            &format!(
                "action=rollback&operator=eve&reason=drill&confirm=yes&token={}",
                server.token
            ),
        )
        .await;
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let rollback = support::local_runs(&ws.join("runs")).pop().unwrap();
    assert_ne!(rollback, run_dir);
    let records = journal(&rollback);
    assert_eq!(records[0]["started_by"], "eve", "{:?}", records[0]);
    assert!(
        records.iter().any(|r| r["event"] == "effect-done"
            && r["detail"]
                .as_str()
                .unwrap()
                .contains("drill (from the web dashboard) (by eve)")),
        "{records:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runs_list_and_a_rolled_back_runs_report_show_the_decision_and_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let book = runbook(dir.path());
    let code = tokio::task::spawn_blocking({
        let (ws, book) = (ws.clone(), book.clone());
        move || {
            start_run(&ws, &book, Some("v2-latency=2500ms"))
                .wait()
                .unwrap()
                .code()
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(3));
    let run_dir = support::local_runs(&ws.join("runs")).pop().unwrap();
    let id = run_dir.file_name().unwrap().to_string_lossy().to_string();
    let server = Server::start(&ws, &book);
    let browser = Browser::start().await;

    browser.page().goto(&server.url).await.unwrap();
    let row = browser.text(&format!("tr[data-run='{id}']")).await;
    assert!(
        row.contains("rolled-back") && row.contains("Canary on staging"),
        "{row}"
    );
    browser
        .page()
        .find(Locator::LinkText(&id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let decisions = browser.text("table.decisions").await;
    assert!(decisions.contains("rollback"), "{decisions}");
    let threshold = browser.text("svg text.threshold").await;
    assert!(threshold.contains("latency-p95 ≤ 2000 ms"), "{threshold}");
    let lines = browser
        .page()
        .execute(
            "return document.querySelectorAll('svg line.threshold').length;",
            vec![],
        )
        .await
        .unwrap();
    assert!(lines.as_u64().unwrap() >= 2, "{lines}");

    // The report: the same page, standalone (no script), as the run folder keeps it.
    let report = run_dir.join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(!html.contains("<script"), "the report needs no script");
    browser
        .page()
        .goto(&format!("file://{}", report.display()))
        .await
        .unwrap();
    assert_eq!(browser.text("#outcome").await, "ROLLED-BACK");
    assert!(browser.text("svg text.threshold").await.contains("2000 ms"));
    browser.screenshot("report").await;
    let background = |b: &Browser| {
        let page = b.page().clone();
        async move {
            page.execute(
                "return getComputedStyle(document.body).backgroundColor;",
                vec![],
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(background(&browser).await, "rgb(255, 255, 255)");
    browser.close().await;

    // Readable in the dark too: the same report with a dark preference.
    let dark = Browser::start_in(true).await;
    dark.page()
        .goto(&format!("file://{}", report.display()))
        .await
        .unwrap();
    assert_eq!(background(&dark).await, "rgb(13, 17, 23)");
    dark.screenshot("report-dark").await;
    dark.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_mirrored_in_s3_are_listed_and_shown_on_another_machine() {
    let moto = support::Moto::start();
    let s3 = moto.s3().await;
    s3.create_bucket().bucket("site").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("launch.toml");
    std::fs::write(
        &book,
        format!(
            "[launch]\nname = \"StatusBoardV2\"\nflag = \"STATUS_BOARD_V2_ENABLED\"\n\
             [environments.production]\nurl = \"{e}/site\"\napi-url = \"{e}/site\"\nstore = \"s3://site\"\n\
             [[stage]]\nname = \"bake\"\naction = \"wait\"\nenvironment = \"production\"\nduration = \"200ms\"\n",
            e = moto.endpoint
        ),
    )
    .unwrap();
    // One machine runs the launch; its run is mirrored to s3://site.
    let elsewhere = dir.path().join("elsewhere");
    let out = launch_host_with(&moto.env())
        .args(["run", "--yes", "--runbook"])
        .arg(&book)
        .arg("--plugins")
        .arg(repo().join("plugins"))
        .arg("--runs-dir")
        .arg(elsewhere.join("runs"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = support::local_runs(&elsewhere.join("runs"))
        .pop()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();

    // Another serves an empty workspace with the shared state.
    let here = dir.path().join("here");
    let server = Server::start_with(&here, &book, &moto.env(), &["--state", "s3://site"]);
    let client = reqwest::Client::new();
    let list = client
        .get(&server.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains(&format!("data-run=\"{id}\"")), "{list}");
    assert!(list.contains("class=\"passed\""), "{list}");
    assert!(
        list.contains("<td>StatusBoardV2</td><td>production</td>"),
        "{list}"
    );
    // Listed from its summary: none of its files came here until its page is opened.
    let fetched = here.join("runs").join(&id);
    assert!(!fetched.exists(), "the list fetched {}", fetched.display());
    let page = client
        .get(format!("{}/runs/{id}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains(&format!("run {id}"))
            && page.contains(r#"<span class="launch" id="launch">StatusBoardV2</span>"#)
            && page.contains("PASSED"),
        "{page}"
    );
    assert!(fetched.join("journal.jsonl").is_file());
    // A name that is not a run is not a path.
    let status = client
        .get(format!("{}/runs/..%2F..%2Fetc", server.url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_elsewhere_cannot_act_even_with_the_token_and_pages_run_no_foreign_script() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let book = runbook(dir.path());
    let server = Server::start(&ws, &book);
    let mut run = start_run(&ws, &book, None);
    let run_dir = wait_for_run(&ws.join("runs"));
    let id = run_dir.file_name().unwrap().to_string_lossy().to_string();

    // Every page says what the browser may run, frame and send.
    let page = reqwest::get(format!("{}/runs/{id}", server.url))
        .await
        .unwrap();
    let header = |name: &str| {
        page.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let csp = header("content-security-policy");
    for part in [
        "script-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "default-src 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert_eq!(header("referrer-policy"), "same-origin");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script>"),
        "no inline script: the CSP would block it"
    );

    // The right token from another origin: refused, nothing done (8fddcc8 accepted it).
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/runs/{id}/actions", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "http://evil.example")
        .body(format!("action=abort&operator=eve&token={}", server.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("came from http://evil.example")
    );

    // A page on another port of this machine posts the form with the token as a visitor's
    // browser would (Chromium sends Sec-Fetch-Site: same-site): refused too.
    let target = format!("{}/runs/{id}/actions", server.url);
    let evil_html = format!(
        r#"<!doctype html><form id="f" method="post" action="{target}"><input name="action" value="abort"><input name="operator" value="mallory"><input name="token" value="{}"></form><script>document.getElementById("f").submit();</script>"#,
        server.token
    );
    let evil = support::Server::start(axum::Router::new().fallback(move || {
        let html = evil_html.clone();
        async move { axum::response::Html(html) }
    }))
    .await;
    let browser = Browser::start().await;
    browser.page().goto(&evil.url("/")).await.unwrap();
    let started = Instant::now();
    loop {
        let body = browser.text("body").await;
        if body.contains("refused") {
            assert!(body.contains("came from another site"), "{body}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !journal(&run_dir).iter().any(|r| r["event"] == "control"),
        "nothing reached the canary"
    );

    // The server's own page still follows the run with its own script under the policy.
    browser
        .page()
        .goto(&format!("{}/runs/{id}", server.url))
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let live = browser.text("#live").await;
        if live.contains("journal record(s)") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the live script did not run: {live}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.close().await;
    let _ = run.kill();
    let _ = run.wait();
}
