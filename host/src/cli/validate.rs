//! `launch-host validate`: load every plugin, prove each can be instantiated and called, and
//! show what loading costs cold (compiling) and warm (from the artifact cache).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::output::{self, table};
use super::output::{esay, say};
use super::usage;
use super::workspace::runbook_text;
use super::{Exit, Output};
use launch_runtime::{LoadSource, Runtime, Sandbox};

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Directory holding the plugin `.wasm` files
    #[arg(long, value_name = "DIR", default_value = "plugins")]
    plugins: PathBuf,
    /// A runbook to check against the plugins (`embedded` for the built-in default); without
    /// it the plugins are checked alone
    #[arg(long, value_name = "FILE")]
    runbook: Option<PathBuf>,
    /// Compile every plugin for the first load even when the cache has it, to time a cold load
    #[arg(long)]
    cold: bool,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(serde::Serialize)]
struct Row {
    name: String,
    role: String,
    file: PathBuf,
    first_load: LoadSource,
    first_load_ms: f64,
    warm_load_ms: f64,
    call_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub async fn run(runtime: &Runtime, args: ValidateArgs) -> anyhow::Result<Exit> {
    // A runbook of built-in actions alone runs without plugins: no folder is no problem.
    let plugin_free = args.runbook.as_deref().is_some_and(|p| {
        let text = match p.as_os_str() == "embedded" {
            true => runbook_text(None),
            false => runbook_text(Some(p)),
        };
        text.ok()
            .and_then(|(t, s)| launch_engine::Runbook::parse(&t, &s).ok())
            .is_some_and(|r| !r.names_plugins())
    });
    let files = match launch_runtime::discovery::wasm_files(&args.plugins) {
        Ok(f) => f,
        Err(_) if plugin_free => Vec::new(),
        Err(e) => {
            super::exit::error(&e);
            return Ok(Exit::Usage);
        }
    };
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    // What may go wrong but is allowed: printed, and the exit status stays 0.
    let mut warnings: Vec<String> = Vec::new();
    for file in &files {
        let first = if args.cold {
            runtime.load_uncached(file).await
        } else {
            runtime.load(file).await
        };
        let plugin = match first {
            Ok(p) => p,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        let warm = match runtime.load(file).await {
            Ok(p) => p,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        let call = match warm.describe(&Sandbox::default()).await {
            Ok(c) => c.elapsed,
            Err(e) => {
                problems.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        rows.push(Row {
            name: plugin.info.name.clone(),
            role: plugin.info.role.to_string(),
            file: file.clone(),
            first_load: plugin.load.source,
            first_load_ms: ms(plugin.load.elapsed),
            warm_load_ms: ms(warm.load.elapsed),
            call_ms: ms(call),
        });
    }
    // Names are unique in a folder: `run` looks plugins up by name.
    let mut catalog = match runtime.discover(&args.plugins).await {
        Ok(catalog) => Some(catalog),
        Err(_) if plugin_free => Some(launch_runtime::Catalog::empty(&args.plugins)),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    // The runbook: parsed, checked against the plugins, and its gates probed with the worst
    // inputs so a gate that can never fail is caught here, not after it passed in production.
    let source = match &args.runbook {
        None => None,
        Some(p) => {
            let (text, source) = if p.as_os_str() == "embedded" {
                runbook_text(None)?
            } else {
                match runbook_text(Some(p)) {
                    Ok(t) => t,
                    Err(e) => return usage(e),
                }
            };
            match launch_engine::Runbook::parse(&text, &source) {
                Err(e) => problems.push(e.to_string()),
                Ok(runbook) => {
                    if let Some(catalog) = &mut catalog {
                        // oci:// plugins, as a run fetches them: by the lock's digest.
                        problems.extend(
                            launch_engine::registry::resolve(
                                runtime,
                                &runbook,
                                catalog,
                                launch_engine::registry::Resolve::Locked,
                            )
                            .await
                            .problems,
                        );
                    }
                    if let Some(catalog) = &catalog {
                        problems.extend(launch_engine::consistency::validate(&runbook, catalog));
                        problems.extend(
                            launch_engine::lint::gates_that_cannot_fail(&runbook, catalog).await,
                        );
                        warnings
                            .extend(launch_engine::lint::starved_canaries(&runbook, catalog).await);
                    }
                }
            }
            Some(source)
        }
    };
    let checked = match &source {
        Some(s) => format!(" and {s}"),
        None => " (no runbook checked: pass --runbook FILE, or --runbook embedded)".into(),
    };
    match args.output {
        Output::Json => output::json(
            &serde_json::json!({ "plugins": rows, "runbook": source, "problems": problems, "warnings": warnings }),
        )?,
        Output::Table => {
            let mut t = table(&["PLUGIN", "ROLE", "FIRST LOAD", "WARM LOAD", "DESCRIBE CALL"]);
            for r in &rows {
                let source = match r.first_load {
                    LoadSource::Compiled => "compiled",
                    LoadSource::Cached => "cached",
                };
                t.add_row(vec![
                    r.name.clone(),
                    r.role.clone(),
                    format!(
                        "{} ({source})",
                        output::millis(Duration::from_secs_f64(r.first_load_ms / 1000.0))
                    ),
                    output::millis(Duration::from_secs_f64(r.warm_load_ms / 1000.0)),
                    output::millis(Duration::from_secs_f64(r.call_ms / 1000.0)),
                ]);
            }
            if !rows.is_empty() {
                say!("{t}");
            }
            for p in &problems {
                super::exit::error(p);
            }
            for w in &warnings {
                esay!("warning: {}", launch_engine::redact::text(w));
            }
            let verdict = if problems.is_empty() && (!rows.is_empty() || plugin_free) {
                "ok"
            } else {
                "FAILED"
            };
            let warned = match warnings.len() {
                0 => String::new(),
                n => format!(", {n} warning(s)"),
            };
            say!(
                "{verdict}: {} plugin(s) valid, {} problem(s){warned} in {}{checked}",
                rows.len(),
                problems.len(),
                args.plugins.display()
            );
        }
    }
    // A runbook whose plugins all come from a registry needs none in the folder.
    let referenced = catalog.as_ref().is_some_and(|c| !c.referenced.is_empty());
    if rows.is_empty() && problems.is_empty() && !plugin_free && !referenced {
        esay!(
            "error: no plugins in {} (build them with `just build-plugins`)",
            args.plugins.display()
        );
        return Ok(Exit::Usage);
    }
    Ok(if problems.is_empty() {
        Exit::Success
    } else {
        Exit::Usage
    })
}
