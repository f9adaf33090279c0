//! Host-only checks: the pre-flight checklist before a launch (runbook and plugins consistent,
//! targets reachable, stores readable, metrics sources answering, flags off) and the validation after a rollback. No plugin
//! is consulted, so they work when plugins are broken.

use std::time::Duration;

use super::{fail, pass};
use crate::context::{Ctx, StageResult};
use crate::record::{CheckRecord, VerdictRecord};
use crate::runbook::Stage;

pub async fn preflight(ctx: &mut Ctx) -> anyhow::Result<StageResult> {
    let mut checks = Vec::new();
    let problems = crate::consistency::validate(&ctx.runbook, &ctx.catalog);
    checks.push(if problems.is_empty() {
        pass(
            "runbook-and-plugins",
            format!(
                "{} stage(s) and {} plugin(s) consistent",
                ctx.runbook.stages.len(),
                ctx.catalog.plugins.len()
            ),
        )
    } else {
        fail("runbook-and-plugins", problems.join("; "))
    });
    for env in ctx.envs.values() {
        let url = env.health_url();
        let check = match ctx
            .probe_client
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => pass(
                &format!("{}-reachable", env.name),
                format!("GET {url} → {}", r.status()),
            ),
            Ok(r) => fail(
                &format!("{}-reachable", env.name),
                format!("GET {url} → {}", r.status()),
            ),
            Err(e) => CheckRecord {
                verdict: VerdictRecord::NoData(format!("GET {url}: {e}")),
                ..pass(&format!("{}-reachable", env.name), "")
            },
        };
        checks.push(check);
        // The guide's "aws s3 ls s3://$S3_BUCKET": the store answers with these credentials.
        checks.push(match env.store.current().await {
            Ok(current) => pass(
                &format!("{}-store", env.name),
                format!(
                    "{} readable; live release {}",
                    env.store.describe(),
                    current.as_deref().unwrap_or("(none)")
                ),
            ),
            Err(e) => fail(&format!("{}-store", env.name), format!("{e:#}")),
        });
        // The metrics system the canary will be judged on answers.
        if let Some(p) = &env.sources.prometheus {
            let name = format!("{}-prometheus", env.name);
            checks.push(match p.reachable().await {
                Ok(()) => pass(&name, format!("{} answers", p.url())),
                Err(e) => fail(&name, e.to_string()),
            });
        }
        let flag = env.flags.get(&ctx.runbook.launch.flag).await?;
        // Before the launch turns V2 on, every component flag must be off too.
        if flag == 0 {
            let mut on = Vec::new();
            for f in &ctx.runbook.launch.component_flags {
                let v = env.flags.get(f).await?;
                if v > 0 {
                    on.push(format!("{f} = {v}%"));
                }
            }
            let name = format!("{}-component-flags-off", env.name);
            checks.push(if on.is_empty() {
                pass(
                    &name,
                    format!(
                        "{} component flag(s) off",
                        ctx.runbook.launch.component_flags.len()
                    ),
                )
            } else {
                fail(
                    &name,
                    format!(
                        "{} is off but {} (run `launch-host canary init` to turn them off)",
                        ctx.runbook.launch.flag,
                        on.join(", ")
                    ),
                )
            });
        }
        checks.push(CheckRecord {
            observed: Some(f64::from(flag)),
            threshold: Some(0.0),
            unit: "%".into(),
            ..pass(
                &format!("{}-flag-readable", env.name),
                format!(
                    "{} = {flag}% in {}",
                    ctx.runbook.launch.flag,
                    env.flags.describe()
                ),
            )
        });
    }
    Ok(StageResult::from_checks(checks, "pre-flight checklist"))
}

/// After a rollback, checked by the host alone (so it works when plugins are broken): the
/// primary flag is at 0, the API is healthy, the site answers, and the board is served by the
/// legacy code path.
pub async fn verify_rollback(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let env = ctx.env(stage)?;
    let (flags, api, url) = (env.flags.clone(), env.api_url.clone(), env.url.clone());
    let flag = ctx.runbook.launch.flag.clone();
    let mut checks = Vec::new();
    let percent = flags.get(&flag).await?;
    checks.push(CheckRecord {
        observed: Some(f64::from(percent)),
        threshold: Some(0.0),
        unit: "%".into(),
        ..if percent == 0 {
            pass("flag-off", format!("{flag} = 0% in {}", flags.describe()))
        } else {
            fail("flag-off", format!("{flag} is still at {percent}%"))
        }
    });
    let client = ctx.probe_client.clone();
    let get = |u: String| {
        let client = client.clone();
        async move { client.get(&u).timeout(Duration::from_secs(5)).send().await }
    };
    for (name, target) in [
        ("api-health", format!("{api}/api/health")),
        ("site", format!("{url}/")),
    ] {
        checks.push(match get(target.clone()).await {
            Ok(r) if r.status().is_success() => {
                pass(name, format!("GET {target} → {}", r.status()))
            }
            Ok(r) => fail(name, format!("GET {target} → {}", r.status())),
            Err(e) => fail(name, format!("GET {target}: {e}")),
        });
    }
    let board = format!("{api}/api/admin/appointments/board");
    let mut v2 = 0;
    let mut answered = 0;
    for _ in 0..10 {
        if let Ok(r) = get(board.clone()).await {
            answered += 1;
            if r.headers().get("x-served-by").is_some_and(|v| v == "v2") {
                v2 += 1;
            }
        }
    }
    checks.push(CheckRecord {
        observed: Some(f64::from(v2)),
        threshold: Some(0.0),
        unit: "requests".into(),
        ..match (answered, v2) {
            (0, _) => fail("legacy-serving", format!("{board} did not answer")),
            (n, 0) => pass(
                "legacy-serving",
                format!("{n} of {n} board requests served by legacy"),
            ),
            (n, v) => fail(
                "legacy-serving",
                format!("{v} of {n} board requests still reached V2"),
            ),
        }
    });
    Ok(StageResult::from_checks(checks, "post-rollback validation"))
}
