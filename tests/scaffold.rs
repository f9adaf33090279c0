//! `plugin new` through the real binary, one project per language, each built with its own
//! toolchain exactly as its README prints (the JavaScript one with the repository's pinned
//! componentize-js rather than a fresh `npm install`), then `plugin test` on its fixture.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `cmd` in `dir`; panics with its output when it fails.
fn sh(dir: &Path, cmd: &mut Command) {
    let out = cmd
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The binary run in `dir` with `args`.
fn host_in(dir: &Path, args: &[&str]) -> std::process::Output {
    launch_host_with(&[])
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// Scaffolds `name` and checks the message says how to build and test it.
fn new(dir: &Path, name: &str, role: &str, lang: &str) -> PathBuf {
    let out = host_in(
        dir,
        &["plugin", "new", name, "--role", role, "--lang", lang],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("launch-host plugin test"));
    let project = dir.join(name);
    for file in ["README.md", "fixtures/example.toml", "wit/worlds.wit"] {
        assert!(project.join(file).is_file(), "{file}");
    }
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(readme.contains("launch-host backtest "), "{readme}");
    assert!(readme.contains("launch-host plugins push "), "{readme}");
    project
}

fn plugin_test(project: &Path, wasm: &Path) {
    let out = host_in(
        project,
        &["plugin", "test", wasm.to_str().unwrap(), "--fixtures", "."],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("ok: 1 fixture(s) passed"), "{stdout}");
}

/// A tool pip installed, found on PATH or in pip's script folder.
fn pip_tool(name: &str) -> PathBuf {
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .map(|o| PathBuf::from(text(&o.stdout).trim()))
        .unwrap_or_default();
    let in_scripts = scripts.join(name);
    if in_scripts.is_file() {
        in_scripts
    } else {
        PathBuf::from(name)
    }
}

#[test]
fn a_rust_canary_policy_builds_and_passes_its_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let project = new(dir.path(), "my-canary", "canary-policy", "rust");
    // The stock plugins' warm target folder: wit-bindgen is already built for wasm there.
    let target = std::env::var_os("LAUNCH_HOST_PLUGINS_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs_home().join(".cache/launch-host/plugins-target"));
    let mut cargo = Command::new("cargo");
    cargo
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &target);
    if repo().join(".use-debian-wasm-toolchain").exists() {
        // DESIGN §7's fallback, as scripts/build-plugins.sh does it.
        cargo = Command::new("/usr/bin/cargo");
        cargo
            .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
            .args(["-Zbuild-std=std,panic_abort"])
            .env("CARGO_TARGET_DIR", &target)
            .env("RUSTC", "/usr/bin/rustc")
            .env("RUSTC_BOOTSTRAP", "1")
            .env(
                "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
                "-L native=/usr/lib/wasm32-wasi",
            );
    }
    sh(&project, &mut cargo);
    let wasm = target.join("wasm32-wasip2/release/my_canary.wasm");
    plugin_test(&project, &wasm);
    // The project's .cargo/config.toml took effect: the plugin starts with 2 MiB (32 pages)
    // of linear memory, so a call handed many windows does not grow it.
    let printed = Command::new(pip_tool("wasm-tools"))
        .arg("print")
        .arg(&wasm)
        .output()
        .expect("running wasm-tools (scripts/setup.sh installs it)");
    let wat = text(&printed.stdout);
    assert!(
        wat.lines().any(|l| l.trim() == "(memory (;0;) 32)"),
        "the scaffolded plugin's memory: {:?}",
        wat.lines().find(|l| l.contains("(memory"))
    );
}

fn dirs_home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
}

#[test]
fn a_python_slo_gate_builds_and_passes_its_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let project = new(dir.path(), "error-gate", "slo-gate", "python");
    sh(
        &project,
        Command::new(pip_tool("componentize-py")).args([
            "-d",
            "wit",
            "-w",
            "slo-gate-plugin",
            "componentize",
            "app",
            "-o",
            "error-gate.wasm",
        ]),
    );
    plugin_test(&project, &project.join("error-gate.wasm"));
}

#[test]
fn a_javascript_step_builds_and_passes_its_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let project = new(dir.path(), "api-check", "step", "js");
    let package: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.join("package.json")).unwrap()).unwrap();
    assert_eq!(
        package["devDependencies"]["@bytecodealliance/componentize-js"], "0.23.0",
        "the project pins the componentize-js this repository is tested with"
    );
    let componentize = repo().join("plugins/js/tools/node_modules/.bin/componentize-js");
    assert!(
        componentize.exists(),
        "run scripts/setup.sh (it installs componentize-js)"
    );
    let build = |out: &str| {
        let args = [
            "app.js",
            "--wit",
            "wit",
            "--world-name",
            "step-plugin",
            "-o",
            out,
        ];
        sh(&project, Command::new(&componentize).args(args));
    };
    build("api-check.wasm");
    plugin_test(&project, &project.join("api-check.wasm"));

    // A thrown Error reaches the operator with its message, not the runtime's abort lines.
    let app = std::fs::read_to_string(project.join("app.js")).unwrap();
    let throwing = app.replacen(
        "  run(context, configJson) {",
        "  run(context, configJson) {\n    throw new TypeError(\"the threshold table is missing\");",
        1,
    );
    assert_ne!(app, throwing);
    std::fs::write(project.join("app.js"), throwing).unwrap();
    build("throws.wasm");
    let out = host_in(
        &project,
        &["plugin", "test", "throws.wasm", "--fixtures", "."],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("its stderr says: the threshold table is missing"),
        "{stdout}"
    );
}

#[test]
fn a_bad_name_or_a_used_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = host_in(
        dir.path(),
        &["plugin", "new", "My Policy", "--role", "step"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not a plugin name"));
    std::fs::create_dir(dir.path().join("taken")).unwrap();
    std::fs::write(dir.path().join("taken/keep.txt"), "mine").unwrap();
    let out = host_in(dir.path(), &["plugin", "new", "taken", "--role", "step"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not empty"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("taken/keep.txt")).unwrap(),
        "mine"
    );
}
