//! A read-only folder grant (`files = ["dist"]`): a team's step plugin reads the build output
//! through it — and fails on a planted source map — while writing there, `..`, absolute paths
//! and a symlink pointing out are all refused. Real binary, a real component built from
//! tests/plugins/bundle-budget.

mod support;

use std::path::{Path, PathBuf};

use support::{launch_host_output, launch_host_with, local_runs, test_plugin};

const SECRET: &str = "the-launch-codes-7731";

/// A work folder: `dist/` (the build), `outside/secret.txt`, `dist/escape` → `../outside`, the
/// plugin in `plugins/`, and the runbook.
fn work() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    std::fs::create_dir_all(w.join("dist/assets")).unwrap();
    std::fs::write(w.join("dist/index.html"), "<html></html>").unwrap();
    std::fs::write(w.join("dist/assets/app.js"), vec![b'x'; 40 * 1024]).unwrap();
    std::fs::create_dir_all(w.join("outside")).unwrap();
    std::fs::write(w.join("outside/secret.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink("../outside", w.join("dist/escape")).unwrap();
    std::fs::create_dir_all(w.join("plugins")).unwrap();
    std::fs::copy(
        test_plugin("bundle-budget"),
        w.join("plugins/bundle-budget.wasm"),
    )
    .unwrap();
    let secret = w.join("outside/secret.txt");
    let book = w.join("launch.toml");
    std::fs::write(
        &book,
        format!(
            r#"[launch]
name = "files"
flag = "STATUS_BOARD_V2_ENABLED"

[environments.staging]
target = "embedded"

[[stage]]
name = "bundle-budget"
plugin = "bundle-budget"
files = ["dist"]
config = {{ max-kb = 100, try-escapes = ["/dist/../outside/secret.txt", "{}", "/dist/escape/secret.txt", "/outside/secret.txt"] }}
"#,
            secret.display()
        ),
    )
    .unwrap();
    (dir, book)
}

fn run(w: &Path, book: &Path) -> (Option<i32>, serde_json::Value, String) {
    let runs = w.join("runs");
    let out = launch_host_with(&[])
        .args(["run", "--yes", "--plugins"])
        .arg(w.join("plugins"))
        .arg("--runbook")
        .arg(book)
        .arg("--runs-dir")
        .arg(&runs)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let run = local_runs(&runs).pop().expect("a run");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    (out.status.code(), report, text + &journal)
}

fn checks_of(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["stages"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["verdict"]["kind"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_step_reads_its_granted_folder_and_nothing_else() {
    let (dir, book) = work();
    let w = dir.path();
    let (code, report, text) = run(w, &book);
    assert_eq!(code, Some(0), "{text}");
    let checks = checks_of(&report);
    let size = checks.iter().find(|c| c.0 == "bundle-size").unwrap();
    assert_eq!(size.1, "pass", "{checks:?}");
    // index.html, app.js and the symlink itself (which cannot be followed out, below).
    assert!(
        size.2.contains("3 file(s) under /dist"),
        "it read the build: {checks:?}"
    );
    // Every escape was refused from inside the sandbox, and nothing was written.
    let escapes: Vec<_> = checks
        .iter()
        .filter(|c| c.0.starts_with("read ") || c.0 == "write-inside")
        .collect();
    assert_eq!(escapes.len(), 5, "{checks:?}");
    assert!(
        escapes
            .iter()
            .all(|c| c.1 == "pass" && c.2.starts_with("refused")),
        "{escapes:?}"
    );
    assert!(!w.join("dist/written-by-plugin.txt").exists());
    assert!(
        !text.contains(SECRET),
        "the secret outside the grant never reached the run"
    );

    // A planted source map fails the gate.
    std::fs::write(w.join("dist/assets/app.js.map"), "{}").unwrap();
    let (code, report, text) = run(w, &book);
    assert_eq!(code, Some(1), "{text}");
    let maps = checks_of(&report)
        .into_iter()
        .find(|c| c.0 == "no-source-maps")
        .unwrap();
    assert_eq!(maps.1, "fail");
    let reason = &report["stages"][0]["verdict"]["reason"];
    assert!(
        reason
            .as_str()
            .unwrap_or_default()
            .contains("/dist/assets/app.js.map")
            || text.contains("source maps ship: /dist/assets/app.js.map"),
        "{text}"
    );
}

#[test]
fn a_granted_folder_that_does_not_exist_is_refused_before_the_run() {
    let (dir, book) = work();
    let w = dir.path();
    std::fs::remove_dir_all(w.join("dist")).unwrap();
    let out = launch_host_with(&[])
        .args(["run", "--yes", "--plugins"])
        .arg(w.join("plugins"))
        .arg("--runbook")
        .arg(&book)
        .arg("--runs-dir")
        .arg(w.join("runs"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("launch.toml:11: stage `bundle-budget`: files:")
            && stderr.contains("is not a folder"),
        "{stderr}"
    );
    assert!(local_runs(&w.join("runs")).is_empty());
}

/// `validate` and `run` of the work folder's runbook with `files = [grant]`: both exit codes
/// and what they said.
fn refused_grant(w: &Path, book: &Path, grant: &str) -> (Option<i32>, Option<i32>, String) {
    let text = std::fs::read_to_string(book).unwrap();
    let edited = text.replace(r#"files = ["dist"]"#, &format!("files = [{grant}]"));
    assert_ne!(edited, text);
    let book = w.join("edited.toml");
    std::fs::write(&book, edited).unwrap();
    let (p, b) = (w.join("plugins"), book.to_str().unwrap().to_string());
    let (validated, v) = launch_host_output(
        &[],
        &[
            "validate",
            "--plugins",
            p.to_str().unwrap(),
            "--runbook",
            &b,
        ],
    );
    let runs = w.join("runs");
    let (ran, r) = launch_host_output(
        &[],
        &[
            "run",
            "--yes",
            "--plugins",
            p.to_str().unwrap(),
            "--runbook",
            &b,
            "--runs-dir",
            runs.to_str().unwrap(),
        ],
    );
    assert!(
        local_runs(&runs).is_empty(),
        "nothing ran with files = [{grant}]"
    );
    (validated, ran, v + &r)
}

#[test]
fn a_grant_that_would_leave_the_runbooks_folder_is_refused_at_its_line() {
    let (dir, book) = work();
    let w = dir.path();
    // On 8fddcc8 every one of these was accepted; with "/etc" a plugin read /etc/passwd.
    for (grant, why) in [
        (r#""/etc""#, "is an absolute path"),
        ("\"..\"", "climbs out with `..`"),
        (r#""dist/../..""#, "climbs out with `..`"),
        (r#""""#, "is empty"),
        (r#""./""#, "is the runbook's folder itself"),
        (r#""dist", "./dist""#, "is granted twice"),
    ] {
        let (validated, ran, said) = refused_grant(w, &book, grant);
        assert_eq!((validated, ran), (Some(2), Some(2)), "{grant}: {said}");
        assert!(
            said.contains("edited.toml:11: stage `bundle-budget`: files:"),
            "{grant}: {said}"
        );
        assert!(said.contains(why), "{grant}: {said}");
    }
    // A name inside the folder that is a symlink leading out: refused where it leads, by
    // `validate` and by `run` alike.
    std::os::unix::fs::symlink("/etc", w.join("etc-link")).unwrap();
    let (validated, ran, said) = refused_grant(w, &book, r#""etc-link""#);
    assert_eq!((validated, ran), (Some(2), Some(2)), "{said}");
    assert!(
        said.contains("leads to /etc, outside the runbook's folder"),
        "{said}"
    );
    assert!(
        !said.contains("root:x:0:0"),
        "nothing of /etc/passwd was read"
    );
}

#[test]
fn a_grant_list_of_any_length_is_refused_at_once_with_one_error() {
    let (dir, book) = work();
    let w = dir.path();
    let many: Vec<String> = (0..100_000).map(|i| format!("\"d{i}\"")).collect();
    let started = std::time::Instant::now();
    let (validated, ran, said) = refused_grant(w, &book, &many.join(", "));
    assert_eq!(
        (validated, ran),
        (Some(2), Some(2)),
        "{}",
        &said[..said.len().min(2000)]
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "refused at once, not after a quadratic check: {:?}",
        started.elapsed()
    );
    println!(
        "100 000 grants refused by validate and run in {:?}, {} bytes said",
        started.elapsed(),
        said.len()
    );
    assert!(
        said.contains("files grants 100000 folders; at most 16 are allowed"),
        "{said}"
    );
    assert!(
        said.len() < 4000,
        "one error per command, not 100 000: {} bytes",
        said.len()
    );
}

#[test]
fn a_runbook_key_lock_or_fixture_that_never_ends_is_refused_by_name() {
    let (dir, book) = work();
    let w = dir.path();
    let plugins = w.join("plugins");
    let p = plugins.to_str().unwrap();
    let bounded = |args: &[&str]| {
        let started = std::time::Instant::now();
        let out = launch_host_output(&[], args);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "read with a bound, not until memory ran out: {args:?}"
        );
        out
    };
    // On 8fddcc8 each of these read /dev/zero until the process was killed (7/7 at 2 GiB).
    let (code, said) = bounded(&["run", "--yes", "--plugins", p, "--runbook", "/dev/zero"]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("the runbook /dev/zero is not a regular file"),
        "{said}"
    );

    let big = w.join("big.toml");
    std::fs::write(&big, vec![b'#'; 2 << 20]).unwrap();
    let (code, said) = bounded(&[
        "validate",
        "--plugins",
        p,
        "--runbook",
        big.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("is larger than 1048576 bytes"), "{said}");

    std::os::unix::fs::symlink("/dev/zero", w.join("zero.pub")).unwrap();
    let text = std::fs::read_to_string(&book).unwrap();
    let trusting = w.join("trusting.toml");
    std::fs::write(
        &trusting,
        format!("[trust]\nkeys = [\"zero.pub\"]\n\n{text}"),
    )
    .unwrap();
    let (code, said) = bounded(&[
        "validate",
        "--plugins",
        p,
        "--runbook",
        trusting.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("trust.keys: the public key")
            && said.contains("zero.pub is not a regular file"),
        "{said}"
    );

    std::os::unix::fs::symlink("/dev/zero", plugins.join("plugins.lock")).unwrap();
    let (code, said) = bounded(&[
        "validate",
        "--plugins",
        p,
        "--runbook",
        book.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("the plugins lock") && said.contains("is not a regular file"),
        "{said}"
    );
    std::fs::remove_file(plugins.join("plugins.lock")).unwrap();

    let fixtures = w.join("fixtures");
    std::fs::create_dir_all(&fixtures).unwrap();
    std::os::unix::fs::symlink("/dev/zero", fixtures.join("endless.toml")).unwrap();
    let wasm = plugins.join("bundle-budget.wasm");
    let (code, said) = bounded(&[
        "plugin",
        "test",
        wasm.to_str().unwrap(),
        "--fixtures",
        fixtures.to_str().unwrap(),
    ]);
    assert_ne!(code, Some(0), "{said}");
    assert!(
        said.contains("the fixture") && said.contains("endless.toml is not a regular file"),
        "{said}"
    );
}
