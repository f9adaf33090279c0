//! `launch-host verify [RUN] [--state URL] [--plugins DIR] [--trust KEY.pub]`: is a run's
//! history the one its runner wrote — chain, runner signatures, reports, recorded calls, the
//! plugins it ran — and, with `--state`, does its S3 copy say the same as the local one?

use std::path::{Path, PathBuf};

use clap::Args;

use super::output::say;
use super::status::RunRef;
use super::{Exit, usage};
use launch_engine::verify::copies::Agreement;
use launch_engine::verify::{self, Trusted};
use launch_runtime::Runtime;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub run: RunRef,
    /// Also check that the plugins here are the ones the run started with (by the name each
    /// plugin gives itself)
    #[arg(long, value_name = "DIR")]
    pub plugins: Option<PathBuf>,
    /// Trust signatures by this runner's OpenSSH public key too (repeatable) [always trusted:
    /// this machine's runner key]
    #[arg(long, value_name = "KEY.pub")]
    pub trust: Vec<PathBuf>,
}

pub async fn verify(runtime: &Runtime, args: VerifyArgs) -> anyhow::Result<Exit> {
    let mut trusted = Trusted::here();
    for key in &args.trust {
        if let Err(e) = trusted.add_file(key) {
            return usage(e.context("--trust"));
        }
    }
    let plugins = match &args.plugins {
        Some(dir) => match runtime.discover(dir).await {
            Ok(catalog) => {
                let mut found: Vec<(String, String)> = catalog
                    .plugins
                    .iter()
                    .map(|p| (p.info.name.clone(), p.digest.clone()))
                    .collect();
                // A file that no longer loads gives no name of its own: it stands for the
                // plugin its file is named after, and is not the one the run started with.
                for r in &catalog.rejected {
                    let (Some(stem), Ok(d)) = (
                        r.path().file_stem(),
                        launch_runtime::digest::of_file(r.path(), None),
                    ) else {
                        continue;
                    };
                    let name = stem.to_string_lossy().into_owned();
                    if !found.iter().any(|(n, _)| *n == name) {
                        found.push((name, d.sha256));
                    }
                }
                Some(found)
            }
            Err(e) => return usage(e.into()),
        },
        None => None,
    };
    let Some(url) = args.run.state.clone() else {
        let dir = match args.run.resolve().await {
            Ok(dir) => dir,
            Err(e) => return usage(e),
        };
        return Ok(exit(show(
            &dir,
            verify::run(&dir, plugins.as_deref(), &trusted),
        )));
    };
    // The S3 copy goes into a scratch folder, never over the local one: both are evidence.
    let id = match &args.run.run {
        Some(id) => id.clone(),
        None => match launch_engine::mirror::list(&url).await {
            Ok(mut ids) => match ids.pop() {
                Some(id) => id,
                None => return usage(anyhow::anyhow!("no runs in {url}")),
            },
            Err(e) => return usage(e),
        },
    };
    let scratch = Scratch::new()?;
    let remote_dir = scratch.0.join(&id);
    if let Err(e) = launch_engine::mirror::fetch_to(&url, &id, &remote_dir).await {
        return usage(e);
    }
    let remote_ok = show(
        &remote_dir,
        verify::run(&remote_dir, plugins.as_deref(), &trusted),
    );
    let local_dir = args
        .run
        .runs_dir()
        .join(remote_dir.file_name().unwrap_or_default());
    if !launch_engine::workspace::is_run(&local_dir) {
        say!("(no local copy in {} to compare with)", local_dir.display());
        return Ok(exit(remote_ok));
    }
    let local_ok = show(
        &local_dir,
        verify::run(&local_dir, plugins.as_deref(), &trusted),
    );
    let agree = match verify::copies::compare(&local_dir, &remote_dir) {
        Ok(Agreement::Same) => {
            say!("copies: the local and the S3 journal are the same");
            true
        }
        Ok(Agreement::Continues { shorter, longer }) => {
            say!(
                "copies: one journal continues the other ({shorter} and {longer} lines): a copy not updated since"
            );
            true
        }
        Ok(Agreement::Differ(line)) => {
            super::exit::error(&format!(
                "{}:{line}: the local copy and the S3 copy of the run differ from line {line}; neither was changed by verify",
                local_dir.join("journal.jsonl").display()
            ));
            false
        }
        Err(e) => {
            super::exit::error(&e);
            false
        }
    };
    Ok(exit(remote_ok && local_ok && agree))
}

fn exit(ok: bool) -> Exit {
    if ok { Exit::Success } else { Exit::GateFailed }
}

/// Prints a run's verdict; whether it held.
fn show(dir: &Path, verdict: Result<verify::Verified, verify::Broken>) -> bool {
    match verdict {
        Ok(v) => {
            say!(
                "{}: intact — {} records, chain head {}",
                dir.display(),
                v.records,
                &v.head[..16.min(v.head.len())]
            );
            for line in &v.checked {
                say!("  {line}");
            }
            true
        }
        Err(broken) => {
            super::exit::error(&broken);
            false
        }
    }
}

/// A folder of its own under the system's temporary folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "launch-host-verify-{}-{nanos:08x}",
            std::process::id()
        ));
        std::fs::create_dir(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
