//! `launch-host replay`: the plugin calls a run recorded, re-run offline against the recorded
//! plugins (they must answer the same) or a new one, side by side, with the first divergence.

use std::path::PathBuf;

use clap::Args;

use super::output::{esay, say};
use super::output::{json, table};
use super::status::RunRef;
use super::{Exit, Output};
use launch_engine::lab::replay::{self, RecordedCall, Replayed};
use launch_runtime::{Plugin, Runtime};

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    run: RunRef,
    /// Replay only this stage's calls
    #[arg(long, value_name = "STAGE")]
    stage: Option<String>,
    /// Replay with this plugin (a .wasm file, or a name in --plugins) instead of the recorded
    /// one, for the calls of its role
    #[arg(long, value_name = "FILE|NAME")]
    plugin: Option<String>,
    /// Where the recorded plugins are
    #[arg(
        long,
        value_name = "DIR",
        default_value = "plugins",
        env = "LAUNCH_HOST_PLUGINS"
    )]
    plugins: PathBuf,
    /// JSON merged over each replayed call's recorded config, e.g. '{"max-latency-ms": 3000}'
    #[arg(long, value_name = "JSON")]
    config: Option<String>,
    /// Also save every recorded call as a fixture (JSON) in DIR/fixtures, for `plugin test`
    #[arg(long, value_name = "DIR")]
    save_fixtures: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub async fn run(runtime: &Runtime, args: ReplayArgs) -> anyhow::Result<Exit> {
    let config = match args
        .config
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
    {
        None => None,
        Some(Ok(serde_json::Value::Object(map))) => Some(map),
        Some(_) => {
            return super::usage(anyhow::anyhow!(
                "--config takes a JSON object, e.g. '{{\"max-latency-ms\": 3000}}'"
            ));
        }
    };
    let dir = match args.run.resolve().await {
        Ok(d) => d,
        Err(e) => return super::usage(e),
    };
    let mut calls = replay::recorded(&dir)?;
    if let Some(stage) = &args.stage {
        calls.retain(|c| c.stage == *stage);
    }
    if calls.is_empty() {
        return super::usage(anyhow::anyhow!(
            "{} recorded no plugin call{}",
            dir.display(),
            args.stage
                .as_deref()
                .map_or(String::new(), |s| format!(" in stage `{s}`"))
        ));
    }
    if let Some(out) = &args.save_fixtures {
        let dir = replay::save_fixtures(&calls, out)?;
        esay!(
            "saved {} fixture(s) in {}, each expecting the answer recorded; test any policy of the same role on them with `launch-host plugin test PLUGIN.wasm --fixtures {}`",
            calls.len(),
            dir.display(),
            out.display()
        );
    }
    let catalog = match runtime.discover(&args.plugins).await {
        Ok(c) => c,
        Err(e) => return super::usage(e.into()),
    };
    // A plugin from a file is loaded here; one named is looked up in the catalog.
    let loaded: Option<Plugin> = match &args.plugin {
        Some(p) if p.ends_with(".wasm") || std::path::Path::new(p).is_file() => {
            match runtime.load(std::path::Path::new(p)).await {
                Ok(plugin) => Some(plugin),
                Err(e) => return super::usage(e.into()),
            }
        }
        _ => None,
    };
    let new: Option<&Plugin> = match (&loaded, &args.plugin) {
        (Some(p), _) => Some(p),
        (None, Some(name)) => match catalog.get(name) {
            Some(p) => Some(p),
            None => {
                return super::usage(anyhow::anyhow!(
                    "no plugin named `{name}` in {}",
                    args.plugins.display()
                ));
            }
        },
        (None, None) => None,
    };
    // A new plugin answers for the calls of its role; the recorded plugins for the rest.
    let choose = |call: &RecordedCall| -> Option<&Plugin> {
        let recorded = catalog.get(&call.plugin);
        match (new, recorded) {
            (Some(n), Some(r)) if n.role() == r.role() => Some(n),
            (Some(n), None) => Some(n),
            (_, r) => r,
        }
    };
    // The config a replayed call gets is checked like a runbook's: against the schema of the
    // plugin that answers it.
    if let Some(overrides) = &config {
        let mut seen = std::collections::BTreeSet::new();
        for call in &calls {
            let Some(plugin) = choose(call) else { continue };
            let Some(schema) = plugin.info.config_schema.as_ref() else {
                continue;
            };
            let mut merged = call.fixture.config.clone();
            merged.extend(overrides.clone());
            if let Err(e) =
                launch_engine::consistency::check_config(schema, &serde_json::Value::Object(merged))
                && seen.insert(plugin.info.name.clone())
            {
                return super::usage(anyhow::anyhow!(
                    "--config: `{}`'s schema refuses the config of stage `{}` with it: {e}",
                    plugin.info.name,
                    call.stage
                ));
            }
        }
    }
    let rows = replay::replay(&calls, choose, config.as_ref()).await;
    let different = rows.iter().filter(|r| !r.same).count();
    match args.output {
        Output::Json => json(&rows)?,
        Output::Table => print(&rows, different),
    }
    Ok(if different == 0 {
        Exit::Success
    } else {
        Exit::GateFailed
    })
}

fn at(r: &Replayed) -> String {
    r.percent.map_or_else(String::new, |p| format!("{p}%"))
}

fn print(rows: &[Replayed], different: usize) {
    let mut t = table(&["#", "STAGE", "AT", "RECORDED", "NOW", ""]);
    for (i, r) in rows.iter().enumerate() {
        let mark = match (&r.skipped, r.same) {
            (Some(why), _) => format!("not replayed: {why}"),
            (None, true) => "same".to_string(),
            (None, false) => "DIFFERENT".to_string(),
        };
        t.add_row(vec![
            (i + 1).to_string(),
            r.stage.clone(),
            at(r),
            format!("{} ({})", r.recorded, r.recorded_plugin),
            r.plugin
                .as_ref()
                .map_or_else(String::new, |p| format!("{} ({p})", r.answer)),
            mark,
        ]);
    }
    say!("{t}");
    let side = |answer: &str, reason: &str| {
        if reason.is_empty() {
            answer.to_string()
        } else {
            format!("{answer}: {reason}")
        }
    };
    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| !r.same) {
        let place = if r.percent.is_some() {
            format!(" at {}", at(r))
        } else {
            String::new()
        };
        say!(
            "first divergence: #{} `{}`{place} — recorded: {} · now: {}",
            i + 1,
            r.stage,
            side(&r.recorded, &r.recorded_reason),
            side(&r.answer, &r.reason)
        );
    }
    let skipped = rows.iter().filter(|r| r.skipped.is_some()).count();
    let replayed = rows.len() - skipped;
    say!(
        "replayed {replayed} call(s): {} same, {different} different{}",
        replayed - different,
        if skipped > 0 {
            format!("; {skipped} not replayed (each row says why)")
        } else {
            String::new()
        }
    );
}
