//! The simulator's HTTP surface: the site from the store's current release, and the API the
//! guide's smoke tests and monitors use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use serde::Deserialize;
use serde_json::json;

use super::metrics::Metrics;
use super::routing::{self, Variant};
use super::{Inject, SimulatorConfig, site};

pub struct State {
    config: SimulatorConfig,
    router: routing::Router,
    /// Appointment id → (status, version), for optimistic-concurrency moves.
    appointments: Mutex<HashMap<u32, (String, u64)>>,
    live_inject: Mutex<(std::time::Instant, Inject)>,
    metrics: Arc<Metrics>,
}

impl State {
    pub fn new(config: SimulatorConfig) -> Self {
        let appointments = (1..=12)
            .map(|id| (id, (STATUSES[id as usize % STATUSES.len()].to_string(), 1)))
            .collect();
        let stale = std::time::Instant::now() - std::time::Duration::from_secs(1);
        let live_inject = Mutex::new((stale, config.inject));
        State {
            config,
            router: routing::Router::new(),
            appointments: Mutex::new(appointments),
            live_inject,
            metrics: Arc::new(Metrics::new(&ROUTES)),
        }
    }

    /// The faults in force: the configured ones, or those of the fault file while it exists
    /// (so a fault can be injected into a running launch, e.g. by the reaction-time benchmark).
    fn inject(&self) -> Inject {
        let Some(path) = &self.config.inject_file else {
            return self.config.inject;
        };
        let mut cached = self.live_inject.lock().unwrap_or_else(|e| e.into_inner());
        if cached.0.elapsed() >= std::time::Duration::from_millis(20) {
            let live = std::fs::read_to_string(path).ok().and_then(|text| {
                let mut i = Inject::default();
                text.split_whitespace()
                    .try_for_each(|spec| i.apply(spec))
                    .ok()
                    .map(|_| i)
            });
            *cached = (
                std::time::Instant::now(),
                live.unwrap_or(self.config.inject),
            );
        }
        cached.1
    }
}

const STATUSES: [&str; 5] = ["scheduled", "in_progress", "ready", "completed", "no_show"];

type Shared = Arc<State>;

/// The API routes a canary compares (the probe's endpoints), measured from the start.
const ROUTES: [&str; 3] = [
    "/api/admin/appointments/board",
    "/api/admin/dashboard/stats",
    "/api/appointments/{id}",
];

pub fn router(state: Shared) -> axum::Router {
    let metrics = state.metrics.clone();
    axum::Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{*path}", get(asset))
        .route("/api/health", get(health))
        .route("/api/admin/appointments/board", get(board))
        .route("/api/admin/dashboard/stats", get(stats))
        .route("/api/appointments/{id}", get(drawer))
        .route("/api/admin/appointments/{id}/move", patch(move_card))
        .route(
            "/api/admin/feature-flags",
            get(list_flags).put(set_flag).post(set_flag),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            super::metrics::measure,
        ))
        .route("/metrics", get(move || async move { metrics.render() }))
        .with_state(state)
}

fn down() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "target is down (injected fault)",
    )
        .into_response()
}

async fn index(Extract(s): Extract<Shared>) -> Response {
    serve_file(&s, "index.html")
}

async fn asset(Extract(s): Extract<Shared>, Path(path): Path<String>) -> Response {
    serve_file(&s, &format!("assets/{path}"))
}

fn serve_file(s: &State, path: &str) -> Response {
    if s.inject().down {
        return down();
    }
    match s.config.store.read_current(path) {
        Ok(Some(bytes)) => {
            let mut resp = Response::new(Body::from(bytes));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(site::content_type(path)),
            );
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(site::cache_control(path)),
            );
            resp
        }
        Ok(None) => (StatusCode::NOT_FOUND, "no such file in the current release").into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("store error: {e:#}"),
        )
            .into_response(),
    }
}

/// Runs an API handler as the variant the flag picks, applying injected V2 faults, and labels
/// the answer with `X-Served-By` so monitors can split canary from baseline.
async fn api(s: &State, body: impl FnOnce(Variant) -> Response) -> Response {
    if s.inject().down {
        return down();
    }
    let percent = s.router.percent(s.config.flags.as_ref(), &s.config.flag);
    let (variant, ticket) = s.router.pick(percent);
    let mut resp = if variant == Variant::V2 {
        let inject = s.inject();
        if !inject.v2_latency.is_zero() {
            tokio::time::sleep(inject.v2_latency).await;
        }
        if routing::hits(ticket, inject.v2_error_rate) {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "injected V2 failure"})),
            )
                .into_response()
        } else {
            body(variant)
        }
    } else {
        body(variant)
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert("x-served-by", HeaderValue::from_static(variant.header()));
    resp
}

async fn health(Extract(s): Extract<Shared>) -> Response {
    let release = s.config.store.current().ok().flatten();
    api(&s, |_| {
        Json(json!({"status": "ok", "release": release})).into_response()
    })
    .await
}

async fn board(Extract(s): Extract<Shared>) -> Response {
    let cards: Vec<_> = {
        let a = s.appointments.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = a
            .iter()
            .map(|(id, (status, version))| json!({"id": id, "status": status, "version": version}))
            .collect();
        v.sort_by_key(|c| c["id"].as_u64());
        v
    };
    api(&s, move |variant| {
        let columns: Vec<_> = STATUSES
            .iter()
            .map(|st| json!({"status": st, "cards": cards.iter().filter(|c| c["status"] == *st).collect::<Vec<_>>()}))
            .collect();
        Json(json!({"version": variant.header(), "columns": columns})).into_response()
    })
    .await
}

async fn stats(Extract(s): Extract<Shared>) -> Response {
    let counts = {
        let a = s.appointments.lock().unwrap_or_else(|e| e.into_inner());
        STATUSES
            .iter()
            .map(|st| (st.to_string(), a.values().filter(|(x, _)| x == st).count()))
            .collect::<HashMap<_, _>>()
    };
    api(&s, move |_| {
        Json(json!({"totals": counts, "today": 12})).into_response()
    })
    .await
}

async fn drawer(Extract(s): Extract<Shared>, Path(id): Path<u32>) -> Response {
    let found = s
        .appointments
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .cloned();
    api(&s, move |_| match found {
        Some((status, version)) => Json(json!({
            "id": id, "status": status, "version": version,
            "customer": "Sample Customer", "vehicle": "2019 Honda Civic", "services": ["Oil change"]
        }))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such appointment"})),
        )
            .into_response(),
    })
    .await
}

#[derive(Deserialize)]
struct Move {
    status: String,
    version: u64,
}

/// Optimistic concurrency: a move naming a stale version is answered 409 with the current one.
async fn move_card(
    Extract(s): Extract<Shared>,
    Path(id): Path<u32>,
    Json(m): Json<Move>,
) -> Response {
    let outcome = {
        let mut a = s.appointments.lock().unwrap_or_else(|e| e.into_inner());
        match a.get_mut(&id) {
            None => Err((
                StatusCode::NOT_FOUND,
                json!({"error": "no such appointment"}),
            )),
            Some(_) if !STATUSES.contains(&m.status.as_str()) => {
                Err((StatusCode::BAD_REQUEST, json!({"error": "unknown status"})))
            }
            Some((_, version)) if *version != m.version => Err((
                StatusCode::CONFLICT,
                json!({"error": "version conflict", "current_version": *version}),
            )),
            Some((status, version)) => {
                *status = m.status.clone();
                *version += 1;
                Ok(json!({"id": id, "status": status, "version": *version}))
            }
        }
    };
    api(&s, move |_| match outcome {
        Ok(body) => Json(body).into_response(),
        Err((code, body)) => (code, Json(body)).into_response(),
    })
    .await
}

async fn list_flags(Extract(s): Extract<Shared>) -> Response {
    match s.config.flags.read_all() {
        Ok(flags) => Json(flags).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")).into_response(),
    }
}

#[derive(Deserialize)]
struct SetFlag {
    name: String,
    percent: u8,
}

async fn set_flag(Extract(s): Extract<Shared>, Json(f): Json<SetFlag>) -> Response {
    match s.config.flags.write(&f.name, f.percent) {
        Ok(()) => Json(json!({"name": f.name, "percent": f.percent})).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e:#}")).into_response(),
    }
}
