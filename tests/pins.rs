//! Pinned plugin builds: `plugins lock` writes plugins.lock beside the plugins; a run refuses a
//! plugin whose sha256 differs from its lock or its stage's `digest` pin (exit 2, nothing run),
//! naming both digests, the file and the command that accepts the new build.

mod support;

use std::path::{Path, PathBuf};

use support::{local_runs, repo};

/// The stock plugins, copied so a test may change them.
fn plugins_copy(dir: &Path) -> PathBuf {
    let copy = dir.join("plugins");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(repo().join("plugins")).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "wasm") {
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
    }
    copy
}

fn runbook(dir: &Path, pin: &str) -> PathBuf {
    let path = dir.join("launch.toml");
    std::fs::write(
        &path,
        format!(
            r#"[launch]
name = "pins"
flag = "STATUS_BOARD_V2_ENABLED"

[environments.staging]
target = "embedded"

[defaults]
probe-rate = 100

[[stage]]
name = "canary"
plugin = "canary-steps"
{pin}
environment = "staging"
interval = "200ms"
config = {{ steps = [10, 100], step-duration-ms = 200, min-requests = 3 }}
"#
        ),
    )
    .unwrap();
    path
}

fn host(args: &[&str]) -> (Option<i32>, String) {
    support::launch_host_output(&[], args)
}

fn run(plugins: &Path, book: &Path, runs: &Path) -> (Option<i32>, String) {
    support::run_book(&[], plugins, book, runs, &[])
}

/// Flips one bit inside the component's producers section: still a valid component, with
/// another sha256.
fn flip_a_byte(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes
        .windows(13)
        .position(|w| w == b"wit-component")
        .expect("a producers section");
    bytes[at] ^= 1;
    std::fs::write(file, bytes).unwrap();
}

fn sha256(file: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(file).unwrap()))
}

#[test]
fn a_locked_plugin_with_one_byte_flipped_is_refused_until_it_is_locked_again() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugins_copy(dir.path());
    let book = runbook(dir.path(), "");
    let runs = dir.path().join("runs");
    let (code, text) = host(&[
        "plugins",
        "lock",
        "--plugins",
        plugins.to_str().unwrap(),
        "--runbook",
        book.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{text}");
    let lock = std::fs::read_to_string(plugins.join("plugins.lock")).unwrap();
    let canary = plugins.join("canary-steps.wasm");
    let locked = sha256(&canary);
    assert!(
        lock.contains(&format!("sha256 = \"{locked}\""))
            && lock.contains("role = \"canary-policy\""),
        "{lock}"
    );
    assert!(
        !lock.contains("statusboard-smoke"),
        "only the plugins the runbook uses: {lock}"
    );
    let (code, text) = run(&plugins, &book, &runs);
    assert_eq!(code, Some(0), "the locked build runs: {text}");

    flip_a_byte(&canary);
    let changed = sha256(&canary);
    let (code, text) = run(&plugins, &book, &runs);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "plugin `canary-steps` is locked at sha256 {locked}"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} has sha256 {changed}", canary.display())),
        "{text}"
    );
    assert!(
        text.contains("launch-host plugins lock --plugins"),
        "the fix: {text}"
    );
    assert_eq!(local_runs(&runs).len(), 1, "nothing was run");
    // validate reports the same drift.
    let (code, text) = host(&[
        "validate",
        "--plugins",
        plugins.to_str().unwrap(),
        "--runbook",
        book.to_str().unwrap(),
    ]);
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("is locked at sha256"), "{text}");

    // Accepting the new build.
    let (code, text) = host(&[
        "plugins",
        "lock",
        "--plugins",
        plugins.to_str().unwrap(),
        "--runbook",
        book.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(&plugins, &book, &runs);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn a_stage_pinned_to_a_digest_refuses_any_other_build_at_the_pins_line() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugins_copy(dir.path());
    let canary = plugins.join("canary-steps.wasm");
    let pinned = sha256(&canary);
    let book = runbook(dir.path(), &format!("digest = \"sha256:{pinned}\""));
    let runs = dir.path().join("runs");
    flip_a_byte(&canary);
    let (code, text) = run(&plugins, &book, &runs);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "{}:14: stage `canary`: plugin `canary-steps` is pinned to sha256 {pinned}",
            book.display()
        )),
        "{text}"
    );
    assert!(local_runs(&runs).is_empty(), "nothing was run");
    let bad = runbook(dir.path(), "digest = \"sha256:abc\"");
    let (code, text) = run(&plugins, &bad, &runs);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("64 lowercase hex digits"), "{text}");
}
