//! Flags: set one to a percentage (read back), the emergency rollback (the primary flag to 0,
//! host code only), and the rollback drill that proves the way back works.

use std::time::{Duration, Instant};

use super::{fail, pass};
use crate::context::{Ctx, StageResult};
use crate::operator::Notice;
use crate::record::CheckRecord;
use crate::runbook::Stage;

pub async fn set_flag(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let percent = stage.percent.unwrap_or(0);
    let flags = ctx.env(stage)?.flags.clone();
    let flag = stage
        .flag
        .clone()
        .unwrap_or_else(|| ctx.runbook.launch.flag.clone());
    // The value before the stage is the safe one, should the host fail mid-move.
    ctx.flag_guard = Some(crate::context::FlagGuard {
        environment: ctx.env(stage)?.name.clone(),
        flags: flags.clone(),
        flag: flag.clone(),
        safe: flags.get(&flag).await?,
    });
    let (f2, fl2) = (flag.clone(), flags.clone());
    ctx.effect(
        stage.name.get_ref(),
        &format!("flag:{percent}"),
        &format!("set {flag} to {percent}% via {}", flags.describe()),
        || async move { fl2.set(&f2, percent).await },
    )
    .await?;
    let now = flags.get(&flag).await?;
    let check = CheckRecord {
        observed: Some(f64::from(now)),
        threshold: Some(f64::from(percent)),
        unit: "%".into(),
        ..if now == percent {
            pass(
                "flag",
                format!("{flag} reads back {now}% from {}", flags.describe()),
            )
        } else {
            fail("flag", format!("{flag} reads back {now}%, not {percent}%"))
        }
    };
    Ok(StageResult::from_checks(
        vec![check],
        format!("{flag} set to {percent}%"),
    ))
}

/// Emergency rollback: the primary flag to 0 at once. Host code only: no plugin is consulted,
/// so a broken or hanging plugin cannot block it.
pub async fn rollback(
    ctx: &mut Ctx,
    stage: &Stage,
    mode: &str,
    reason: &str,
) -> anyhow::Result<()> {
    // A stage bound to an environment rolls that one back; any other rolls back every
    // environment of the runbook, so `on-fail = "rollback"` always means users leave V2.
    let targets: Vec<(String, std::sync::Arc<dyn launch_targets::flags::FlagStore>)> =
        match ctx.env(stage) {
            Ok(env) => vec![(env.name.clone(), env.flags.clone())],
            Err(_) => ctx
                .envs
                .values()
                .map(|e| (e.name.clone(), e.flags.clone()))
                .collect(),
        };
    let flag = ctx.runbook.launch.flag.clone();
    for (env, flags) in targets {
        let f2 = flag.clone();
        ctx.effect(
            stage.name.get_ref(),
            &format!("rollback:{mode}:{env}"),
            &format!(
                "{mode} rollback of {env}: {flag} → 0% via {} ({reason})",
                flags.describe()
            ),
            || async move { flags.set(&f2, 0).await },
        )
        .await?;
        ctx.operator.tell(Notice::RolledBack {
            environment: &env,
            flag: &flag,
        });
    }
    Ok(())
}

/// Proves the rollback path works: flag to 0, check that legacy answers, restore the flag.
pub async fn rollback_drill(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let env = ctx.env(stage)?;
    let (flags, api) = (env.flags.clone(), env.api_url.clone());
    let flag = ctx.runbook.launch.flag.clone();
    let before = flags.get(&flag).await?;
    let name = stage.name.get_ref().clone();
    let (f1, fl1) = (flags.clone(), flag.clone());
    ctx.effect(
        &name,
        "drill:off",
        &format!("drill: {flag} {before}% → 0%"),
        || async move { f1.set(&fl1, 0).await },
    )
    .await?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(50)).await; // the target re-reads flags every 20 ms
    let mut v2 = 0;
    for _ in 0..20 {
        let r = ctx
            .probe_client
            .get(format!("{api}/api/admin/appointments/board"))
            .send()
            .await?;
        if r.headers().get("x-served-by").is_some_and(|v| v == "v2") {
            v2 += 1;
        }
    }
    let reaction = started.elapsed();
    let (f2, fl2) = (flags.clone(), flag.clone());
    ctx.effect(
        &name,
        "drill:restore",
        &format!("drill: restore {flag} to {before}%"),
        || async move { f2.set(&fl2, before).await },
    )
    .await?;
    let checks = vec![
        CheckRecord {
            observed: Some(f64::from(v2)),
            threshold: Some(0.0),
            unit: "requests".into(),
            ..if v2 == 0 {
                pass(
                    "legacy-after-rollback",
                    "20 of 20 requests served by legacy with the flag at 0",
                )
            } else {
                fail(
                    "legacy-after-rollback",
                    format!("{v2} of 20 requests still reached V2 after the flag went to 0"),
                )
            }
        },
        CheckRecord {
            observed: Some(reaction.as_secs_f64() * 1000.0),
            unit: "ms".into(),
            ..pass("drill-duration", "flag off, verified and restored")
        },
        if flags.get(&flag).await? == before {
            pass("flag-restored", format!("{flag} back at {before}%"))
        } else {
            fail("flag-restored", "the flag was not restored")
        },
    ];
    Ok(StageResult::from_checks(checks, "rollback drill"))
}
