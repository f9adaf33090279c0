//! Signed plugins: OpenSSH ed25519 keys generated in the test (ssh-keygen), detached SSHSIG
//! signatures beside the components, a runbook that trusts one key and requires signatures.
//! A trusted signature runs; an untrusted key, a missing or a broken signature is refused by
//! name before the first effect.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{local_runs, repo};

fn keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen (openssh-client; scripts/setup.sh --tests installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    key
}

fn host(args: &[&str]) -> (Option<i32>, String) {
    support::launch_host_output(&[], args)
}

fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        repo().join("plugins/canary-steps.wasm"),
        plugins.join("canary-steps.wasm"),
    )
    .unwrap();
    let book = dir.join("launch.toml");
    std::fs::write(
        &book,
        r#"[launch]
name = "trust"
flag = "STATUS_BOARD_V2_ENABLED"

[trust]
keys = ["release.pub"]
require-signatures = true

[environments.staging]
target = "embedded"

[defaults]
probe-rate = 100

[[stage]]
name = "canary"
plugin = "canary-steps"
environment = "staging"
interval = "200ms"
config = { steps = [10, 100], step-duration-ms = 200, min-requests = 3 }
"#,
    )
    .unwrap();
    (plugins, book)
}

fn run(dir: &Path, plugins: &Path, book: &Path) -> (Option<i32>, String) {
    support::run_book(&[], plugins, book, &dir.join("runs"), &[])
}

#[test]
fn a_trusted_signature_runs_and_an_untrusted_missing_or_broken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let release = keygen(d, "release");
    let stranger = keygen(d, "stranger");
    let (plugins, book) = setup(d);
    let wasm = plugins.join("canary-steps.wasm");
    let w = wasm.to_str().unwrap();

    // Unsigned, with signatures required.
    let (code, text) = run(d, &plugins, &book);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("plugin `canary-steps`")
            && text.contains("is not signed, and the runbook requires signatures"),
        "{text}"
    );
    assert!(local_runs(&d.join("runs")).is_empty(), "nothing was run");

    // Signed by a key the runbook does not trust.
    let (code, text) = host(&["plugins", "sign", w, "--key", stranger.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(d, &plugins, &book);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("which [trust] keys does not trust"), "{text}");
    let (code, _) = host(&[
        "plugins",
        "verify",
        w,
        "--key",
        &format!("{}.pub", release.display()),
    ]);
    assert_eq!(code, Some(1), "not signed by the release key");

    // Signed by the trusted key: it runs, and `plugins list` shows who signed it.
    let (code, text) = host(&["plugins", "sign", w, "--key", release.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    let fingerprint = text
        .split_whitespace()
        .find(|t| t.starts_with("SHA256:"))
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    let (code, text) = host(&[
        "plugins",
        "verify",
        w,
        "--key",
        &format!("{}.pub", release.display()),
    ]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = host(&[
        "plugins",
        "list",
        "--plugins",
        plugins.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("\"signed_by\": \"{fingerprint}\"")),
        "{text}"
    );
    let (code, text) = run(d, &plugins, &book);
    assert_eq!(code, Some(0), "{text}");

    // The signed file changed afterwards (one bit in its producers section).
    let mut bytes = std::fs::read(&wasm).unwrap();
    let at = bytes
        .windows(13)
        .position(|b| b == b"wit-component")
        .unwrap();
    bytes[at] ^= 1;
    std::fs::write(&wasm, bytes).unwrap();
    let (code, text) = run(d, &plugins, &book);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("the signature does not match this file"),
        "{text}"
    );
}
