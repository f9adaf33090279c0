//! `launch-host serve`: the place a release owner, a QA lead and an on-call engineer look at the
//! same launch. Pages are drawn by the engine's run page (the same as `report.html`), the runs
//! list by this crate's template; a run being viewed is followed by one watcher whose renders
//! every viewer shares (`live`); actions are off unless the server was started with them, and
//! then each needs the token printed at start (`actions`). Everything is served by the binary:
//! no CDN, no fetch at view time.
//!
//! Depends on the engine only (binary → web → engine), like the CLI: it reads journals and
//! asks the engine to act, never the targets directly.

pub mod actions;
mod guard;
pub mod live;
pub mod runs;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

pub use actions::Actions;
pub use runs::Runs;

use launch_engine::report::page;

/// What `serve` serves.
pub struct Config {
    pub runs: Runs,
    pub actions: Option<Actions>,
}

struct App {
    runs: Runs,
    hub: live::Hub,
    actions: Option<Actions>,
}

type Shared = State<Arc<App>>;

/// The server's routes.
pub fn router(config: Config) -> Router {
    let app = Arc::new(App {
        runs: config.runs,
        hub: live::Hub::default(),
        actions: config.actions,
    });
    Router::new()
        .route("/", get(runs_page))
        .route("/runs/{id}", get(run_page))
        .route("/runs/{id}/events", get(run_events))
        .route("/runs/{id}/report.html", get(run_report))
        .route("/runs/{id}/actions", post(run_action))
        .route("/live.js", get(live_js))
        .layer(axum::middleware::from_fn(guard::headers))
        .with_state(app)
}

/// The run page's one script (see `guard`: no other runs).
async fn live_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("live.js"),
    )
        .into_response()
}

/// Serves on `listener` until Ctrl-C.
pub async fn serve(listener: tokio::net::TcpListener, config: Config) -> anyhow::Result<()> {
    let server = axum::serve(listener, router(config));
    tokio::select! {
        r = server => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// Whether `addr` is on this machine only.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

fn not_found(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(format!(
            "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>no such run</title><main><p>No run {} here. <a href=\"/\">All runs</a></p></main></html>",
            escape(id)
        )),
    )
        .into_response()
}

/// Only for the few words this file writes itself around a value; pages are templates.
fn escape(s: &str) -> String {
    askama::filters::escape(s, askama::filters::Html)
        .map(|e| e.to_string())
        .unwrap_or_default()
}

async fn folder(app: &App, id: &str) -> Option<std::path::PathBuf> {
    app.runs.open(id).await
}

async fn runs_page(
    State(app): Shared,
    axum::extract::Query(filter): axum::extract::Query<runs::Filter>,
) -> Html<String> {
    Html(app.runs.page(&filter).await)
}

async fn run_page(State(app): Shared, Path(id): Path<String>) -> Response {
    let emergency = match (&app.actions, app.runs.folder(&id)) {
        (Some(_), Some(dir)) => tokio::task::spawn_blocking(move || actions::emergency(&dir))
            .await
            .unwrap_or_default(),
        _ => String::new(),
    };
    let live = page::Live {
        events: format!("/runs/{id}/events"),
        actions: app.actions.as_ref().map(|_| format!("/runs/{id}/actions")),
        emergency,
    };
    run(&app, &id, Some(&live)).await
}

async fn run_report(State(app): Shared, Path(id): Path<String>) -> Response {
    run(&app, &id, None).await
}

/// A run's page: live when served to follow it, standalone as its report.
async fn run(app: &App, id: &str, live: Option<&page::Live>) -> Response {
    let Some(dir) = folder(app, id).await else {
        return not_found(id);
    };
    match launch_engine::report::RunReport::from_journal(&dir) {
        Ok(report) => {
            let uat = launch_engine::report::uat_for(&report, &dir);
            Html(page::render(&report, uat.as_ref(), live)).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")).into_response(),
    }
}

async fn run_events(State(app): Shared, Path(id): Path<String>) -> Response {
    let Some(dir) = folder(&app, &id).await else {
        return not_found(&id);
    };
    let rx = app.hub.subscribe(dir, app.runs.clone());
    ([(header::CACHE_CONTROL, "no-store")], live::events(rx)).into_response()
}

async fn run_action(
    State(app): Shared,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    axum::Form(form): axum::Form<actions::Form>,
) -> Response {
    let Some(actions) = &app.actions else {
        return (
            StatusCode::FORBIDDEN,
            "actions are off: start the server with `launch-host serve --allow-actions`",
        )
            .into_response();
    };
    let Some(dir) = app.runs.folder(&id) else {
        return not_found(&id);
    };
    let message = |status: StatusCode, what: &str| {
        (
            status,
            Html(format!(
                "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{}</title><main><p>{}</p><p><a href=\"/runs/{}\">Back to the run</a></p></main></html>",
                status.as_u16(),
                escape(what),
                escape(&id)
            )),
        )
            .into_response()
    };
    // Even with the right token: only the server's own pages act (see `guard`).
    if let Some(why) = guard::foreign(&headers) {
        return message(
            StatusCode::FORBIDDEN,
            &format!("refused: {why}; nothing was done"),
        );
    }
    match actions.act(&dir, &form).await {
        Ok(_) => Redirect::to(&format!("/runs/{id}")).into_response(),
        Err(actions::Refusal::Forbidden) => message(
            StatusCode::FORBIDDEN,
            "refused: the token is missing or wrong (it is printed where `launch-host serve` started); nothing was done",
        ),
        Err(actions::Refusal::Incomplete(why)) => message(StatusCode::BAD_REQUEST, &why),
        Err(actions::Refusal::Conflict(why)) => message(StatusCode::CONFLICT, &why),
    }
}
