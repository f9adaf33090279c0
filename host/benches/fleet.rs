//! `just bench`: a launch outliving its machine, and the fleet view, against moto on
//! 127.0.0.1 — side by side with the goals of issue 12/16 and what `8fddcc8` measured.
//!
//! 1. 20 × `kill -9` of a runner mid-canary with two agents standing by (TTL 3 s, poll 250 ms):
//!    time from the kill to the flag at 0, half the runners on this host (found dead by their
//!    process), half on "another host" (a UTS namespace: found gone by their lease's silence
//!    alone); each trial checks one taker, no effect twice, a journal that verifies.
//! 2. 1 000 mirrored runs: `serve --state`'s front page and `status --state`, cold — the first
//!    reader ever (no shared snapshot yet), then an empty workspace on "another machine" (the
//!    snapshot the first wrote) — and warm.
//! 3. 50 short launches on 50 environments, every runner killed mid-launch, 4 agents finishing
//!    them: all complete, each taken once, each environment's lock released; S3 requests per
//!    launch counted on the wire by a proxy in front of moto.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};

#[path = "../../tests/support/mod.rs"]
mod test_support;

use test_support::fleet::*;
use test_support::{launch_host_with, s3_object};

const TRIALS: u64 = 20;
const RUNS: usize = 1000;
const LAUNCHES: usize = 50;
const AGENTS: usize = 4;

fn row(measure: &str, ours: String, reference: &str, goal: &str) {
    println!("{measure:<58} {ours:>16} {reference:>18} {goal:>14}");
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let (moto, s3, target) = fleet().await;
    let env = moto.env();
    let work = tempfile::tempdir()?;
    println!("launch-host fleet benchmark (moto on 127.0.0.1)\n");
    println!(
        "{:<58} {:>16} {:>18} {:>14}",
        "measure", "launch-host", "reference", "goal"
    );

    // `LAUNCH_HOST_BENCH_ONLY=launches` measures the 50 launches alone.
    if std::env::var("LAUNCH_HOST_BENCH_ONLY").as_deref() != Ok("launches") {
        // 1. Kills with two agents standing by.
        let book = runbook(work.path(), &target, 1500);
        let agents = [
            agent(&env, &work.path().join("agent-1")),
            agent(&env, &work.path().join("agent-2")),
        ];
        let watching = [&agents[0], &agents[1]];
        let (mut here, mut away) = (Vec::new(), Vec::new());
        for trial in 0..TRIALS {
            let elsewhere = trial % 2 == 1;
            let took = kill_trial(&env, &s3, &book, work.path(), trial, elsewhere, &watching).await;
            match elsewhere {
                true => away.push(took),
                false => here.push(took),
            }
        }
        for agent in agents {
            stop(agent);
        }
        for (times, whose) in [(&mut here, "this host"), (&mut away, "another host")] {
            times.sort();
            row(
                &format!(
                    "kill -9 → flag at 0, runner on {whose} ({} trials)",
                    times.len()
                ),
                format!(
                    "{:.2} / {:.2} s",
                    times[times.len() / 2].as_secs_f64(),
                    times[times.len() - 1].as_secs_f64()
                ),
                "until a person",
                "max ≤ 5 s",
            );
        }
        println!(
            "{:<58} {:>16}",
            "  (median / max; each: 1 taker, 0 effects twice, verifies)", ""
        );

        // 2. The fleet view over 1 000 runs.
        let seeded = Instant::now();
        let sources = mirrored_runs(&s3).await?;
        clone_runs(&s3, &sources, RUNS - sources.len()).await?;
        println!(
            "\n(1 000 mirrored runs in moto: {} real, the rest copies of them; seeded in {:.0} s)",
            sources.len(),
            seeded.elapsed().as_secs_f64()
        );
        // Cold twice: the first reader ever (it reads every summary, then writes the shared
        // snapshot), and a reader on another machine (an empty workspace; the snapshot exists).
        let passes = [
            ("cold, first reader", "reader-1"),
            ("cold, another machine", "reader-2"),
            ("warm", "reader-2"),
        ];
        s3.delete_object()
            .bucket("site")
            .key("state/launch/fleet.json")
            .send()
            .await?;
        for (pass, ws) in passes {
            let t = Instant::now();
            let out = launch_host_with(&env)
                .args(["status", "--state", "s3://site/state", "--output", "json"])
                .arg("--workspace")
                .arg(work.path().join(ws))
                .output()?;
            let took = t.elapsed();
            let rows: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            anyhow::ensure!(
                rows.as_array().map(Vec::len) == Some(RUNS),
                "status listed {rows}"
            );
            row(
                &format!("`status --state` over {RUNS} runs, {pass}"),
                format!("{:.2} s", took.as_secs_f64()),
                "3.4–4.0 s (8fddcc8)",
                "—",
            );
        }
        s3.delete_object()
            .bucket("site")
            .key("state/launch/fleet.json")
            .send()
            .await?;
        let mut served = Vec::new();
        for (pass, reference, goal, ws) in [
            ("cold, first reader", "103.6 s", "< 5 s", "server-1"),
            ("cold, another machine", "103.6 s", "< 5 s", "server-2"),
            ("warm", "18.5–19.0 s", "< 1 s", "server-2"),
            ("warm", "18.5–19.0 s", "< 1 s", "server-2"),
        ] {
            let workspace = work.path().join(ws);
            let (mut server, url) = serve(&env, &workspace)?;
            let t = Instant::now();
            let page = reqwest::get(&url).await?.text().await?;
            let took = t.elapsed();
            server.kill()?;
            let _ = server.wait();
            anyhow::ensure!(
                page.matches("data-run=").count() == RUNS,
                "the page lists every run"
            );
            row(
                &format!("`serve --state` front page, {RUNS} runs, {pass}"),
                format!("{:.2} s", took.as_secs_f64()),
                &format!("{reference} (8fddcc8)"),
                goal,
            );
            served.push(workspace);
        }
        let fetched: usize = served
            .iter()
            .map(|w| std::fs::read_dir(w.join("runs")).map_or(0, |d| d.count()))
            .sum();
        println!(
            "{:<58} {:>16}",
            "  run folders fetched by the front pages", fetched
        );
    }

    // 3. 50 launches finished by 4 agents, S3 requests counted on the wire.
    let proxy = Counter::start(&moto.endpoint).await?;
    let mut through = env.clone();
    through.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    through.push(("AWS_ENDPOINT_URL", proxy.url.clone()));
    let agents: Vec<Agent> = (0..AGENTS)
        .map(|i| agent(&through, &work.path().join(format!("pool-{i}"))))
        .collect();
    let started = Instant::now();
    let launches = launches(&through, work.path(), &s3, &target.url("")).await?;
    let pool: Vec<&dyn Log> = agents.iter().map(|a| a as &dyn Log).collect();
    for (_, id) in &launches {
        let s3 = &s3;
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
        let journal = mirrored(&s3, id).await;
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
        let flags = s3_object(&s3, "site", &format!("env-{i}/flags.json")).await;
        let flags: serde_json::Value = serde_json::from_slice(&flags.unwrap_or_default())?;
        anyhow::ensure!(
            flags[format!("SVC_{i}")] == 100,
            "launch {i}'s flag: {flags}"
        );
        let lock = s3_object(&s3, "site", &format!("env-{i}/launch/lock")).await;
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

/// The ids of the runs mirrored so far (the kills' runs).
async fn mirrored_runs(s3: &aws_sdk_s3::Client) -> anyhow::Result<Vec<String>> {
    let listed = s3
        .list_objects_v2()
        .bucket("site")
        .prefix("state/launch/index/")
        .send()
        .await?;
    Ok(listed
        .contents()
        .iter()
        .filter_map(|o| {
            o.key()?
                .strip_prefix("state/launch/index/")?
                .strip_suffix(".json")
        })
        .map(String::from)
        .collect())
}

/// `n` more runs: every file of a real one copied under a new id, its summary too.
async fn clone_runs(s3: &aws_sdk_s3::Client, sources: &[String], n: usize) -> anyhow::Result<()> {
    use futures::StreamExt as _;
    let jobs = (0..n).map(|i| {
        let source = &sources[i % sources.len()];
        let id = format!("20261101T{:06}000Z-{:04x}", i % 240000, i);
        async move {
            let prefix = format!("state/launch/runs/{source}/");
            let listed = s3
                .list_objects_v2()
                .bucket("site")
                .prefix(&prefix)
                .send()
                .await?;
            for key in listed.contents().iter().filter_map(|o| o.key()) {
                let to = key.replacen(source.as_str(), &id, 1);
                s3.copy_object()
                    .bucket("site")
                    .key(to)
                    .copy_source(format!("site/{key}"))
                    .send()
                    .await?;
            }
            let summary = s3_object(s3, "site", &format!("state/launch/index/{source}.json"))
                .await
                .unwrap_or_default();
            let summary = String::from_utf8(summary)?.replace(source.as_str(), &id);
            s3.put_object()
                .bucket("site")
                .key(format!("state/launch/index/{id}.json"))
                .body(summary.into_bytes().into())
                .send()
                .await?;
            anyhow::Ok(())
        }
    });
    let done: Vec<anyhow::Result<()>> = futures::stream::iter(jobs)
        .buffer_unordered(16)
        .collect()
        .await;
    done.into_iter().collect()
}

/// `launch-host serve --state` on a free port, once it answers.
fn serve(
    env: &[(&str, String)],
    workspace: &Path,
) -> anyhow::Result<(std::process::Child, String)> {
    let port = test_support::free_port();
    let child = launch_host_with(env)
        .args(["serve", "--state", "s3://site/state", "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--workspace")
        .arg(workspace)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}/live.js");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((child, url.replace("/live.js", "/")))
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
