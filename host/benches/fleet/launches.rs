//! The fleet benchmark's third part: 50 short launches on 50 environments, every runner killed
//! mid-launch, 4 agents finishing them — all complete, each taken once, each environment's lock
//! released — with the S3 requests per launch counted on the wire by a proxy in front of moto.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::test_support::fleet::*;
use super::test_support::{self, Moto, Server, launch_host_with, s3_object};
use super::{AGENTS, LAUNCHES, row};

pub async fn measure(
    moto: &Moto,
    s3: &aws_sdk_s3::Client,
    target: &Server,
    work: &Path,
) -> anyhow::Result<()> {
    let env = moto.env();
    let proxy = Counter::start(&moto.endpoint).await?;
    let mut through = env.clone();
    through.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    through.push(("AWS_ENDPOINT_URL", proxy.url.clone()));
    let agents: Vec<Agent> = (0..AGENTS)
        .map(|i| agent(&through, &work.join(format!("pool-{i}"))))
        .collect();
    let started = Instant::now();
    let launches = launches(&through, work, s3, &target.url("")).await?;
    let pool: Vec<&dyn Log> = agents.iter().map(|a| a as &dyn Log).collect();
    for (_, id) in &launches {
        until(
            "a launch's end",
            &pool,
            Duration::from_secs(300),
            || async move { ended(s3, id).await },
        )
        .await;
    }
    let all = started.elapsed();
    let mut taken = vec![0usize; AGENTS];
    for (i, id) in &launches {
        let journal = mirrored(s3, id).await;
        anyhow::ensure!(
            test_support::last_word(&journal)["outcome"] == "passed",
            "launch {i} did not pass"
        );
        let takers: Vec<usize> = (0..AGENTS)
            .filter(|a| agents[*a].said().contains(&format!("took run {id}")))
            .collect();
        anyhow::ensure!(
            takers.len() == 1,
            "launch {i} taken by agents {takers:?}; its journal says {:#?}; they said:\n{}",
            journal
                .iter()
                .filter(|r| r["event"] == "taken-over" || r["event"] == "run-finished")
                .collect::<Vec<_>>(),
            agents
                .iter()
                .flat_map(|a| a
                    .said()
                    .lines()
                    .filter(|l| l.contains(id.as_str()))
                    .map(String::from)
                    .collect::<Vec<_>>())
                .collect::<Vec<_>>()
                .join("\n")
        );
        taken[takers[0]] += 1;
        let flags = s3_object(s3, "site", &format!("env-{i}/flags.json")).await;
        let flags: serde_json::Value = serde_json::from_slice(&flags.unwrap_or_default())?;
        anyhow::ensure!(
            flags[format!("SVC_{i}")] == 100,
            "launch {i}'s flag: {flags}"
        );
        let lock = s3_object(s3, "site", &format!("env-{i}/launch/lock")).await;
        anyhow::ensure!(lock.is_none(), "env-{i}'s lock was left held");
    }
    for a in agents {
        stop(a);
    }
    row(
        &format!("{LAUNCHES} launches, all runners killed, {AGENTS} agents finish them"),
        format!("{:.1} s", all.as_secs_f64()),
        "—",
        "all pass",
    );
    println!(
        "{:<58} {:>16}",
        "  runs taken per agent",
        format!("{taken:?}")
    );
    let counts = proxy.counts();
    let total: usize = counts.values().sum();
    row(
        "S3 requests per launch (runner + agent, on the wire)",
        format!("{:.0}", total as f64 / LAUNCHES as f64),
        "—",
        "—",
    );
    for (what, n) in counts {
        println!("  {what:<56} {:>16.1}", n as f64 / LAUNCHES as f64);
    }
    Ok(())
}

/// Starts 50 launches at once — each its own service, flag and environment (an S3 store, so
/// an S3 lock) — and kills each runner with SIGKILL once its flag is at 50 %. Their lease TTL
/// is 10 s: 50 runners starting at once on two cores keep moto (one Python process) too busy
/// to renew a 3 s lease within its 2 s margin, and a runner that cannot renew stops.
async fn launches(
    env: &[(&str, String)],
    dir: &Path,
    s3: &aws_sdk_s3::Client,
    site: &str,
) -> anyhow::Result<Vec<(usize, String)>> {
    let mut runners = Vec::new();
    for i in 0..LAUNCHES {
        let book = dir.join(format!("svc-{i}.toml"));
        std::fs::write(
            &book,
            format!(
                r#"[launch]
name = "svc-{i}"
flag = "SVC_{i}"
state = "s3://site/state"
lease-ttl = "10s"

[environments.env-{i}]
url = "{site}"
api-url = "{site}"
store = "s3://site/env-{i}"
flags = "s3://site/env-{i}/flags.json"

[[stage]]
name = "half"
action = "flag"
environment = "env-{i}"
percent = 50

[[stage]]
name = "bake"
action = "wait"
environment = "env-{i}"
duration = "20s"

[[stage]]
name = "full"
action = "flag"
environment = "env-{i}"
percent = 100
"#
            ),
        )?;
        let runs = dir.join(format!("svc-{i}-runs"));
        let log = runs.with_extension("log");
        let words = std::fs::File::create(&log)?;
        let child = launch_host_with(env)
            .args(["run", "--yes", "--runbook"])
            .arg(&book)
            .arg("--runs-dir")
            .arg(&runs)
            .stdout(words.try_clone()?)
            .stderr(words)
            .spawn()?;
        runners.push((i, runs, Runner { child, log }));
    }
    // Each runner is killed as soon as its flag reads 50 %, all watched at once.
    let mut ids = Vec::new();
    let mut pending = runners;
    let started = Instant::now();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (i, runs, mut runner) in pending {
            let flags = s3_object(s3, "site", &format!("env-{i}/flags.json")).await;
            let at = flags
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|f| f[format!("SVC_{i}")].as_u64());
            match at {
                Some(50) => {
                    runner.child.kill()?;
                    runner.child.wait()?;
                    ids.push((i, run_id(&runs).expect("a run folder")));
                }
                Some(100) => anyhow::bail!("launch {i} ended before it was killed"),
                _ => {
                    anyhow::ensure!(
                        started.elapsed() < Duration::from_secs(120),
                        "launch {i}'s flag is not at 50 % after 120 s:\n{}",
                        said(&[&runner])
                    );
                    still.push((i, runs, runner));
                }
            }
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(ids)
}

/// A proxy in front of moto that counts the S3 requests of every process, by what they touch.
struct Counter {
    url: String,
    counts: Arc<Mutex<BTreeMap<String, usize>>>,
}

#[derive(Clone)]
struct Upstream {
    to: String,
    client: reqwest::Client,
    counts: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Counter {
    async fn start(moto: &str) -> anyhow::Result<Counter> {
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let upstream = Upstream {
            to: moto.to_string(),
            client: reqwest::Client::new(),
            counts: counts.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(upstream);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Counter { url, counts })
    }

    fn counts(&self) -> BTreeMap<String, usize> {
        self.counts.lock().unwrap().clone()
    }
}

/// What a request touches, in the fleet's words.
fn touches(method: &str, path: &str, query: &str) -> String {
    let what = if query.contains("list-type") {
        "list"
    } else if path.contains("/launch/leases/") {
        "lease"
    } else if path.contains("/launch/index/") {
        "summary"
    } else if path.ends_with("/journal.jsonl") {
        "journal"
    } else if path.contains("/launch/runs/") {
        "run files"
    } else if path.ends_with("/launch/lock") {
        "environment lock"
    } else if path.ends_with("flags.json") {
        "flags"
    } else {
        "other"
    };
    format!("{method} {what}")
}

async fn forward(State(up): State<Upstream>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 256 << 20).await else {
        return (axum::http::StatusCode::BAD_REQUEST, "body").into_response();
    };
    let (path, query) = (parts.uri.path(), parts.uri.query().unwrap_or(""));
    *up.counts
        .lock()
        .unwrap()
        .entry(touches(parts.method.as_str(), path, query))
        .or_default() += 1;
    let url = match query {
        "" => format!("{}{path}", up.to),
        q => format!("{}{path}?{q}", up.to),
    };
    let mut headers = parts.headers.clone();
    headers.remove(axum::http::header::HOST);
    let answer = up
        .client
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    match answer {
        Ok(r) => {
            let status = r.status();
            let mut headers = r.headers().clone();
            headers.remove(axum::http::header::TRANSFER_ENCODING);
            let bytes = r.bytes().await.unwrap_or_default();
            (status, headers, bytes).into_response()
        }
        Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
