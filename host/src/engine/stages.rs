//! What each kind of stage does. Built-in actions are host code; plugin stages hand the
//! plugin its inputs and turn its answer into the stage's verdict.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::journal::Event;
use super::playbook::{Ctx, StageResult};
use super::record::{self, CheckRecord, VerdictRecord, WindowRecord};
use super::runbook::{Action, Stage};
use crate::capabilities::log::LogLine;
use crate::probe::{Endpoint, Probe};
use crate::runtime::types::{StepContext, Target};
use crate::runtime::{Called, Plugin, Role};
use crate::simulator::site;

/// The role a stage's plugin must play.
pub fn check_role(stage: &Stage, plugin: &Plugin) -> Result<(), String> {
    let is_uat_init = stage
        .action
        .as_ref()
        .is_some_and(|a| *a.get_ref() == Action::UatInit);
    if is_uat_init && plugin.role() != Role::UatChecklist {
        return Err(format!(
            "`uat-init` needs a uat-checklist plugin, `{}` is a {}",
            plugin.info.name,
            plugin.role()
        ));
    }
    if matches!(
        plugin.role(),
        Role::SmokeSuite | Role::CanaryPolicy | Role::UatChecklist
    ) && stage.environment.is_none()
    {
        return Err(format!(
            "a {} stage needs an `environment` to run against",
            plugin.role()
        ));
    }
    Ok(())
}

/// Validates a stage's config against the plugin's JSON Schema.
pub fn check_config(schema: &serde_json::Value, config: &serde_json::Value) -> Result<(), String> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| format!("the plugin's schema is invalid: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(config)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

pub async fn run_stage(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    if let Some(action) = &stage.action {
        return match action.get_ref() {
            Action::Preflight => preflight(ctx).await,
            Action::Build => build(ctx, stage).map(|(_, files)| {
                StageResult::from_checks(
                    vec![pass("build", format!("{files} file(s) built"))],
                    "build done",
                )
            }),
            Action::Deploy => deploy(ctx, stage).await,
            Action::Flag => set_flag(ctx, stage).await,
            Action::Monitor => monitor(ctx, stage).await,
            Action::Rollback => {
                let reason = stage.reason.as_deref().unwrap_or("runbook rollback stage");
                rollback(ctx, stage, "emergency", reason).await?;
                let mut checks = vec![pass("rollback", "primary flag at 0")];
                if stage.full {
                    checks.push(restore_previous_release(ctx, stage).await?);
                }
                let what = if stage.full {
                    "full rollback"
                } else {
                    "emergency rollback"
                };
                Ok(StageResult::from_checks(checks, what))
            }
            Action::RollbackDrill => rollback_drill(ctx, stage).await,
            Action::VerifyRollback => verify_rollback(ctx, stage).await,
            Action::UatInit => super::uat::init(ctx, stage).await,
            Action::Wait => {
                let duration = stage.duration.unwrap_or(Duration::from_secs(1));
                let bar = super::progress::timed(duration, stage.title());
                let started = Instant::now();
                while started.elapsed() < duration {
                    let step = (duration - started.elapsed()).min(Duration::from_millis(100));
                    tokio::time::sleep(step).await;
                    bar.set_position(started.elapsed().as_millis() as u64);
                }
                bar.finish_and_clear();
                Ok(StageResult::from_checks(
                    vec![pass("wait", "waited")],
                    "waited",
                ))
            }
            Action::Report => {
                crate::report::write_all(&ctx.run_dir).context("writing the reports")?;
                Ok(StageResult::from_checks(
                    vec![pass(
                        "reports",
                        format!("written to {}", ctx.run_dir.display()),
                    )],
                    "reports written",
                ))
            }
        };
    }
    let plugin_name = ctx.plugin(stage)?.info.name.clone();
    let mut result = match ctx.plugin(stage)?.role() {
        Role::SmokeSuite => {
            let target = target(ctx, stage).await?;
            let (plugin, sandbox, config) = (
                ctx.plugin(stage)?,
                ctx.sandbox(stage)?,
                Ctx::config_json(stage),
            );
            let called = plugin.run_smoke_suite(&sandbox, &target, &config).await?;
            report_result(ctx, stage, called)?
        }
        Role::SloGate => {
            let samples = crate::runtime::types::Samples {
                windows: stage
                    .environment
                    .as_ref()
                    .and_then(|e| ctx.windows.get(e.get_ref()))
                    .map(|ws| {
                        ws.iter()
                            .rev()
                            .take(240)
                            .rev()
                            .map(WindowRecord::metric_window)
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            let (plugin, sandbox, config) = (
                ctx.plugin(stage)?,
                ctx.sandbox(stage)?,
                Ctx::config_json(stage),
            );
            let called = plugin.evaluate_slo(&sandbox, &samples, &config).await?;
            report_result(ctx, stage, called)?
        }
        Role::UatChecklist => super::uat::evaluate(ctx, stage).await?,
        Role::CanaryPolicy => super::canary::run(ctx, stage).await?,
        Role::Step => {
            let context = StepContext {
                run_id: ctx.run_id.clone(),
                stage: stage.name.get_ref().clone(),
                target: target(ctx, stage).await.unwrap_or(Target {
                    environment: String::new(),
                    base_url: String::new(),
                    api_base_url: String::new(),
                    release_id: None,
                }),
                params: Vec::new(),
            };
            let (plugin, sandbox, config) = (
                ctx.plugin(stage)?,
                ctx.sandbox(stage)?,
                Ctx::config_json(stage),
            );
            let called = plugin.run_step(&sandbox, &context, &config).await?;
            report_result(ctx, stage, called)?
        }
    };
    result.plugin = Some(plugin_name);
    Ok(result)
}

pub fn pass(name: &str, detail: impl Into<String>) -> CheckRecord {
    CheckRecord {
        name: name.into(),
        verdict: VerdictRecord::Pass,
        observed: None,
        threshold: None,
        unit: String::new(),
        detail: detail.into(),
    }
}

pub fn fail(name: &str, reason: impl Into<String>) -> CheckRecord {
    CheckRecord {
        name: name.into(),
        verdict: VerdictRecord::Fail(reason.into()),
        observed: None,
        threshold: None,
        unit: String::new(),
        detail: String::new(),
    }
}

pub async fn target(ctx: &Ctx, stage: &Stage) -> anyhow::Result<Target> {
    let env = ctx.env(stage)?;
    Ok(Target {
        environment: env.name.clone(),
        base_url: env.url.clone(),
        api_base_url: env.api_url.clone(),
        release_id: env.store.current().await?,
    })
}

pub fn journal_logs(ctx: &mut Ctx, stage: &Stage, logs: &[LogLine]) -> anyhow::Result<()> {
    for l in logs {
        ctx.journal.append(Event::Log {
            stage: stage.name.get_ref().clone(),
            source: format!("{:?}", l.source).to_lowercase(),
            level: l.level.to_string(),
            message: l.message.clone(),
        })?;
    }
    Ok(())
}

fn report_result(
    ctx: &mut Ctx,
    stage: &Stage,
    called: Called<crate::runtime::types::StepReport>,
) -> anyhow::Result<StageResult> {
    journal_logs(ctx, stage, &called.logs)?;
    let r = called.value;
    Ok(StageResult {
        verdict: (&r.verdict).into(),
        checks: record::checks(&r.checks),
        summary: r.summary,
        plugin: None,
        rolled_back: false,
    })
}

async fn preflight(ctx: &mut Ctx) -> anyhow::Result<StageResult> {
    let mut checks = Vec::new();
    let problems = super::playbook::validate(&ctx.runbook, &ctx.catalog);
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
        let url = format!("{}/api/health", env.api_url);
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

/// Builds the site for a deploy stage; returns the build folder and its file count.
fn build(ctx: &Ctx, stage: &Stage) -> anyhow::Result<(std::path::PathBuf, usize)> {
    let dir = ctx.run_dir.join("build").join(stage.name.get_ref());
    let _ = std::fs::remove_dir_all(&dir);
    match (&stage.site, &stage.command) {
        (Some(site_name), _) => {
            anyhow::ensure!(
                site_name == "statusboard-v2",
                "unknown built-in site `{site_name}` (known: statusboard-v2)"
            );
            // Labelled with the release, so every deploy's site differs and can be told apart.
            site::write_statusboard_build(
                &dir,
                &format!("{}-{}", ctx.run_id, stage.name.get_ref()),
                true,
            )?;
        }
        (None, Some(command)) => {
            let output = stage
                .output
                .clone()
                .context("a `command` build needs `output`, the folder it writes")?;
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .status()
                .with_context(|| format!("running `{command}`"))?;
            anyhow::ensure!(
                status.success(),
                "build command `{command}` failed ({status})"
            );
            copy_dir(&output, &dir)?;
        }
        (None, None) => anyhow::bail!(
            "stage `{}` needs `site` or `command` to build",
            stage.name.get_ref()
        ),
    }
    let count = walk(&dir)?;
    Ok((dir, count))
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from)
        .with_context(|| format!("reading build output {}", from.display()))?
    {
        let p = entry?.path();
        let dest = to.join(p.file_name().unwrap_or_default());
        if p.is_dir() {
            copy_dir(&p, &dest)?;
        } else {
            std::fs::create_dir_all(to)?;
            std::fs::copy(&p, &dest)?;
        }
    }
    Ok(())
}

fn walk(dir: &std::path::Path) -> std::io::Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        n += if p.is_dir() { walk(&p)? } else { 1 };
    }
    Ok(n)
}

async fn deploy(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let env_name = ctx.env(stage)?.name.clone();
    let stage_name = stage.name.get_ref().clone();
    // The release id is fixed by the first attempt, so a resumed deploy publishes the same one.
    // One release per deploy stage: a runbook may deploy the same environment twice.
    let release = format!("{}-{stage_name}", ctx.run_id);
    let (dir, files) = build(ctx, stage)?;
    let store = ctx.env(stage)?.store.clone();
    let previous = store.current().await?;
    let s2 = store.clone();
    let (r2, d2) = (release.clone(), dir.clone());
    ctx.effect(
        &stage_name,
        &format!("publish:{release}"),
        &format!(
            "publish release {release} ({files} files) to {}",
            store.describe()
        ),
        || async move {
            let bar = super::progress::uploads(files, &format!("uploading {r2}"));
            let on_uploaded = |f: &crate::providers::store::ManifestFile| {
                bar.inc(1);
                bar.set_message(format!("uploading {} ({} B)", f.path, f.size));
            };
            let published = s2.publish(&r2, &d2, &on_uploaded).await;
            bar.finish_and_clear();
            published.map(|_| ())
        },
    )
    .await?;
    let s3 = store.clone();
    let r3 = release.clone();
    ctx.effect(
        &stage_name,
        &format!("current:{release}"),
        &format!(
            "make {release} current (was {})",
            previous.as_deref().unwrap_or("none")
        ),
        || async move { s3.set_current(&r3).await },
    )
    .await?;
    let cdn_check = invalidate_cdn(ctx, stage, &release).await?;
    let url = format!("{}/index.html", ctx.env(stage)?.url);
    let page = ctx
        .probe_client
        .get(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let served = match page {
        Ok(r) if r.status().is_success() => {
            let body = r.text().await.unwrap_or_default();
            if body.contains(&release) {
                pass("site-serves-release", format!("{url} serves {release}"))
            } else {
                fail(
                    "site-serves-release",
                    format!("{url} does not serve {release}"),
                )
            }
        }
        Ok(r) => fail("site-serves-release", format!("GET {url} → {}", r.status())),
        Err(e) => CheckRecord {
            verdict: VerdictRecord::NoData(format!("GET {url}: {e}")),
            ..pass("site-serves-release", "")
        },
    };
    let current_ok = store.current().await?.as_deref() == Some(release.as_str());
    let checks = vec![
        CheckRecord {
            observed: Some(files as f64),
            unit: "files".into(),
            ..pass("published", format!("{files} file(s) in release {release}"))
        },
        if current_ok {
            pass("current-pointer", format!("current → {release}"))
        } else {
            fail("current-pointer", "current does not name the new release")
        },
        served,
    ];
    let checks = checks.into_iter().chain(cdn_check).collect();
    Ok(StageResult::from_checks(
        checks,
        format!("deployed {release} to {env_name}"),
    ))
}

async fn set_flag(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let percent = stage.percent.unwrap_or(0);
    let flags = ctx.env(stage)?.flags.clone();
    let flag = stage
        .flag
        .clone()
        .unwrap_or_else(|| ctx.runbook.launch.flag.clone());
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

/// After a rollback, checked by the host alone (so it works when plugins are broken): the
/// primary flag is at 0, the API is healthy, the site answers, and the board is served by the
/// legacy code path.
async fn verify_rollback(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
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

/// The endpoints probes measure: the board, the drawer and the stats.
pub fn probe_endpoints(api_url: &str) -> Vec<Endpoint> {
    [
        ("board", "/api/admin/appointments/board"),
        ("drawer", "/api/appointments/1"),
        ("stats", "/api/admin/dashboard/stats"),
    ]
    .into_iter()
    .map(|(name, path)| Endpoint {
        name: name.into(),
        method: reqwest::Method::GET,
        url: format!("{api_url}{path}"),
    })
    .collect()
}

async fn monitor(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let env = ctx.env(stage)?;
    let (env_name, flags) = (env.name.clone(), env.flags.clone());
    let duration = stage.duration.unwrap_or(Duration::from_secs(10));
    let interval = stage
        .interval
        .unwrap_or(Duration::from_secs(1))
        .min(duration);
    let mut probe = Probe::start(
        ctx.probe_client.clone(),
        probe_endpoints(&env.api_url),
        ctx.runbook.defaults.probe_rate,
        interval,
        Duration::from_secs(5),
    );
    let started = Instant::now();
    let (mut requests, mut errors, mut windows) = (0, 0, 0);
    let bar = super::progress::timed(duration, stage.title());
    while started.elapsed() + interval / 2 < duration {
        bar.set_position(started.elapsed().as_millis() as u64);
        let Some(w) = probe.next_window().await else {
            break;
        };
        let percent = flags.get(&ctx.runbook.launch.flag).await.unwrap_or(0);
        let record = WindowRecord::from_window(&w, percent, false);
        let (r, e, _) = record.totals(None);
        requests += r;
        errors += e;
        windows += 1;
        ctx.record_window(stage.name.get_ref(), &env_name, record)?;
    }
    bar.finish_and_clear();
    let check = if requests == 0 {
        CheckRecord {
            verdict: VerdictRecord::NoData("no probe answered".into()),
            ..pass("monitoring", "")
        }
    } else {
        CheckRecord {
            observed: Some(requests as f64),
            unit: "requests".into(),
            ..pass(
                "monitoring",
                format!(
                    "{windows} window(s), {requests} requests, {errors} errors measured on {env_name}"
                ),
            )
        }
    };
    Ok(StageResult::from_checks(
        vec![check],
        format!("monitored {env_name} for {} ms", duration.as_millis()),
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
    let targets: Vec<(
        String,
        std::sync::Arc<dyn crate::providers::flags::FlagStore>,
    )> = match ctx.env(stage) {
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
    }
    Ok(())
}

/// Full rollback: the release before the current one becomes current again.
async fn restore_previous_release(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<CheckRecord> {
    let store = ctx.env(stage)?.store.clone();
    let current = store.current().await?;
    let releases = store.releases().await?;
    let Some(previous) = current
        .as_ref()
        .and_then(|c| releases.iter().position(|r| r == c))
        .and_then(|i| i.checked_sub(1))
        .map(|i| releases[i].clone())
    else {
        return Ok(fail(
            "previous-release",
            format!(
                "no release before {} to roll back to",
                current.as_deref().unwrap_or("(none)")
            ),
        ));
    };
    let (s2, p2) = (store.clone(), previous.clone());
    ctx.effect(
        stage.name.get_ref(),
        &format!("restore:{previous}"),
        &format!(
            "make {previous} current again (was {})",
            current.as_deref().unwrap_or("none")
        ),
        || async move { s2.set_current(&p2).await },
    )
    .await?;
    if let Some(check) = invalidate_cdn(ctx, stage, &format!("rollback-to-{previous}")).await? {
        anyhow::ensure!(check.verdict.is_pass(), "{}", check.verdict.reason());
    }
    Ok(pass("previous-release", format!("current → {previous}")))
}

/// After the live release changed: invalidate `/*` on the environment's CDN and wait for it.
async fn invalidate_cdn(
    ctx: &mut Ctx,
    stage: &Stage,
    reference: &str,
) -> anyhow::Result<Option<CheckRecord>> {
    let Some(cdn) = ctx.env(stage)?.cdn.clone() else {
        return Ok(None);
    };
    let c2 = cdn.clone();
    let reference = format!("{}-{reference}", ctx.run_id);
    let r2 = reference.clone();
    ctx.effect(
        stage.name.get_ref(),
        &format!("invalidate:{reference}"),
        &format!("invalidate /* on {}", cdn.describe()),
        || async move {
            c2.invalidate(&["/*"], &r2, Duration::from_secs(300))
                .await
                .map(|_| ())
        },
    )
    .await?;
    Ok(Some(pass(
        "cdn-invalidated",
        format!("/* invalidated on {} and completed", cdn.describe()),
    )))
}

/// Proves the rollback path works: flag to 0, check that legacy answers, restore the flag.
async fn rollback_drill(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
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

/// Journals a plugin call's failure as a check, so the stage fails with the plugin's name.
pub fn call_failed(e: &crate::runtime::CallFailure) -> CheckRecord {
    fail("plugin-call", e.to_string())
}
