//! `launch-host verify [RUN] [--state URL] [--plugins DIR]`: is a run's history as it was
//! written — the journal's hash chain, the report against the journal, the plugins it ran?

use std::path::PathBuf;

use clap::Args;

use super::status::RunRef;
use super::{Exit, usage};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub run: RunRef,
    /// Also check that the plugins here (NAME.wasm) are the ones the run started with
    #[arg(long, value_name = "DIR")]
    pub plugins: Option<PathBuf>,
}

pub async fn verify(args: VerifyArgs) -> anyhow::Result<Exit> {
    let dir = match args.run.resolve().await {
        Ok(dir) => dir,
        Err(e) => return usage(e),
    };
    let plugins = match &args.plugins {
        Some(p) => match launch_engine::verify::plugins_in(p) {
            Ok(found) => Some(found),
            Err(e) => return usage(e),
        },
        None => None,
    };
    match launch_engine::verify::run(&dir, plugins.as_deref()) {
        Ok(v) => {
            println!(
                "{}: intact — {} records, chain head {}",
                dir.display(),
                v.records,
                &v.head[..16.min(v.head.len())]
            );
            for line in &v.checked {
                println!("  {line}");
            }
            Ok(Exit::Success)
        }
        Err(broken) => {
            super::exit::error(&broken);
            Ok(Exit::GateFailed)
        }
    }
}
