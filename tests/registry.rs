//! Plugins as OCI artifacts, against a real registry (Debian's docker-registry, distribution
//! 2.8, on 127.0.0.1): what `plugins push` leaves is read back with a plain HTTP client the
//! way another tool would; a runbook's `oci://` stage runs the build its lock pins, whatever
//! the tag names later, offline after the first pull; a registry whose storage was rewritten
//! cannot hand a run another build; `[trust]` judges a pulled plugin by the signature that
//! travelled with it; credentials come from docker's config and reach no file and no output.

mod support;

use std::path::{Path, PathBuf};

use support::registry::Registry;
use support::{journal_of, local_runs};

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A copy of the stock canary policy; `variant` flips a byte of its producers section, so
/// each variant is a valid component with a sha256 of its own.
fn canary_build(dir: &Path, variant: u8) -> PathBuf {
    let mut bytes = std::fs::read(support::stock_plugin("canary-steps")).unwrap();
    if variant > 0 {
        let at = bytes
            .windows(13)
            .position(|w| w == b"wit-component")
            .expect("a producers section");
        bytes[at + usize::from(variant)] ^= 1;
    }
    let folder = dir.join(format!("build-{variant}"));
    std::fs::create_dir_all(&folder).unwrap();
    let file = folder.join("canary-steps.wasm");
    std::fs::write(&file, bytes).unwrap();
    file
}

/// A signing key, its public half where the runbook's `[trust]` names it (`release.pub`).
fn trusted_key(dir: &Path) -> PathBuf {
    let (key, public) = keypair(dir);
    std::fs::copy(&public, dir.join("release.pub")).unwrap();
    key
}

fn keypair(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    let key = dir.join("keys").join("release");
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "release", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (scripts/setup.sh --tests installs openssh-client)")
        .success();
    assert!(ok);
    (key.clone(), key.with_extension("pub"))
}

/// Each test its own plugin cache (and compiled cache), so a pull is a pull.
struct Host {
    env: Vec<(&'static str, String)>,
}

impl Host {
    fn new(dir: &Path) -> Host {
        Host {
            env: vec![(
                "LAUNCH_HOST_CACHE_DIR",
                dir.join("cache").display().to_string(),
            )],
        }
    }

    fn with(mut self, k: &'static str, v: &str) -> Host {
        self.env.push((k, v.to_string()));
        self
    }

    fn run(&self, args: &[&str]) -> (Option<i32>, String) {
        support::launch_host_output(&self.env, args)
    }

    /// `plugins lock` of `book`'s plugins in `plugins`.
    fn lock(&self, plugins: &Path, book: &Path) -> (Option<i32>, String) {
        self.run(&[
            "plugins",
            "lock",
            "--plugins",
            s(plugins),
            "--runbook",
            s(book),
        ])
    }

    /// Pushes `file` to `tag`; the manifest digest it got.
    fn push(&self, file: &Path, tag: &str) -> String {
        self.json(&["plugins", "push", s(file), tag])["manifest-digest"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A command with `--output json`, which must succeed: what it printed on stdout.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = support::launch_host_with(&self.env)
            .args(args)
            .args(["--output", "json"])
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

fn runbook(dir: &Path, plugin: &str, trust: bool) -> PathBuf {
    let path = dir.join("launch.toml");
    let trust = if trust {
        "[trust]\nkeys = [\"release.pub\"]\nrequire-signatures = true\n"
    } else {
        ""
    };
    std::fs::write(
        &path,
        format!(
            r#"[launch]
name = "registry"
flag = "STATUS_BOARD_V2_ENABLED"

{trust}
[environments.staging]
target = "embedded"

[defaults]
probe-rate = 100

[[stage]]
name = "canary"
plugin = "{plugin}"
environment = "staging"
interval = "400ms"
config = {{ steps = [10, 100], step-duration-ms = 400, min-requests = 3 }}
"#
        ),
    )
    .unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The `capabilities` record's grant for the canary stage.
fn grant(run: &Path) -> serde_json::Value {
    journal_of(run)
        .into_iter()
        .find(|r| r["event"] == "capabilities")
        .map(|r| r["grants"][0].clone())
        .expect("a capabilities record")
}

#[tokio::test]
async fn a_pushed_plugin_reads_as_the_wasm_oci_conventions_say_and_pulls_back_signed() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(None);
    let host = Host::new(dir.path());
    let file = canary_build(dir.path(), 0);
    let (key, public) = keypair(dir.path());
    let (code, text) = host.run(&["plugins", "sign", s(&file), "--key", s(&key)]);
    assert_eq!(code, Some(0), "{text}");
    let reference = registry.oci("launch/canary-steps:1.0.0");
    let pushed = host.json(&["plugins", "push", s(&file), &reference]);

    // As another tool reads it: plain HTTP, OCI media types.
    let http = reqwest::Client::new();
    let get = |path: String, accept: &'static str| {
        let http = http.clone();
        let url = registry.url(&path);
        async move {
            let r = http.get(url).header("Accept", accept).send().await.unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.bytes().await.unwrap().to_vec()
        }
    };
    let oci_manifest = "application/vnd.oci.image.manifest.v1+json";
    let body = get(
        "/v2/launch/canary-steps/manifests/1.0.0".into(),
        oci_manifest,
    )
    .await;
    let digest = format!("sha256:{}", sha256_hex(&body));
    assert_eq!(pushed["manifest-digest"], digest.as_str());
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(manifest["mediaType"], oci_manifest);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "wkg reads exactly one layer: {manifest}");
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    let wasm = std::fs::read(&file).unwrap();
    assert_eq!(layers[0]["digest"], format!("sha256:{}", sha256_hex(&wasm)));
    let notes = &manifest["annotations"];
    assert_eq!(notes["org.opencontainers.image.title"], "canary-steps");
    assert_eq!(notes["org.opencontainers.image.version"], "0.1.0");
    assert_eq!(notes["dev.launch-host.plugin.role"], "canary-policy");
    assert!(notes["dev.launch-host.plugin.contract"].is_string());
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config: serde_json::Value = serde_json::from_slice(
        &get(
            format!("/v2/launch/canary-steps/blobs/{config_digest}"),
            "*/*",
        )
        .await,
    )
    .unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");
    assert_eq!(config["layerDigests"][0], layers[0]["digest"]);
    assert!(
        config["component"]["exports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("canary-policy")),
        "{config}"
    );
    let layer = get(
        format!(
            "/v2/launch/canary-steps/blobs/{}",
            layers[0]["digest"].as_str().unwrap()
        ),
        "*/*",
    )
    .await;
    assert_eq!(layer, wasm, "the layer is the component, byte for byte");

    // The signature: a referrer of the manifest, listed under the referrers tag schema.
    let index: serde_json::Value = serde_json::from_slice(
        &get(
            format!(
                "/v2/launch/canary-steps/manifests/{}",
                digest.replace(':', "-")
            ),
            "application/vnd.oci.image.index.v1+json",
        )
        .await,
    )
    .unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["artifactType"],
        "application/vnd.launch-host.plugin.sshsig.v1"
    );
    let referrer: serde_json::Value = serde_json::from_slice(
        &get(
            format!(
                "/v2/launch/canary-steps/manifests/{}",
                entry["digest"].as_str().unwrap()
            ),
            oci_manifest,
        )
        .await,
    )
    .unwrap();
    assert_eq!(referrer["subject"]["digest"], digest.as_str());

    // Pulled elsewhere, it verifies against the signer's key with the signature it carried.
    let elsewhere = dir.path().join("elsewhere");
    let (code, text) = host.run(&["plugins", "pull", &reference, "--plugins", s(&elsewhere)]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&digest), "{text}");
    let pulled = elsewhere.join("canary-steps.wasm");
    assert_eq!(std::fs::read(&pulled).unwrap(), wasm);
    let (code, text) = host.run(&["plugins", "verify", s(&pulled), "--key", s(&public)]);
    assert_eq!(code, Some(0), "{text}");
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-Y", "check-novalidate", "-n", "launch-host-plugin", "-s"])
        .arg(elsewhere.join("canary-steps.wasm.sig"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("launch-host plugin sha256:{}", sha256_hex(&wasm)).as_bytes())?;
            c.wait()
        })
        .unwrap()
        .success();
    assert!(
        ok,
        "ssh-keygen reads the pulled signature as one of this build"
    );

    // A digest that names nothing, and a reference without a host, say so.
    let missing = registry.oci(&format!("launch/canary-steps@sha256:{}", "0".repeat(64)));
    let (code, text) = host.run(&["plugins", "pull", &missing]);
    assert_eq!(code, Some(1), "{text}");
    let (code, text) = host.run(&["plugins", "pull", "oci://launch/canary-steps:1.0.0"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("names no registry host"), "{text}");
}

#[test]
fn a_stage_runs_the_locked_digest_offline_and_a_moved_tag_changes_nothing_until_relocked() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::start(None);
    let host = Host::new(dir.path());
    let key = trusted_key(dir.path());
    let first = canary_build(dir.path(), 0);
    let second = canary_build(dir.path(), 1);
    for f in [&first, &second] {
        let (code, text) = host.run(&["plugins", "sign", s(f), "--key", s(&key)]);
        assert_eq!(code, Some(0), "{text}");
    }
    let tag = registry.oci("launch/canary-steps:1.2.0");
    let first_digest = host.push(&first, &tag);
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let book = runbook(dir.path(), &tag, true);
    let runs = dir.path().join("runs");
    let run = || support::run_book(&host.env, &plugins, &book, &runs, &[]);

    // A tag alone is not enough: a run fetches by digest only.
    let (code, text) = run();
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("fetches by digest only") && text.contains("plugins lock"),
        "{text}"
    );
    assert!(local_runs(&runs).is_empty(), "nothing ran: {text}");

    let (code, text) = host.lock(&plugins, &book);
    assert_eq!(code, Some(0), "{text}");
    let lock = std::fs::read_to_string(plugins.join("plugins.lock")).unwrap();
    assert!(
        lock.contains(&format!("manifest = \"{first_digest}\"")),
        "{lock}"
    );
    let (code, text) = host.run(&["validate", "--plugins", s(&plugins), "--runbook", s(&book)]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run();
    assert_eq!(code, Some(0), "the locked, signed build runs: {text}");
    let first_run = local_runs(&runs).pop().unwrap();
    let g = grant(&first_run);
    assert_eq!(
        g["oci"],
        format!("oci://{}/launch/canary-steps@{first_digest}", registry.host),
        "the capability manifest (what a UAT approval names) names the OCI digest"
    );
    let first_sha = sha256_hex(&std::fs::read(&first).unwrap());
    assert_eq!(g["sha256"], first_sha.as_str());

    // The tag moves to another build: runs keep the locked one.
    let (code, text) = host.run(&["plugins", "push", s(&second), &tag]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run();
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        grant(&local_runs(&runs).pop().unwrap())["sha256"],
        first_sha.as_str(),
        "a moved tag changes nothing a locked run does"
    );

    // Offline: the registry is gone, and the cached digest still runs.
    registry.stop();
    let (code, text) = run();
    assert_eq!(code, Some(0), "offline after the first pull: {text}");
    // … but a new lock cannot be had without it, and the old one stays.
    let (code, text) = host.lock(&plugins, &book);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("the lock was not written"), "{text}");
    assert_eq!(
        std::fs::read_to_string(plugins.join("plugins.lock")).unwrap(),
        lock
    );
}

#[test]
fn relocking_a_moved_tag_says_so_and_trust_refuses_an_unsigned_build() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(None);
    let host = Host::new(dir.path());
    let key = trusted_key(dir.path());
    let signed = canary_build(dir.path(), 0);
    let unsigned = canary_build(dir.path(), 2);
    let (code, text) = host.run(&["plugins", "sign", s(&signed), "--key", s(&key)]);
    assert_eq!(code, Some(0), "{text}");
    let tag = registry.oci("launch/canary-steps:stable");
    let before = host.push(&signed, &tag);
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let book = runbook(dir.path(), &tag, true);
    assert_eq!(host.lock(&plugins, &book).0, Some(0));

    let after = host.push(&unsigned, &tag);
    let (code, text) = host.lock(&plugins, &book);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("the tag moved from {before} to {after}")),
        "{text}"
    );
    // The accepted build is unsigned: [trust] refuses it before the first effect.
    let runs = dir.path().join("runs");
    let (code, text) = support::run_book(&host.env, &plugins, &book, &runs, &[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("is not signed, and the runbook requires signatures"),
        "{text}"
    );
    let (code, text) = host.run(&["validate", "--plugins", s(&plugins), "--runbook", s(&book)]);
    assert_ne!(code, Some(0), "validate says what run says: {text}");
}

#[test]
fn a_registry_whose_storage_was_rewritten_cannot_hand_a_run_another_build() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(None);
    let host = Host::new(dir.path());
    let good = canary_build(dir.path(), 0);
    let evil = canary_build(dir.path(), 3);
    let tag = registry.oci("launch/canary-steps:1.0.0");
    let pushed = host.json(&["plugins", "push", s(&good), &tag]);
    let pinned = registry.oci(&format!(
        "launch/canary-steps@{}",
        pushed["manifest-digest"].as_str().unwrap()
    ));
    // Someone who can write the registry's storage swaps the component's bytes.
    let blob = registry.blob_file(pushed["layer-digest"].as_str().unwrap());
    std::fs::write(&blob, std::fs::read(&evil).unwrap()).unwrap();

    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let book = runbook(dir.path(), &pinned, false);
    let runs = dir.path().join("runs");
    let (code, text) = support::run_book(&host.env, &plugins, &book, &runs, &[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("refused"), "{text}");
    assert!(local_runs(&runs).is_empty(), "nothing ran: {text}");
    let (code, text) = host.run(&["plugins", "pull", &pinned, "--plugins", s(&plugins)]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        !plugins.join("canary-steps.wasm").exists(),
        "nothing installed"
    );
    let cached = walk(&dir.path().join("cache").join("oci"));
    assert!(
        cached.iter().all(|f| !f.ends_with("plugin.wasm")),
        "nothing cached: {cached:?}"
    );
}

#[test]
fn credentials_come_from_docker_config_and_reach_no_file_and_no_output() {
    const PASSWORD: &str = "pw-7f3a-registry-only";
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(Some(("alice", PASSWORD)));
    let file = canary_build(dir.path(), 0);
    let tag = registry.oci("launch/canary-steps:1.0.0");
    let mut said = String::new();

    let anonymous = Host::new(dir.path());
    let (code, text) = anonymous.run(&["plugins", "push", s(&file), &tag]);
    said += &text;
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("refused the credentials") && text.contains("docker login"),
        "{text}"
    );

    // As `docker login` leaves it.
    let docker = dir.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auth = {
        use std::io::Write;
        let mut child = std::process::Command::new("base64")
            .arg("-w0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("alice:{PASSWORD}").as_bytes())
            .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    };
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.host),
    )
    .unwrap();
    let logged_in = Host::new(dir.path()).with("DOCKER_CONFIG", s(&docker));
    let (code, text) = logged_in.run(&["plugins", "push", s(&file), &tag]);
    said += &text;
    assert_eq!(code, Some(0), "{text}");

    // The environment's pair, for CI; a wrong one is refused and not echoed.
    let plugins = dir.path().join("plugins");
    let by_env = Host::new(dir.path())
        .with("LAUNCH_HOST_REGISTRY_USERNAME", "alice")
        .with("LAUNCH_HOST_REGISTRY_PASSWORD", PASSWORD);
    let (code, text) = by_env.run(&["plugins", "pull", &tag, "--plugins", s(&plugins)]);
    said += &text;
    assert_eq!(code, Some(0), "{text}");
    let wrong = Host::new(dir.path())
        .with("LAUNCH_HOST_REGISTRY_USERNAME", "alice")
        .with("LAUNCH_HOST_REGISTRY_PASSWORD", "not-the-password-9c1");
    let (code, text) = wrong.run(&["plugins", "pull", &tag]);
    assert_eq!(code, Some(1), "{text}");
    assert!(!text.contains("not-the-password-9c1"), "{text}");

    let book = runbook(dir.path(), &tag, false);
    let (code, text) = logged_in.lock(&plugins, &book);
    said += &text;
    assert_eq!(code, Some(0), "{text}");
    let runs = dir.path().join("runs");
    let (code, text) = support::run_book(&logged_in.env, &plugins, &book, &runs, &[]);
    said += &text;
    assert_eq!(code, Some(0), "{text}");

    assert!(!said.contains(PASSWORD) && !said.contains(&auth), "{said}");
    for f in walk(dir.path()) {
        if f.starts_with(&docker) {
            continue;
        }
        let bytes = std::fs::read(&f).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(PASSWORD) && !text.contains(&auth),
            "{} holds the credential",
            f.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
