//! `launch-host plugins list|inspect` (`plugins test` is in plugin_test.rs).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::output::{self, table};
use super::output::{esay, say};
use super::{Exit, Output};
use launch_runtime::{Plugin, Runtime};

#[derive(Subcommand, Debug)]
pub enum PluginsCommand {
    /// Name, version, role, capabilities, size and digest of every plugin in a directory
    #[command(after_help = "Example:\n  launch-host plugins list --plugins plugins/ --output json")]
    List(ListArgs),
    /// Pin the builds a runbook uses: writes DIR/plugins.lock (name, version, role, sha256,
    /// contract, capabilities); a run then refuses a plugin whose sha256 differs
    #[command(
        after_help = "Examples:\n  launch-host plugins lock --plugins plugins/                      # the embedded default's plugins\n  launch-host plugins lock --plugins plugins/ --runbook launch.toml"
    )]
    Lock(LockArgs),
    /// Sign a component with an OpenSSH ed25519 private key: writes FILE.sig beside it
    #[command(
        after_help = "Example:\n  launch-host plugins sign plugins/canary-steps.wasm --key ~/.ssh/release_ed25519"
    )]
    Sign(SignArgs),
    /// Publish a plugin (and its signature, when FILE.sig is beside it) to an OCI registry
    /// under a tag, as wkg, Spin and wasmCloud package components
    #[command(
        after_help = "Examples:\n  launch-host plugins push plugins/canary-steps.wasm oci://registry.example.com/launch/canary-steps:1.2.0\n  launch-host plugins push plugins/canary-steps.wasm oci://127.0.0.1:5000/launch/canary-steps:1.2.0\n\nCredentials: LAUNCH_HOST_REGISTRY_USERNAME and LAUNCH_HOST_REGISTRY_PASSWORD, else docker's config\n($DOCKER_CONFIG/config.json or ~/.docker/config.json, as `docker login` writes it). Loopback registries\nand those LAUNCH_HOST_INSECURE_REGISTRIES lists (host:port,…) are spoken to over plain HTTP."
    )]
    Push(super::registry::PushArgs),
    /// Fetch a plugin from an OCI registry, checked against its digest, into the cache (and
    /// into a plugins folder with --plugins), its signature beside it
    #[command(
        after_help = "Examples:\n  launch-host plugins pull oci://registry.example.com/launch/canary-steps:1.2.0 --plugins plugins/\n  launch-host plugins pull oci://registry.example.com/launch/canary-steps@sha256:9f86…\n\nA runbook may name the plugin itself: plugin = \"oci://registry.example.com/launch/canary-steps:1.2.0\";\n`plugins lock` then records the digest that tag names, and runs fetch that digest only."
    )]
    Pull(super::registry::PullArgs),
    /// Check a component's signature against an OpenSSH public key
    #[command(
        after_help = "Example:\n  launch-host plugins verify plugins/canary-steps.wasm --key keys/release.pub\n\nExit status: 0 signed by that key · 1 unsigned, badly signed or by another key · 2 usage"
    )]
    Verify(SignArgs),
    /// Imports, exports and contract version of one component file, and what it may do at
    /// each stage of the runbook that calls it (its capability manifest)
    #[command(
        after_help = "Examples:\n  launch-host plugins inspect plugins/statusboard-smoke.wasm\n  launch-host plugins inspect plugins/health-check.wasm --runbook launch.toml --output json"
    )]
    Inspect(InspectArgs),
    /// Run a plugin's fixtures offline: each one call with the fixture's inputs, checked
    /// against what it expects (docs/plugins.md describes the format)
    #[command(
        after_help = "Examples:\n  launch-host plugin test plugins/canary-steps.wasm --fixtures plugins/rust/canary-steps\n  launch-host plugin test plugins/ --fixtures plugins/ --junit fixtures.xml\n\nExit status: 0 every fixture passed · 1 a fixture failed · 2 a plugin or fixture could not be read"
    )]
    Test(super::plugin_test::TestArgs),
    /// Start a policy project (Rust, Python or JavaScript) that builds as printed, with the
    /// contract's WIT and a passing fixture
    #[command(
        after_help = "Examples:\n  launch-host plugin new my-canary --role canary-policy --lang rust\n  launch-host plugin new error-gate --role slo-gate --lang python --dir policies/error-gate\n  launch-host plugin new api-check --role step --lang js"
    )]
    New(super::scaffold::NewArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Directory holding the plugin `.wasm` files
    #[arg(long, value_name = "DIR", default_value = "plugins")]
    plugins: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Args, Debug)]
pub struct LockArgs {
    /// Directory holding the plugin `.wasm` files; the lock is written there
    #[arg(
        long,
        value_name = "DIR",
        default_value = "plugins",
        env = "LAUNCH_HOST_PLUGINS"
    )]
    plugins: PathBuf,
    /// The runbook whose plugins to lock [default: the embedded default]
    #[arg(long, value_name = "FILE", env = "LAUNCH_HOST_RUNBOOK")]
    runbook: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SignArgs {
    /// The component file
    file: PathBuf,
    /// The OpenSSH key: the private key to sign with, the public key (.pub) to verify against
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The component file
    file: PathBuf,
    /// Show what the plugin may do at each stage of this runbook [default: the embedded default]
    #[arg(long, value_name = "FILE", env = "LAUNCH_HOST_RUNBOOK")]
    runbook: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub async fn run(runtime: &Runtime, cmd: PluginsCommand) -> anyhow::Result<Exit> {
    match cmd {
        PluginsCommand::List(args) => list(runtime, args).await,
        PluginsCommand::Inspect(args) => inspect(runtime, args).await,
        PluginsCommand::Lock(args) => lock(runtime, args).await,
        PluginsCommand::Push(args) => super::registry::push(runtime, args).await,
        PluginsCommand::Pull(args) => super::registry::pull(runtime, args).await,
        PluginsCommand::Sign(args) => match launch_engine::trust::sign(&args.file, &args.key) {
            Ok((sig, fingerprint)) => {
                say!(
                    "signed {} with {fingerprint}: {}",
                    args.file.display(),
                    sig.display()
                );
                Ok(Exit::Success)
            }
            Err(e) => super::usage(e),
        },
        PluginsCommand::Verify(args) => match launch_engine::trust::verify(&args.file, &args.key) {
            Ok(fingerprint) => {
                say!("{}: signed by {fingerprint}", args.file.display());
                Ok(Exit::Success)
            }
            Err(e) => {
                esay!("error: {e}");
                Ok(Exit::GateFailed)
            }
        },
        PluginsCommand::Test(args) => super::plugin_test::run(runtime, args).await,
        // Dispatched before a runtime exists (cli::run): writing files loads no plugin.
        PluginsCommand::New(args) => super::scaffold::run(args),
    }
}

#[derive(serde::Serialize)]
struct Listed<'a> {
    file: &'a std::path::Path,
    digest: &'a str,
    size: u64,
    contract: &'a str,
    /// The signing key's fingerprint, when a valid signature is beside the file.
    signed_by: Option<String>,
    #[serde(flatten)]
    info: &'a launch_runtime::PluginInfo,
}

fn signer(p: &Plugin) -> Option<String> {
    match launch_engine::trust::signature(&p.path, &p.digest) {
        launch_engine::trust::Signed::By(fp) => Some(fp),
        launch_engine::trust::Signed::Bad(_) => Some("BAD SIGNATURE".into()),
        launch_engine::trust::Signed::Unsigned => None,
    }
}

fn listed(p: &Plugin) -> Listed<'_> {
    Listed {
        file: &p.path,
        digest: &p.digest,
        size: p.size,
        contract: &p.contract,
        signed_by: signer(p),
        info: &p.info,
    }
}

async fn list(runtime: &Runtime, args: ListArgs) -> anyhow::Result<Exit> {
    let catalog = match runtime.discover(&args.plugins).await {
        Ok(c) => c,
        Err(e) => {
            esay!("error: {e}");
            return Ok(Exit::Usage);
        }
    };
    match args.output {
        Output::Json => {
            let rejected: Vec<String> = catalog.rejected.iter().map(ToString::to_string).collect();
            output::json(&serde_json::json!({
                "plugins": catalog.plugins.iter().map(listed).collect::<Vec<_>>(),
                "rejected": rejected,
            }))?;
        }
        Output::Table => {
            let mut t = table(&[
                "NAME",
                "VERSION",
                "ROLE",
                "CAPABILITIES",
                "SIZE",
                "DIGEST",
                "SIGNED BY",
                "FILE",
            ]);
            for p in &catalog.plugins {
                t.add_row(vec![
                    p.info.name.clone(),
                    p.info.version.clone(),
                    p.info.role.to_string(),
                    p.info.capabilities.join(","),
                    output::size(p.size),
                    format!("sha256:{}", &p.digest[..12]),
                    signer(p).unwrap_or_else(|| "-".into()),
                    p.path.display().to_string(),
                ]);
            }
            if catalog.plugins.is_empty() {
                say!("no plugins in {}", catalog.dir.display());
            } else {
                say!("{t}");
            }
            for e in &catalog.rejected {
                esay!("error: {e}");
            }
        }
    }
    Ok(if catalog.rejected.is_empty() {
        Exit::Success
    } else {
        Exit::Usage
    })
}

async fn lock(runtime: &Runtime, args: LockArgs) -> anyhow::Result<Exit> {
    let runbook = match super::workspace::parse_runbook(args.runbook.as_deref()) {
        Ok((rb, _)) => rb,
        Err(e) => return super::usage(e),
    };
    let mut catalog = match runtime.discover(&args.plugins).await {
        Ok(c) => c,
        Err(e) => return super::usage(e.into()),
    };
    // An oci:// plugin's tag is read now: locking is where a new build is accepted.
    let resolved = launch_engine::registry::resolve(
        runtime,
        &runbook,
        &mut catalog,
        launch_engine::registry::Resolve::Latest,
    )
    .await;
    for note in &resolved.notes {
        say!("{note}");
    }
    if !resolved.problems.is_empty() {
        for p in &resolved.problems {
            esay!("error: {p}");
        }
        esay!("the lock was not written");
        return Ok(Exit::Usage);
    }
    match launch_engine::pins::write(&runbook, &catalog) {
        Ok((path, lock)) => {
            for p in &lock.plugins {
                say!(
                    "locked {} {} ({}) sha256:{}{}",
                    p.name,
                    p.version,
                    p.role,
                    &p.sha256[..12],
                    p.manifest
                        .as_ref()
                        .map(|m| format!(" manifest {m}"))
                        .unwrap_or_default()
                );
            }
            say!(
                "wrote {}: runs refuse any other build of these {} plugin(s)",
                path.display(),
                lock.plugins.len()
            );
            Ok(Exit::Success)
        }
        Err(e) => super::usage(e),
    }
}

async fn inspect(runtime: &Runtime, args: InspectArgs) -> anyhow::Result<Exit> {
    let inspection = match runtime.inspect(&args.file).await {
        Ok(i) => i,
        Err(e) => {
            esay!("error: {e}");
            return Ok(Exit::Usage);
        }
    };
    let usable = inspection.problem.is_none();
    let runbook = match super::workspace::parse_runbook(args.runbook.as_deref()) {
        Ok((rb, _)) => rb,
        Err(e) => return super::usage(e),
    };
    let manifest = manifest_of(&inspection, &runbook);
    match args.output {
        Output::Json => output::json(&Inspected {
            inspection: &inspection,
            runbook: &runbook.source,
            capabilities: manifest.as_ref().map(|m| m.grants.as_slice()),
        })?,
        Output::Table => {
            let i = &inspection;
            say!("file:      {}", i.path.display());
            say!("size:      {}", output::size(i.size));
            say!("digest:    sha256:{}", i.digest);
            let versions = if i.contract_versions.is_empty() {
                "(none)".to_string()
            } else {
                i.contract_versions.join(", ")
            };
            say!(
                "contract:  launch:plugin@{versions} (this host: {})",
                i.host_contract
            );
            if let Some(p) = &i.plugin {
                say!("plugin:    {} {} ({})", p.name, p.version, p.role);
                say!("           {}", p.description);
                say!(
                    "requests:  {}",
                    if p.capabilities.is_empty() {
                        "nothing".into()
                    } else {
                        p.capabilities.join(", ")
                    }
                );
                say!(
                    "config:    {}",
                    if p.config_schema.is_some() {
                        "JSON Schema provided"
                    } else {
                        "no schema"
                    }
                );
            }
            say!("imports:");
            for name in &i.imports {
                say!("  {name}");
            }
            say!("exports:");
            for name in &i.exports {
                say!("  {name}");
            }
            match (&i.plugin, &manifest) {
                (Some(p), Some(m)) if m.grants.is_empty() => {
                    say!(
                        "capabilities: `{}` is not used by {}",
                        p.name,
                        runbook.source
                    );
                }
                (Some(_), Some(m)) => {
                    say!("capabilities in {} ({}):", runbook.source, m.digest());
                    for g in &m.grants {
                        let shadow = if g.shadow { " (shadow)" } else { "" };
                        say!("  stage `{}`{shadow}:", g.stage);
                        for (what, value) in launch_engine::manifest::describe(g) {
                            say!("    {what:<9} {value}");
                        }
                    }
                }
                _ => {}
            }
            if let Some(problem) = &i.problem {
                esay!("error: {problem}");
            }
        }
    }
    Ok(if usable { Exit::Success } else { Exit::Usage })
}

#[derive(serde::Serialize)]
struct Inspected<'a> {
    #[serde(flatten)]
    inspection: &'a launch_runtime::inspect::Inspection,
    /// The runbook the capabilities are of.
    runbook: &'a str,
    /// What the plugin may do at each stage of it that calls it.
    capabilities: Option<&'a [launch_engine::manifest::Grant]>,
}

/// What the inspected plugin may do at each stage of `runbook` that calls it.
fn manifest_of(
    i: &launch_runtime::inspect::Inspection,
    runbook: &launch_engine::Runbook,
) -> Option<launch_engine::manifest::Manifest> {
    let p = i.plugin.as_ref()?;
    let build = |name: &str| {
        (name == p.name).then(|| launch_engine::manifest::Build {
            version: p.version.clone(),
            sha256: i.digest.clone(),
            oci: None,
            requested: p.capabilities.clone(),
            network: i.network.iter().map(|n| n.to_string()).collect(),
        })
    };
    Some(launch_engine::manifest::Manifest::of(runbook, build).of_plugin(&p.name))
}
