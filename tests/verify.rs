//! `launch-host verify`: a run's journal is a hash chain signed by its runner and anchored by
//! its reports. A correct run verifies; an edited line, an edited report, a removed last line or
//! a changed plugin is named; a consistent forgery (every later hash rewritten, the reports
//! regenerated), a history re-signed with another key, a removed line and an edited recorded
//! call all fail; `resume` refuses a broken chain; the S3 copy of a mirrored run (moto) is
//! verified beside the local one, never over it.

mod support;

use std::path::{Path, PathBuf};

use support::{Moto, local_runs, repo};

fn runbook(dir: &Path, state: &str) -> PathBuf {
    let path = dir.join("launch.toml");
    std::fs::write(
        &path,
        format!(
            r#"[launch]
name = "verify"
flag = "STATUS_BOARD_V2_ENABLED"
{state}

[environments.staging]
target = "embedded"

[defaults]
probe-rate = 100

[[stage]]
name = "deploy"
action = "deploy"
environment = "staging"
site = "statusboard-v2"

[[stage]]
name = "canary"
plugin = "canary-steps"
environment = "staging"
interval = "200ms"
on-fail = "rollback"
config = {{ steps = [10, 100], step-duration-ms = 200, min-requests = 3 }}
"#
        ),
    )
    .unwrap();
    path
}

fn host(env: &[(&str, String)], args: &[&str]) -> (Option<i32>, String) {
    support::launch_host_output(env, args)
}

fn run(env: &[(&str, String)], book: &Path, runs: &Path) -> PathBuf {
    let (code, text) = support::run_book(env, &repo().join("plugins"), book, runs, &[]);
    assert_eq!(code, Some(0), "{text}");
    local_runs(runs).pop().unwrap()
}

fn verify(env: &[(&str, String)], runs: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["verify", "--runs-dir", runs.to_str().unwrap()];
    args.extend_from_slice(extra);
    host(env, &args)
}

/// Replaces `from` by `to` on the first line holding it; returns that line's number.
fn edit(file: &Path, from: &str, to: &str) -> usize {
    let text = std::fs::read_to_string(file).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let at = lines
        .iter()
        .position(|l| l.contains(from))
        .expect("a line to edit");
    lines[at] = lines[at].replacen(from, to, 1);
    std::fs::write(file, lines.join("\n") + "\n").unwrap();
    at + 1
}

#[test]
fn a_correct_run_verifies_and_every_edit_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path(), "");
    let runs = dir.path().join("runs");
    let run_dir = run(&[], &book, &runs);
    let plugins = repo().join("plugins");
    let (code, text) = verify(&[], &runs, &["--plugins", plugins.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("intact") && text.contains("anchor its last line"),
        "{text}"
    );

    // A decision rewritten in the middle of the journal: that very line is named.
    let journal = run_dir.join("journal.jsonl");
    let pristine = std::fs::read(&journal).unwrap();
    let line = edit(
        &journal,
        "\"summary\":\"promote to 10%\"",
        "\"summary\":\"promote to 1%\"",
    );
    let (code, text) = verify(&[], &runs, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("journal.jsonl:{line}: line {line} was changed")),
        "{text}"
    );

    // The last line (the runner's final signature) removed: the end is no longer signed.
    let whole = String::from_utf8(pristine.clone()).unwrap();
    let lines: Vec<&str> = whole.lines().collect();
    assert!(lines.last().unwrap().contains("\"event\":\"signed\""));
    std::fs::write(&journal, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let (code, text) = verify(&[], &runs, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("come after its last signature")
            && text.contains("its final signature removed"),
        "{text}"
    );

    // The report edited: named, the journal intact.
    std::fs::write(&journal, &pristine).unwrap();
    let report = std::fs::read(run_dir.join("report.json")).unwrap();
    edit(
        &run_dir.join("report.json"),
        "\"outcome\": \"passed\"",
        "\"outcome\": \"rolled-back\"",
    );
    let (code, text) = verify(&[], &runs, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("report.json:") && text.contains("does not say what the journal says"),
        "{text}"
    );

    // A plugin with one byte flipped is not the one the run used.
    let (code, _) = {
        std::fs::write(&journal, &pristine).unwrap();
        std::fs::write(run_dir.join("report.json"), &report).unwrap();
        verify(&[], &runs, &[])
    };
    assert_eq!(code, Some(0), "restored, it verifies again");
    let copy = dir.path().join("plugins");
    std::fs::create_dir_all(&copy).unwrap();
    let mut bytes = std::fs::read(plugins.join("canary-steps.wasm")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(copy.join("canary-steps.wasm"), bytes).unwrap();
    let (code, text) = verify(&[], &runs, &["--plugins", copy.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("plugin `canary-steps` differs from the one the run started with"),
        "{text}"
    );
}

#[test]
fn resume_refuses_a_journal_whose_chain_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path(), "");
    let runs = dir.path().join("runs");
    let run_dir = run(&[], &book, &runs);
    // An interrupted run, as a crash leaves it (the end cut off), then a line rewritten.
    let journal = run_dir.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .take_while(|l| !l.contains("\"event\":\"stage-finished\""))
        .collect();
    std::fs::write(&journal, kept.join("\n") + "\n").unwrap();
    let line = edit(&journal, "\"detail\":\"", "\"detail\":\"(edited) ");
    let id = run_dir.file_name().unwrap().to_str().unwrap();
    let (code, text) = host(&[], &["resume", id, "--runs-dir", runs.to_str().unwrap()]);
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("journal.jsonl:{line}:")) && text.contains("not resumed"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_mirrored_in_s3_verifies_from_another_machine_and_an_edit_there_is_named() {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    s3.create_bucket().bucket("state").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path(), "state = \"s3://state/launch\"");
    let env = moto.env();
    let (here, elsewhere) = (dir.path().join("here"), dir.path().join("elsewhere"));
    let (e2, b2, h2) = (env.clone(), book.clone(), here.clone());
    let run_dir = tokio::task::spawn_blocking(move || run(&e2, &b2, &h2))
        .await
        .unwrap();
    let id = run_dir.file_name().unwrap().to_str().unwrap().to_string();
    let state = ["--state", "s3://state/launch"];
    let (e2, el) = (env.clone(), elsewhere.clone());
    let (code, text) = tokio::task::spawn_blocking(move || verify(&e2, &el, &state))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{text}");

    // Someone rewrites history in the bucket.
    let key = format!("launch/launch/runs/{id}/journal.jsonl");
    let body = support::s3_object(&s3, "state", &key)
        .await
        .expect("the mirrored journal");
    let text = String::from_utf8(body).unwrap();
    let at = text
        .lines()
        .position(|l| l.contains("\"event\":\"decision\""))
        .unwrap()
        + 1;
    let edited = text.replacen(
        "\"event\":\"decision\",",
        "\"event\":\"decision\",\"note\":\"x\",",
        1,
    );
    rewrite(&s3, &key, edited).await;
    let _ = std::fs::remove_dir_all(&elsewhere);
    let (e2, el) = (env.clone(), elsewhere.clone());
    let (code, text) = tokio::task::spawn_blocking(move || verify(&e2, &el, &state))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("journal.jsonl:{at}:")), "{text}");

    // A consistent forgery in the bucket, checked where the genuine copy is: the S3 copy fails
    // its signature, the local one verifies, they are said to differ, and the local journal
    // is exactly as it was (on 8fddcc8 it was overwritten by the forged copy).
    let local = std::fs::read(run_dir.join("journal.jsonl")).unwrap();
    let genuine = String::from_utf8(local.clone()).unwrap();
    let forged = forge(
        &genuine,
        at,
        "\"event\":\"decision\",",
        "\"event\":\"decision\",\"note\":\"y\",",
    );
    rewrite(&s3, &key, forged).await;
    let (e2, h2) = (env.clone(), here.clone());
    let (code, text) = tokio::task::spawn_blocking(move || verify(&e2, &h2, &state))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("they were rewritten after it was made"),
        "{text}"
    );
    assert!(text.contains("differ from line"), "{text}");
    assert!(
        text.contains(&format!("{}: intact", run_dir.display())),
        "{text}"
    );
    assert_eq!(
        std::fs::read(run_dir.join("journal.jsonl")).unwrap(),
        local,
        "untouched"
    );
    // Nor does `status --state` overwrite it: the copies differ, and it says so.
    let (e2, h2, id2) = (env.clone(), here.clone(), id.clone());
    let (code, text) = tokio::task::spawn_blocking(move || {
        let mut args = vec!["status", id2.as_str(), "--runs-dir", h2.to_str().unwrap()];
        args.extend_from_slice(&state);
        host(&e2, &args)
    })
    .await
    .unwrap();
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("differ from line") && text.contains("neither is overwritten"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(run_dir.join("journal.jsonl")).unwrap(),
        local,
        "untouched"
    );
}

/// sha256 of a line, as the chain holds it.
fn sha256(line: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(line.as_bytes()))
}

/// What a forger who can write the folder does: edit line `at` (1-based) with `from` → `to`,
/// then rewrite every later line's hash of the line before it (a signature's `head` too), so
/// the chain is consistent again.
/// Writes `body` over the object `key` of bucket `state`, keeping its metadata (the mirrored
/// journal's `segments-from`), as a forger who knows the layout would.
async fn rewrite(s3: &aws_sdk_s3::Client, key: &str, body: String) {
    let was = s3
        .head_object()
        .bucket("state")
        .key(key)
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("state")
        .key(key)
        .set_metadata(was.metadata().cloned())
        .body(body.into_bytes().into())
        .send()
        .await
        .unwrap();
}

fn forge(journal: &str, at: usize, from: &str, to: &str) -> String {
    let mut lines: Vec<String> = journal.lines().map(String::from).collect();
    let old = sha256(&lines[at - 1]);
    lines[at - 1] = lines[at - 1].replacen(from, to, 1);
    assert_ne!(sha256(&lines[at - 1]), old, "the edit changed the line");
    let mut old = old;
    for i in at..lines.len() {
        let new = sha256(&lines[i - 1]);
        let before = sha256(&lines[i]);
        lines[i] = lines[i].replace(&old, &new);
        old = before;
    }
    lines.join("\n") + "\n"
}

#[test]
fn a_consistent_forgery_with_regenerated_reports_fails_at_the_runners_signature() {
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path(), "");
    // A smoke suite too: its recorded HTTP exchanges are large enough to go to calls/.
    let text = std::fs::read_to_string(&book).unwrap().replace(
        "[[stage]]\nname = \"canary\"",
        "[[stage]]\nname = \"smoke\"\nplugin = \"statusboard-smoke\"\nenvironment = \"staging\"\n\n[[stage]]\nname = \"canary\"",
    );
    std::fs::write(&book, text).unwrap();
    let runs = dir.path().join("runs");
    let run_dir = run(&[], &book, &runs);
    let id = run_dir.file_name().unwrap().to_str().unwrap().to_string();
    let journal = run_dir.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let at = text
        .lines()
        .position(|l| l.contains("\"summary\":\"promote to 10%\""))
        .unwrap()
        + 1;
    std::fs::write(
        &journal,
        forge(
            &text,
            at,
            "\"summary\":\"promote to 10%\"",
            "\"summary\":\"promote to 1%\"",
        ),
    )
    .unwrap();
    // The chain is consistent again: on 8fddcc8 this, with the reports regenerated, verified.
    let (code, said) = host(
        &[],
        &[
            "report",
            &id,
            "--runs-dir",
            runs.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert_eq!(code, Some(0), "{said}");
    let (code, said) = verify(&[], &runs, &[]);
    assert_eq!(code, Some(1), "{said}");
    let signed_after = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .enumerate()
        .skip(at)
        .find(|(_, l)| l.contains("\"event\":\"signed\""))
        .map(|(i, _)| i + 1)
        .unwrap();
    assert!(
        said.contains(&format!(
            "journal.jsonl:{signed_after}: the runner's signature over lines 1–"
        )) && said.contains("they were rewritten after it was made"),
        "the first signature after the edit fails: {said}"
    );

    // A removed middle line is named by the gap it leaves, not blamed on the line before.
    let lines: Vec<&str> = text.lines().collect();
    let without: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 5)
        .map(|(_, l)| *l)
        .collect();
    std::fs::write(&journal, without.join("\n") + "\n").unwrap();
    let (code, said) = verify(&[], &runs, &[]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("journal.jsonl:6: line 6 is record 7: record 6 is missing"),
        "{said}"
    );

    // A finished run without its reports: named; written again from the journal, it verifies.
    std::fs::write(&journal, &text).unwrap();
    std::fs::remove_file(run_dir.join("report.json")).unwrap();
    let (code, said) = verify(&[], &runs, &[]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("report.json:0: is missing, though the run finished"),
        "{said}"
    );
    let (code, _) = host(&[], &["report", &id, "--runs-dir", runs.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    let (code, said) = verify(&[], &runs, &[]);
    assert_eq!(code, Some(0), "{said}");

    // Every report file and every recorded call is checked, not only report.json.
    for (file, from, to) in [
        ("report.md", "PASSED", "FAILED"),
        ("junit.xml", "<testsuite", "<testsuite x=\"1\""),
        ("report.html", "<title>", "<title>edited "),
    ] {
        let path = run_dir.join(file);
        let original = std::fs::read(&path).unwrap();
        edit(&path, from, to);
        let (code, said) = verify(&[], &runs, &[]);
        assert_eq!(code, Some(1), "{file}: {said}");
        assert!(
            said.contains(&format!("{file}:")) && said.contains("the report was edited"),
            "{said}"
        );
        std::fs::write(&path, original).unwrap();
    }
    let call = std::fs::read_dir(run_dir.join("calls"))
        .unwrap()
        .next()
        .expect("a recorded call's inputs")
        .unwrap()
        .path();
    let original = std::fs::read(&call).unwrap();
    let mut forged = original.clone();
    forged.insert(1, b' ');
    std::fs::write(&call, forged).unwrap();
    let (code, said) = verify(&[], &runs, &[]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("was changed: its sha256 is"), "{said}");
    std::fs::write(&call, original).unwrap();
    assert_eq!(verify(&[], &runs, &[]).0, Some(0));
}

#[test]
fn a_history_signed_by_a_key_verify_does_not_trust_fails_until_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("forger");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "forger", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    // Someone with their own key runs (or fabricates) a run and leaves it in the folder.
    let book = runbook(dir.path(), "");
    let runs = dir.path().join("runs");
    let env = [("LAUNCH_HOST_RUNNER_KEY", key.display().to_string())];
    run(&env, &book, &runs);
    let (code, said) = verify(&[], &runs, &[]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("a key verify does not trust"), "{said}");
    let public = format!("{}.pub", key.display());
    let (code, said) = verify(&[], &runs, &["--trust", &public]);
    assert_eq!(code, Some(0), "trusted when told: {said}");
}

#[test]
fn plugins_are_matched_by_the_name_they_give_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path(), "");
    let runs = dir.path().join("runs");
    run(&[], &book, &runs);
    let copy = dir.path().join("renamed");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(
        repo().join("plugins/canary-steps.wasm"),
        copy.join("policy-v1.wasm"),
    )
    .unwrap();
    let (code, said) = verify(&[], &runs, &["--plugins", copy.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("plugins: 1 compared"),
        "found by its describe name: {said}"
    );
}
