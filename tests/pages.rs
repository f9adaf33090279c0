//! The run page and the fleet page as a release engineer keeps them open during a launch, in
//! a real Chromium at 1280×800:
//! - the first screen of a live canary names the launch and its environment and shows the flag,
//!   the step, canary against baseline, the last decision and the emergency button, each
//!   found by its position above the fold;
//! - the actions work from the keyboard alone, and the emergency rollback asks first, naming
//!   the flag and the environment it sets to 0%;
//! - charts are scaled to the data (a far threshold is written above them), mark the
//!   promotions and the rollback, drop the flag to 0 and name their values on hover;
//!   repeated decisions are one row that opens;
//! - the fleet lists running launches first and filters by service, environment and outcome;
//! - axe-core (npm, tests/web-tools) finds no serious or critical violation on any page, in
//!   light and dark; screenshots of each are kept for review.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::web::{Browser, Server, canary_runbook, journal, start_run, wait_for_run};
use support::{local_runs, repo};

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
const SPACE: &str = " ";

/// A canary of five steps on the embedded target, about ten seconds unless held.
fn runbook(dir: &Path, launch: &str, step_ms: u64) -> PathBuf {
    canary_runbook(&dir.join(format!("{launch}.toml")), launch, step_ms)
}

/// The serious and critical accessibility violations axe-core finds on the current page.
async fn axe(browser: &Browser) -> Vec<String> {
    let source =
        std::fs::read_to_string(repo().join("tests/web-tools/node_modules/axe-core/axe.min.js"))
            .expect("axe-core in tests/web-tools (scripts/setup.sh --tests runs npm ci there)");
    browser.page().execute(&source, vec![]).await.unwrap();
    let found = browser
        .page()
        .execute_async(
            r#"var done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ["violations"] }).then(function (r) {
              done(r.violations.filter(function (v) { return v.impact === "serious" || v.impact === "critical"; })
                .map(function (v) { return v.id + " (" + v.impact + "): " + v.help + " at " +
                  v.nodes.slice(0, 3).map(function (n) { return n.target.join(" "); }).join(", "); }));
            }).catch(function (e) { done(["axe failed: " + e]); });"#,
            vec![],
        )
        .await
        .unwrap();
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Where the first element `css` selects is on the page: (top, bottom, text), with the
/// viewport's height.
async fn place(browser: &Browser, css: &str) -> (f64, f64, String, f64) {
    let v = browser
        .page()
        .execute(
            "var e = document.querySelector(arguments[0]); if (!e) { return null; }
             var r = e.getBoundingClientRect();
             return [r.top + window.scrollY, r.bottom + window.scrollY, e.textContent, window.innerHeight];",
            vec![serde_json::json!(css)],
        )
        .await
        .unwrap();
    let v = v
        .as_array()
        .unwrap_or_else(|| panic!("nothing matches {css}"));
    (
        v[0].as_f64().unwrap(),
        v[1].as_f64().unwrap(),
        v[2].as_str().unwrap().to_string(),
        v[3].as_f64().unwrap(),
    )
}

/// Presses `keys` on whatever has the focus, as a keyboard would.
async fn keys(browser: &Browser, keys: &str) {
    browser
        .page()
        .active_element()
        .await
        .unwrap()
        .send_keys(keys)
        .await
        .unwrap();
}

/// The focused element, described: `tag name value text`.
async fn focused(browser: &Browser) -> String {
    browser
        .page()
        .execute(
            "var e = document.activeElement; return e === document.body ? 'BODY' : [e.tagName, e.name || '', e.value || '', e.textContent.trim()].join(' ');",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

/// Tabs forward until `want` is in the focused element's description (at most 30 stops).
async fn tab_to(browser: &Browser, want: &str) {
    for _ in 0..30 {
        if focused(browser).await.contains(want) {
            return;
        }
        keys(browser, TAB).await;
    }
    panic!("tabbing never reached {want}");
}

/// Waits for the live page's first update (its script swaps the body once connected), so
/// what a test focuses is not replaced under it.
async fn settled(browser: &Browser) {
    wait_until("the page's first update", async || {
        browser
            .page()
            .execute("return document.body.dataset.seq || null;", vec![])
            .await
            .unwrap()
            .is_string()
    })
    .await;
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited 30 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_canary_s_first_screen_shows_what_is_live_and_the_actions_work_from_the_keyboard() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    // Long steps: the canary is still running while the page is read and acted on.
    let book = runbook(dir.path(), "StatusBoardV2", 4000);
    let server = Server::start(&ws, &book);
    let browser = Browser::start_sized(false, 1280, 800).await;
    let mut run = start_run(&ws, &book, None);
    let run_dir = wait_for_run(&ws.join("runs"));
    let id = run_dir.file_name().unwrap().to_string_lossy().to_string();
    let page = format!("{}/runs/{id}", server.url);
    browser.page().goto(&page).await.unwrap();
    // Past the first promotion and a decision after it.
    wait_until("the canary at 20%", async || {
        let flag = browser
            .page()
            .execute(
                "var f = document.querySelector('.flagnow'); return f ? Number(f.dataset.flag) : 0;",
                vec![],
            )
            .await
            .unwrap();
        flag.as_u64().unwrap_or(0) >= 20
    })
    .await;

    // Above the fold: the launch, the flag where it is, the step, canary against baseline,
    // the last decision and why, the charts, the emergency button.
    for (css, want) in [
        ("#launch", "StatusBoardV2"),
        ("#now-flag", "in staging"),
        ("#now-flag", "step "),
        ("#now .health", "p95 latency"),
        ("#now-decision .decision", ""),
        ("#now-decision", "%"),
        ("#now-charts svg", ""),
        ("#emergency > summary", "Emergency rollback"),
    ] {
        let (top, bottom, text, fold) = place(&browser, css).await;
        assert_eq!(fold, 800.0, "the viewport");
        assert!(
            top >= 0.0 && bottom <= fold,
            "{css} is at {top}–{bottom}, below the fold at {fold}"
        );
        assert!(text.contains(want), "{css} says {text:?}, not {want:?}");
    }
    let (_, _, flag, _) = place(&browser, "#now-flag").await;
    assert!(flag.contains("STATUS_BOARD_V2_ENABLED"), "{flag}");
    browser.screenshot("first-screen-live-light").await;
    assert_eq!(
        axe(&browser).await,
        Vec::<String>::new(),
        "the live run page"
    );

    // Keyboard only: from the top of the page to the pause button, typing what the form asks.
    browser
        .page()
        .execute(
            "document.activeElement.blur(); window.scrollTo(0, 0);",
            vec![],
        )
        .await
        .unwrap();
    tab_to(&browser, "operator").await;
    keys(&browser, "kim").await;
    keys(&browser, TAB).await;
    keys(&browser, "keyboard check").await;
    keys(&browser, TAB).await;
    keys(&browser, &server.token).await;
    tab_to(&browser, "Pause canary").await;
    keys(&browser, ENTER).await;
    wait_until("the pause in the journal", async || {
        journal(&run_dir)
            .iter()
            .any(|r| r["event"] == "control" && r["operator"] == "kim")
    })
    .await;

    // The emergency: a confirmation that names what it does; without the box ticked the
    // server does nothing either.
    browser.page().goto(&page).await.unwrap();
    browser
        .page()
        .execute("document.activeElement.blur();", vec![])
        .await
        .unwrap();
    tab_to(&browser, "Emergency rollback").await;
    keys(&browser, ENTER).await;
    let (_, bottom, confirm, fold) = place(&browser, "#emergency form p").await;
    assert!(
        confirm.contains("Sets STATUS_BOARD_V2_ENABLED to 0% in staging now"),
        "{confirm}"
    );
    assert!(bottom <= fold, "the confirmation opens in view: {bottom}");
    browser.screenshot("emergency-confirmation-light").await;
    let before = local_runs(&ws.join("runs")).len();
    let refused = server
        .post_action(
            &id,
            &format!(
                "action=rollback&operator=kim&reason=drill&token={}",
                server.token
            ),
        )
        .await;
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("tick the confirmation")
    );
    assert_eq!(
        local_runs(&ws.join("runs")).len(),
        before,
        "nothing was done"
    );
    tab_to(&browser, "operator").await;
    keys(&browser, "kim").await;
    keys(&browser, TAB).await;
    keys(&browser, "error spike").await;
    keys(&browser, TAB).await;
    keys(&browser, &server.token).await;
    keys(&browser, TAB).await;
    assert!(focused(&browser).await.contains("confirm"));
    keys(&browser, SPACE).await;
    keys(&browser, TAB).await;
    assert!(focused(&browser).await.contains("Roll back now"));
    keys(&browser, ENTER).await;
    wait_until("the rollback run", async || {
        local_runs(&ws.join("runs")).len() > before
    })
    .await;
    let rollback = local_runs(&ws.join("runs")).pop().unwrap();
    assert_ne!(rollback, run_dir);
    let records = journal(&rollback);
    assert_eq!(records[0]["started_by"], "kim", "{:?}", records[0]);
    assert!(
        records.iter().any(|r| r["event"] == "effect-done"
            && r["detail"].as_str().unwrap().contains("error spike")),
        "{records:#?}"
    );

    // The fleet: the paused canary is listed first though the rollback run is newer.
    browser.page().goto(&server.url).await.unwrap();
    let first = browser.text("#runs tr[data-run]").await;
    assert!(first.contains(&id) && first.contains("running"), "{first}");
    assert_eq!(axe(&browser).await, Vec::<String>::new(), "the fleet page");

    // Done: the paused canary is aborted.
    let response = server
        .post_action(
            &id,
            &format!("action=abort&operator=kim&token={}", server.token),
        )
        .await;
    assert_eq!(response.status(), 303);
    let code = tokio::task::spawn_blocking(move || run.wait().unwrap().code())
        .await
        .unwrap();
    assert_eq!(code, Some(3), "an aborted canary is rolled back");
    browser.close().await;
}

/// Runs `book` to its end in `ws`; its run folder.
fn finished_run(ws: &Path, book: &Path, inject: Option<&str>) -> PathBuf {
    let before = local_runs(&ws.join("runs"));
    let status = start_run(ws, book, inject).wait().unwrap();
    assert!(status.code().is_some(), "{status:?}");
    local_runs(&ws.join("runs"))
        .into_iter()
        .find(|r| !before.contains(r))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn charts_are_scaled_to_the_data_and_marked_and_the_fleet_filters_in_light_and_dark() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let healthy = finished_run(&ws, &runbook(dir.path(), "StatusBoardV2", 2000), None);
    let broken = finished_run(
        &ws,
        &runbook(dir.path(), "Checkout", 2000),
        Some("v2-latency=2500ms"),
    );
    let id = |run: &Path| run.file_name().unwrap().to_string_lossy().to_string();
    let server = Server::start(&ws, &runbook(dir.path(), "Checkout", 2000));

    for dark in [false, true] {
        let browser = Browser::start_sized(dark, 1280, 800).await;
        let scheme = if dark { "dark" } else { "light" };

        // Healthy: milliseconds on the axis, the 2000 ms limit written above it; every
        // promotion marked; values on hover; the repeated holds are rows that open.
        browser
            .page()
            .goto(&format!("{}/runs/{}", server.url, id(&healthy)))
            .await
            .unwrap();
        let chart = browser
            .page()
            .execute(
                "var svg = document.querySelector('#now-charts svg');
                 var ticks = Array.from(svg.querySelectorAll('text.y')).map(function (t) { return Number(t.textContent); });
                 return {
                   top: Math.max.apply(null, ticks),
                   threshold: Array.from(svg.querySelectorAll('text.threshold')).map(function (t) { return t.textContent; }).join(' '),
                   promotions: svg.querySelectorAll('g.marker.promote').length,
                   hover: Array.from(svg.querySelectorAll('g.hover rect title')).map(function (t) { return t.textContent; }),
                 };",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            chart["top"].as_f64().unwrap() < 100.0,
            "scaled to healthy latencies: {chart}"
        );
        assert!(
            chart["threshold"]
                .as_str()
                .unwrap()
                .contains("latency-p95 ≤ 2000 ms, above this scale"),
            "{chart}"
        );
        assert_eq!(chart["promotions"], 5, "10, 20, 30, 40 and 100%: {chart}");
        let hover = chart["hover"].as_array().unwrap();
        assert!(
            hover
                .iter()
                .any(|t| t.as_str().unwrap().contains("canary")
                    && t.as_str().unwrap().contains(" ms")),
            "{chart}"
        );
        let decisions = journal(&healthy)
            .iter()
            .filter(|r| r["event"] == "decision")
            .count();
        let rows = browser
            .page()
            .execute(
                "return document.querySelectorAll('table.decisions tr').length - 1;",
                vec![],
            )
            .await
            .unwrap()
            .as_u64()
            .unwrap() as usize;
        assert!(
            rows >= 6 && rows * 3 < decisions,
            "{rows} rows for {decisions} decisions"
        );
        // A group opens from the keyboard and lists each decision.
        settled(&browser).await;
        browser
            .page()
            .execute(
                "document.querySelector('table.decisions details summary').focus();",
                vec![],
            )
            .await
            .unwrap();
        keys(&browser, ENTER).await;
        let opened = browser
            .page()
            .execute(
                "var d = document.querySelector('table.decisions details'); return [d.open, d.querySelectorAll('li').length];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(opened[0], true, "{opened}");
        assert!(opened[1].as_u64().unwrap() >= 2, "{opened}");
        assert_eq!(
            axe(&browser).await,
            Vec::<String>::new(),
            "{scheme} healthy run"
        );
        browser.screenshot(&format!("run-passed-{scheme}")).await;

        // Rolled back: the flag at 0 at the top and on the chart, the rollback marked.
        browser
            .page()
            .goto(&format!("{}/runs/{}", server.url, id(&broken)))
            .await
            .unwrap();
        let (_, _, flag, _) = place(&browser, "#now-flag").await;
        assert!(
            flag.contains("0%") && flag.contains("rolled back"),
            "{flag}"
        );
        let chart = browser
            .page()
            .execute(
                "var svg = document.querySelector('#now-charts svg');
                 var pts = svg.querySelector('polyline.flag').getAttribute('points').trim().split(/\\s+/);
                 var zero = Array.from(svg.querySelectorAll('text.flagtick')).find(function (t) { return t.textContent === '0%'; });
                 var ticks = Array.from(svg.querySelectorAll('text.y')).map(function (t) { return Number(t.textContent); });
                 return {
                   last: Number(pts[pts.length - 1].split(',')[1]),
                   zero: Number(zero.getAttribute('y')) - 4,
                   rollback: svg.querySelectorAll('g.marker.rollback').length,
                   title: svg.querySelector('g.marker.rollback title').textContent,
                   top: Math.max.apply(null, ticks),
                 };",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(chart["rollback"], 1, "{chart}");
        assert!(
            chart["title"].as_str().unwrap().contains("latency-p95"),
            "{chart}"
        );
        assert!(
            (chart["last"].as_f64().unwrap() - chart["zero"].as_f64().unwrap()).abs() < 0.2,
            "the flag line ends at 0%: {chart}"
        );
        assert!(
            chart["top"].as_f64().unwrap() >= 2500.0,
            "the breach is on the scale: {chart}"
        );
        assert_eq!(
            axe(&browser).await,
            Vec::<String>::new(),
            "{scheme} rolled-back run"
        );
        browser
            .screenshot(&format!("run-rolled-back-{scheme}"))
            .await;

        // The standalone report (report.html) is the same page without the live parts.
        browser
            .page()
            .goto(&format!("{}/runs/{}/report.html", server.url, id(&broken)))
            .await
            .unwrap();
        assert_eq!(axe(&browser).await, Vec::<String>::new(), "{scheme} report");

        // The fleet, filtered.
        browser.page().goto(&server.url).await.unwrap();
        let all = browser.text("#runs").await;
        assert!(
            all.contains("StatusBoardV2") && all.contains("Checkout"),
            "{all}"
        );
        assert_eq!(axe(&browser).await, Vec::<String>::new(), "{scheme} fleet");
        browser.screenshot(&format!("fleet-{scheme}")).await;
        for (query, shown, hidden) in [
            ("outcome=rolled-back", id(&broken), id(&healthy)),
            ("service=StatusBoardV2", id(&healthy), id(&broken)),
        ] {
            browser
                .page()
                .goto(&format!("{}/?{query}", server.url))
                .await
                .unwrap();
            let rows = browser.text("#runs").await;
            assert!(
                rows.contains(&shown) && !rows.contains(&hidden),
                "{query}: {rows}"
            );
        }
        browser
            .page()
            .goto(&format!("{}/?environment=production", server.url))
            .await
            .unwrap();
        let none = browser.text("#fleet-runs").await;
        assert!(none.contains("No run matches these filters"), "{none}");
        // The server's own short answers (an unknown run) too.
        browser
            .page()
            .goto(&format!("{}/runs/no-such-run", server.url))
            .await
            .unwrap();
        assert_eq!(axe(&browser).await, Vec::<String>::new(), "the 404 page");
        // The check can fail: an image without a text alternative, planted, is found.
        browser
            .page()
            .execute(
                "var i = document.createElement('img'); i.src = 'data:,'; document.body.appendChild(i);",
                vec![],
            )
            .await
            .unwrap();
        let planted = axe(&browser).await;
        assert!(
            planted.iter().any(|v| v.starts_with("image-alt")),
            "{planted:?}"
        );
        browser.close().await;
    }
}
