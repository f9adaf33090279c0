//! Releases: build a site, publish it to the environment's store and make it current, invalidate
//! the CDN in front of it, and the full rollback that makes the previous release current again.

use std::time::Duration;

use anyhow::Context as _;

use super::{fail, pass};
use crate::context::{Ctx, StageResult};
use crate::operator::Measure;
use crate::record::{CheckRecord, VerdictRecord};
use crate::runbook::Stage;
use launch_targets::simulator::site;

/// The last lines a failed build printed (stderr, or stdout when stderr is empty).
fn last_lines(stderr: &[u8], stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(if stderr.is_empty() { stdout } else { stderr });
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(20)..];
    if tail.is_empty() {
        String::new()
    } else {
        format!(":\n{}", tail.join("\n"))
    }
}

/// Builds the site for a deploy stage; returns the build folder and its file count.
pub fn build(ctx: &Ctx, stage: &Stage) -> anyhow::Result<(std::path::PathBuf, usize)> {
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
            // Captured, not inherited: what a build prints reaches the operator only through
            // the journal and the console, which mask secrets.
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .stdin(std::process::Stdio::null())
                .output()
                .with_context(|| format!("running `{command}`"))?;
            anyhow::ensure!(
                out.status.success(),
                "build command `{command}` failed ({}){}",
                out.status,
                last_lines(&out.stderr, &out.stdout)
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

pub async fn deploy(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
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
    let operator = ctx.operator.clone();
    ctx.effect(
        &stage_name,
        &format!("publish:{release}"),
        &format!(
            "publish release {release} ({files} files) to {}",
            store.describe()
        ),
        || async move {
            let what = format!("uploading {r2}");
            let bar = operator.progress(Measure::Uploads {
                files: files as u64,
                what: &what,
            });
            let on_uploaded = |f: &launch_targets::store::ManifestFile| {
                bar.inc(1);
                bar.set_message(format!("uploading {} ({} B)", f.path, f.size));
            };
            let published = s2.publish(&r2, &d2, &on_uploaded).await;
            drop(bar);
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

/// Full rollback: the release before the current one becomes current again.
pub async fn restore_previous_release(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<CheckRecord> {
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
