//! `launch-host plugins push|pull`: plugins to and from an OCI registry.

use std::path::PathBuf;

use clap::Args;

use super::output::{self, esay, say};
use super::{Exit, Output};
use launch_registry::PluginRef;
use launch_runtime::Runtime;

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The component file (its signature FILE.sig, when beside it, goes too)
    file: PathBuf,
    /// Where: oci://HOST[:PORT]/NAMESPACE/NAME:TAG
    reference: String,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// What: oci://HOST[:PORT]/NAMESPACE/NAME:TAG or …@sha256:HEX
    reference: String,
    /// Copy it into this plugins folder as NAME.wasm, its signature beside it
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

fn reference(text: &str) -> Result<PluginRef, Exit> {
    PluginRef::parse(text).map_err(|e| {
        super::exit::error(&e);
        Exit::Usage
    })
}

pub async fn push(runtime: &Runtime, args: PushArgs) -> anyhow::Result<Exit> {
    let r = match reference(&args.reference) {
        Ok(r) => r,
        Err(exit) => return Ok(exit),
    };
    if !args.file.is_file() {
        return super::usage(anyhow::anyhow!(
            "{} is not a file; push a built component (`just build-plugins` writes plugins/*.wasm)",
            args.file.display()
        ));
    }
    let published = match launch_engine::registry::push(runtime, &args.file, &r).await {
        Ok(p) => p,
        Err(e) => {
            super::exit::error(&e);
            return Ok(Exit::GateFailed);
        }
    };
    let pushed = &published.pushed;
    match args.output {
        Output::Json => output::json(&serde_json::json!({
            "reference": r.to_string(),
            "name": published.name,
            "version": published.version,
            "manifest-digest": pushed.manifest_digest,
            "layer-digest": pushed.layer_digest,
            "signature-digest": pushed.signature_digest,
            "signed-by": published.signed_by,
        }))?,
        Output::Table => {
            say!(
                "pushed {} {} to {r}\n  manifest {}\n  pin it:  {}",
                published.name,
                published.version,
                pushed.manifest_digest,
                r.at(&pushed.manifest_digest)
            );
            match (&pushed.signature_digest, &published.signed_by) {
                (Some(sig), Some(by)) => say!("  signed by {by}: referrer {sig}"),
                _ => say!(
                    "  unsigned: a runbook whose [trust] requires signatures will refuse it (`launch-host plugins sign {} --key KEY`, then push again)",
                    args.file.display()
                ),
            }
        }
    }
    Ok(Exit::Success)
}

pub async fn pull(runtime: &Runtime, args: PullArgs) -> anyhow::Result<Exit> {
    let r = match reference(&args.reference) {
        Ok(r) => r,
        Err(exit) => return Ok(exit),
    };
    let fetched = match launch_engine::registry::pull(runtime, &r, args.plugins.as_deref()).await {
        Ok(f) => f,
        Err(e) => {
            super::exit::error(&e);
            return Ok(Exit::GateFailed);
        }
    };
    let signed = launch_engine::trust::sig_path(&fetched.cached.wasm).exists();
    let annotations = &fetched.cached.entry.annotations;
    let title = annotations
        .get(launch_registry::package::TITLE)
        .cloned()
        .unwrap_or_default();
    let version = annotations
        .get(launch_registry::package::VERSION)
        .cloned()
        .unwrap_or_default();
    match args.output {
        Output::Json => output::json(&serde_json::json!({
            "reference": r.to_string(),
            "pinned": fetched.pinned.to_string(),
            "pulled": fetched.pulled_now,
            "cached": fetched.cached.wasm,
            "installed": fetched.installed,
            "signed": signed,
            "annotations": annotations,
        }))?,
        Output::Table => {
            say!(
                "{} {title} {version}: {}",
                if fetched.pulled_now {
                    "pulled"
                } else {
                    "cached"
                },
                fetched.pinned
            );
            say!(
                "  {}",
                if signed {
                    "signed (a signature of this build travels with it)"
                } else {
                    "unsigned"
                }
            );
            match &fetched.installed {
                Some(to) => say!("  installed as {}", to.display()),
                None => say!("  kept in {}", fetched.cached.wasm.display()),
            }
            if r.digest().is_none() {
                esay!(
                    "note: a tag can move; a runbook that names it gets this build only once `launch-host plugins lock` records {}",
                    fetched.pinned.digest().unwrap_or_default()
                );
            }
        }
    }
    Ok(Exit::Success)
}
