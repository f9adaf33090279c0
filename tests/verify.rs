//! `launch-host verify`: a run's journal is a hash chain anchored by its report. A correct run
//! verifies; an edited journal line, an edited report, a removed last line or a changed plugin
//! is named; `resume` refuses a broken chain; the same holds for a run mirrored in S3 (moto).

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
        text.contains("intact") && text.contains("anchors its last line"),
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
        text.contains(&format!(
            "journal.jsonl:{line}: line {line} was changed or removed"
        )),
        "{text}"
    );

    // The last line removed: the report no longer anchors the end.
    let whole = String::from_utf8(pristine.clone()).unwrap();
    let lines: Vec<&str> = whole.lines().collect();
    std::fs::write(&journal, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let (code, text) = verify(&[], &runs, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("(the last) is not the one report.json was written after"),
        "{text}"
    );

    // The report edited: named, the journal intact.
    std::fs::write(&journal, &pristine).unwrap();
    edit(
        &run_dir.join("report.json"),
        "\"outcome\": \"passed\"",
        "\"outcome\": \"rolled-back\"",
    );
    let (code, text) = verify(&[], &runs, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("report.json:0: does not say what the journal says"),
        "{text}"
    );

    // A plugin with one byte flipped is not the one the run used.
    let (code, _) = {
        std::fs::write(&journal, &pristine).unwrap();
        let r = run_dir.join("report.json");
        let t = std::fs::read_to_string(&r)
            .unwrap()
            .replace("\"outcome\": \"rolled-back\"", "\"outcome\": \"passed\"");
        std::fs::write(&r, t).unwrap();
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
    s3.put_object()
        .bucket("state")
        .key(&key)
        .body(edited.into_bytes().into())
        .send()
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&elsewhere);
    let (code, text) = tokio::task::spawn_blocking(move || verify(&env, &elsewhere, &state))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("journal.jsonl:{at}:")), "{text}");
}
