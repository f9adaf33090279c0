//! `launch-host plugin test`: a plugin's fixtures, offline — each one call with the fixture's
//! inputs, compared with what it expects; PASS/FAIL per fixture with an expected-vs-got diff,
//! the call's time and, on failure, the plugin's log. Exit 1 on any failure.

use std::path::{Path, PathBuf};

use clap::Args;

use super::output::say;
use super::{Exit, Output, output};
use launch_engine::lab::{self, Fixture, FixtureResult};
use launch_runtime::{Plugin, Runtime};

#[derive(Args, Debug)]
pub struct TestArgs {
    /// A plugin (.wasm), or a folder of plugins
    path: PathBuf,
    /// Where fixtures are: every .toml and .json in a folder named `fixtures` below DIR
    #[arg(long, value_name = "DIR", default_value = ".")]
    fixtures: PathBuf,
    /// Also write the results as JUnit XML
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

async fn plugins(runtime: &Runtime, path: &Path) -> anyhow::Result<Vec<Plugin>> {
    if path.is_dir() {
        let catalog = runtime.discover(path).await?;
        if let Some(e) = catalog.rejected.first() {
            anyhow::bail!("{e}");
        }
        Ok(catalog.plugins)
    } else {
        Ok(vec![runtime.load(path).await?])
    }
}

/// Which plugin a fixture is for: the one it names, or the only one under test.
fn pick<'a>(plugins: &'a [Plugin], f: &Fixture) -> Option<&'a Plugin> {
    match &f.plugin {
        Some(name) => plugins.iter().find(|p| p.info.name == *name),
        None if plugins.len() == 1 => plugins.first(),
        None => None,
    }
}

pub async fn run(runtime: &Runtime, args: TestArgs) -> anyhow::Result<Exit> {
    let plugins = match plugins(runtime, &args.path).await {
        Ok(p) => p,
        Err(e) => return super::usage(e),
    };
    let files = lab::discover(&args.fixtures)
        .map_err(|e| anyhow::anyhow!("reading fixtures under {}: {e}", args.fixtures.display()));
    let files = match files {
        Ok(f) => f,
        Err(e) => return super::usage(e),
    };
    // Every fixture is read before any runs: a malformed one is a usage error at its line.
    let mut fixtures = Vec::new();
    for file in &files {
        match Fixture::load(file) {
            Ok(f) => fixtures.push(f),
            Err(e) => return super::usage(e),
        }
    }
    let mut results: Vec<FixtureResult> = Vec::new();
    for f in &fixtures {
        match pick(&plugins, f) {
            Some(plugin) => results.push(lab::run(plugin, f).await),
            // A fixture of another plugin when one file is tested belongs to that one.
            None if !args.path.is_dir() && f.plugin.is_some() => {}
            None => {
                return super::usage(anyhow::anyhow!(
                    "{}: {} (plugins under test: {})",
                    f.file.display(),
                    match &f.plugin {
                        Some(name) => format!("no plugin named `{name}`"),
                        None => "name the plugin it is for: plugin = \"...\"".into(),
                    },
                    plugins
                        .iter()
                        .map(|p| p.info.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    if results.is_empty() {
        return super::usage(anyhow::anyhow!(
            "no fixtures for these plugins under {} (fixtures are .toml or .json files in a folder named `fixtures`)",
            args.fixtures.display()
        ));
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, lab::junit::render(&results))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    match args.output {
        Output::Json => output::json(&results)?,
        Output::Table => print(&results, &plugins, failed),
    }
    Ok(if failed == 0 {
        Exit::Success
    } else {
        Exit::GateFailed
    })
}

fn print(results: &[FixtureResult], plugins: &[Plugin], failed: usize) {
    for r in results {
        let word = if r.passed() { "PASS" } else { "FAIL" };
        say!(
            "{word}  {:<18} {}  ({:.2} ms)",
            r.plugin,
            r.name,
            r.elapsed_ms
        );
        if let Some(e) = &r.error {
            say!("      error: {e}");
        }
        if r.error.is_none() {
            say!("      answered: {}", r.got);
        }
        // The numbers behind the answer, pass or fail: a policy author sees what it judged.
        for c in &r.checks {
            let reason = match c.verdict.reason() {
                "" => String::new(),
                why => format!(" — {why}"),
            };
            say!(
                "      check {} {} {}{reason}",
                c.name,
                c.verdict.word(),
                launch_engine::report::numbers(c)
            );
        }
        for m in &r.mismatches {
            say!(
                "      {}: expected `{}`, got `{}`",
                m.what,
                m.expected,
                m.got
            );
        }
        if !r.passed() {
            for line in &r.logs {
                say!("      log: {line}");
            }
            say!("      fixture: {}", r.fixture.display());
        }
    }
    for p in plugins {
        if !results.iter().any(|r| r.plugin == p.info.name) {
            say!("note: no fixtures for `{}`", p.info.name);
        }
    }
    if failed == 0 {
        say!("ok: {} fixture(s) passed", results.len());
    } else {
        say!("FAILED: {failed} of {} fixture(s)", results.len());
    }
}
