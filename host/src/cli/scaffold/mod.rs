//! `launch-host plugin new`: a small policy project in Rust, Python or JavaScript that builds
//! as printed, with the contract's WIT, one passing fixture and a ten-line README. Templates
//! are minijinja (see the commit): one per language, with a section per role.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use minijinja::{Environment, context};

use super::Exit;
use launch_runtime::Role;

#[derive(Args, Debug)]
pub struct NewArgs {
    /// The plugin's name: lowercase letters, digits and dashes, e.g. `my-canary`
    name: String,
    /// The role it plays
    #[arg(long, value_enum)]
    role: RoleArg,
    /// The language to write it in
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
    /// Where to write the project [default: ./NAME]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    SmokeSuite,
    SloGate,
    UatChecklist,
    CanaryPolicy,
    Step,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::SmokeSuite => Role::SmokeSuite,
            RoleArg::SloGate => Role::SloGate,
            RoleArg::UatChecklist => Role::UatChecklist,
            RoleArg::CanaryPolicy => Role::CanaryPolicy,
            RoleArg::Step => Role::Step,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lang {
    Rust,
    Python,
    Js,
}

/// The contract, as this host speaks it.
const WIT: [(&str, &str); 4] = [
    ("types.wit", include_str!("../../../../wit/types.wit")),
    (
        "capabilities.wit",
        include_str!("../../../../wit/capabilities.wit"),
    ),
    ("roles.wit", include_str!("../../../../wit/roles.wit")),
    ("worlds.wit", include_str!("../../../../wit/worlds.wit")),
];

const TEMPLATES: [(&str, &str); 8] = [
    ("lib.rs", include_str!("templates/lib.rs.j2")),
    ("Cargo.toml", include_str!("templates/Cargo.toml.j2")),
    ("app.py", include_str!("templates/app.py.j2")),
    ("app.js", include_str!("templates/app.js.j2")),
    ("package.json", include_str!("templates/package.json.j2")),
    ("README.md", include_str!("templates/README.md.j2")),
    ("fixture.toml", include_str!("templates/fixture.toml.j2")),
    (
        "cargo-config.toml",
        include_str!("templates/cargo-config.toml.j2"),
    ),
];

fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

/// (file in the project, template) for a language.
fn files(lang: Lang) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        ("README.md", "README.md"),
        ("fixtures/example.toml", "fixture.toml"),
    ];
    out.extend(match lang {
        Lang::Rust => &[
            ("src/lib.rs", "lib.rs"),
            ("Cargo.toml", "Cargo.toml"),
            (".cargo/config.toml", "cargo-config.toml"),
        ][..],
        Lang::Python => &[("app.py", "app.py"), ("world.txt", "")],
        Lang::Js => &[("app.js", "app.js"), ("package.json", "package.json")],
    });
    out
}

pub fn run(args: NewArgs) -> anyhow::Result<Exit> {
    if !valid_name(&args.name) {
        return super::usage(anyhow::anyhow!(
            "`{}` is not a plugin name: use lowercase letters, digits and dashes, starting with a letter (e.g. `my-canary`)",
            args.name
        ));
    }
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return super::usage(anyhow::anyhow!(
            "{} exists and is not empty; pick another --dir",
            dir.display()
        ));
    }
    let role = Role::from(args.role);
    let role_word = role.to_string();
    let world = format!("{role_word}-plugin");
    // Smoke suites and steps GET their target; the others request no network.
    let http = matches!(role, Role::SmokeSuite | Role::Step);
    let (lang_name, build, artifact) = match args.lang {
        Lang::Rust => (
            "Rust",
            "cargo build --release --target wasm32-wasip2".to_string(),
            format!(
                "target/wasm32-wasip2/release/{}.wasm",
                args.name.replace('-', "_")
            ),
        ),
        Lang::Python => (
            "Python",
            format!(
                "componentize-py -d wit -w {world} componentize app -o {}.wasm",
                args.name
            ),
            format!("{}.wasm", args.name),
        ),
        Lang::Js => (
            "JavaScript",
            "npm install && npm run build".to_string(),
            format!("{}.wasm", args.name),
        ),
    };
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    let ctx = context! {
        name => args.name,
        role => role_word,
        world => world,
        http => http,
        role_variant => role_variant(role),
        role_py => role_word.replace('-', "_").to_ascii_uppercase(),
        lang_name => lang_name,
        build => build,
        artifact => artifact,
        fixture_description => fixture_description(role),
    };
    let write = |rel: &str, text: &str| -> anyhow::Result<()> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
    };
    for (rel, template) in files(args.lang) {
        let text = if template.is_empty() {
            format!("{world}\n")
        } else {
            env.get_template(template)?.render(&ctx)?
        };
        write(rel, &text)?;
    }
    for (file, text) in WIT {
        write(&format!("wit/{file}"), text)?;
    }
    print_next(&dir, &build, &artifact);
    Ok(Exit::Success)
}

fn role_variant(role: Role) -> &'static str {
    match role {
        Role::SmokeSuite => "SmokeSuite",
        Role::SloGate => "SloGate",
        Role::UatChecklist => "UatChecklist",
        Role::CanaryPolicy => "CanaryPolicy",
        Role::Step => "Step",
    }
}

fn fixture_description(role: Role) -> &'static str {
    match role {
        Role::CanaryPolicy => "a fresh canary starts at the first step",
        Role::SloGate => "healthy traffic passes",
        Role::UatChecklist => "the item passed and one stakeholder approved",
        Role::SmokeSuite | Role::Step => "a target that is down is no data, never a pass",
    }
}

fn print_next(dir: &Path, build: &str, artifact: &str) {
    println!("created {}", dir.display());
    println!("next:");
    println!("  cd {}", dir.display());
    println!("  {build}");
    println!("  launch-host plugin test {artifact} --fixtures .");
}
