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

use std::path::Path;
use std::time::{Duration, Instant};

#[path = "fleet/launches.rs"]
mod launches;
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
    launches::measure(&moto, &s3, &target, work.path()).await?;
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
