//! Fuzzing the host's readers of outside input, on stable Rust inside `cargo test`: the runbook
//! parser and its checks, the journal reader, the handling of whatever a plugin returns
//! (verdicts, checks, numbers, strings) from the journal to every report, the folders a
//! runbook grants (never outside its folder, whatever the names and symlinks), and files of
//! any size (never read past their bound). Each target runs for
//! a bounded time — `LAUNCH_HOST_FUZZ_SECS` (10 s by default, `just fuzz` gives 300) — on inputs
//! that proptest generates and on mutations of the corpus kept in `tests/corpus/`. Goal: zero
//! panics. Each target prints its executions; a panic fails the test and prints the input.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use launch_engine::journal::{Event, Journal};
use launch_engine::plan::{Operation, plan};
use launch_engine::record::{self, CheckRecord, Outcome, VerdictRecord};
use launch_engine::{Runbook, consistency, report};
use launch_runtime::Catalog;
use launch_runtime::types::{Check, Verdict};

fn budget() -> Duration {
    let secs = std::env::var("LAUNCH_HOST_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

/// Feeds `target` with values of `strategy` until the budget is spent; fails on the first
/// panic, showing the input.
fn fuzz<S: Strategy>(name: &str, strategy: S, mut target: impl FnMut(&S::Value))
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    let mut executions = 0u64;
    while started.elapsed() < budget() {
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            continue;
        };
        let input = tree.current();
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            panic!("fuzz {name}: panicked after {executions} executions on input:\n{input:#?}");
        }
        executions += 1;
    }
    println!(
        "fuzz {name}: {executions} executions in {:.1} s, 0 panics",
        started.elapsed().as_secs_f64()
    );
    assert!(executions > 0, "fuzz {name} ran nothing");
}

fn corpus(kind: &str) -> Vec<Vec<u8>> {
    let dir = // At run time: a test binary built in another clone (one shared target folder) must
    // still find this one.
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()))
        .join("tests/corpus")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// One edit of a corpus entry.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    DuplicateLine(usize),
}

/// Words that reach deep into the readers: field names, units, extreme numbers, quotes.
const DICTIONARY: &[&str] = &[
    "interval = \"1ns\"\n",
    "interval = \"10000000000years\"\n",
    "duration = \"18446744073709551615s\"\n",
    "deadline = \"0s\"\n",
    "memory = \"99999999999999GiB\"\n",
    "probe-rate = 4000000000\n",
    "probe-rate = -1\n",
    "percent = 255\n",
    "config = { steps = [100, 10] }\n",
    "allow-hosts = [\"u:p@h\", \"*\", \"[::1\"]\n",
    "[[stage]]\nname = \"z\"\n",
    "${UNSET_VARIABLE}",
    "$${",
    "\"",
    "\u{0}",
    "é",
    "{\"at\":18446744073709551615,\"event\":\"run-finished\",\"outcome\":\"passed\",\"summary\":\"\"}\n",
    "{\"at\":1,\"event\":\"stage-started\",\"stage\":\"s\",\"title\":\"t\"}\n",
    "\"observed\":1e400,",
    "\"percent\":300,",
    "\n",
];

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let insert = (
        any::<usize>(),
        prop_oneof![
            proptest::sample::select(DICTIONARY).prop_map(|w| w.as_bytes().to_vec()),
            proptest::collection::vec(any::<u8>(), 1..16),
        ],
    )
        .prop_map(|(at, bytes)| Edit::Insert(at, bytes));
    let edit = prop_oneof![
        4 => insert,
        2 => (any::<usize>(), 1usize..64).prop_map(|(at, n)| Edit::Delete(at, n)),
        1 => any::<usize>().prop_map(Edit::Truncate),
        1 => any::<usize>().prop_map(Edit::DuplicateLine),
    ];
    proptest::collection::vec(edit, 1..8)
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len();
        match e {
            Edit::Insert(at, b) => {
                let at = at % (len + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Edit::Delete(at, n) if len > 0 => {
                let at = at % len;
                bytes.drain(at..(at + n).min(len));
            }
            Edit::Truncate(at) => bytes.truncate(at % (len + 1)),
            Edit::DuplicateLine(at) if len > 0 => {
                let at = at % len;
                let start = bytes[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let end = bytes[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(len, |i| at + i + 1);
                let line = bytes[start..end].to_vec();
                bytes.splice(end..end, line);
            }
            _ => {}
        }
    }
    bytes
}

/// Corpus entries mutated, and text generated from scratch.
fn mutated(kind: &str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = corpus(kind);
    assert!(!seeds.is_empty(), "no corpus for {kind}");
    prop_oneof![
        8 => (proptest::sample::select(seeds), edits()).prop_map(|(seed, e)| apply(seed, &e)),
        1 => proptest::collection::vec(any::<u8>(), 0..512),
        1 => "\\PC{0,400}".prop_map(String::into_bytes),
    ]
}

#[test]
fn fuzz_the_runbook_reader_and_its_checks() {
    let catalog = Catalog::empty(Path::new("plugins"));
    let operations = [
        Operation::Playbook,
        Operation::Rollback {
            environment: "staging".into(),
            mode: launch_engine::RollbackMode::Full,
            reason: "fuzz".into(),
        },
        Operation::CanaryPromote {
            environment: "production".into(),
            percent: 255,
        },
        Operation::LaunchMonitor {
            environment: "production".into(),
            secs: u64::MAX,
        },
    ];
    let mut accepted = 0u64;
    fuzz("runbook", mutated("runbook"), |bytes| {
        let text = String::from_utf8_lossy(bytes);
        if let Ok(runbook) = Runbook::parse(&text, "fuzz.toml") {
            accepted += 1;
            // What the reader accepts, the later checks and the planner take without panic.
            let _ = consistency::validate(&runbook, &catalog);
            for op in &operations {
                let _ = plan(op, &runbook, &catalog);
            }
            for stage in &runbook.stages {
                let _ = (stage.config_json(), stage.title(), stage.action());
            }
        }
    });
    // Mutations must reach past the reader, or the later checks go untested.
    println!("fuzz runbook: {accepted} inputs accepted and planned");
    assert!(accepted > 0, "no mutated runbook was accepted");
}

#[test]
fn fuzz_the_journal_reader() {
    let mut read = 0u64;
    fuzz("journal", mutated("journal"), |bytes| {
        // A torn last line is dropped; any other bad line is an error naming it, never a panic.
        if let Ok(records) = Journal::parse(bytes) {
            read += 1;
            for r in &records {
                let _ = r.event.stage();
            }
        }
    });
    println!("fuzz journal: {read} inputs read as journals");
    assert!(read > 0, "no mutated journal was read");
}

/// What a plugin can return: any verdict, any check, any number, any string.
fn verdicts() -> impl Strategy<Value = Verdict> {
    let text = "\\PC{0,80}|[<>&\"'\\x00-\\x1f]{0,8}";
    prop_oneof![
        Just(Verdict::Pass),
        text.prop_map(Verdict::Fail),
        text.prop_map(Verdict::Inconclusive),
        text.prop_map(Verdict::NoData),
    ]
}

fn numbers() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        Just(None),
        any::<f64>().prop_map(Some),
        proptest::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            1e308,
            f64::MIN_POSITIVE
        ])
        .prop_map(Some),
    ]
}

fn plugin_checks() -> impl Strategy<Value = Vec<Check>> {
    let check = (
        "\\PC{0,40}",
        verdicts(),
        numbers(),
        numbers(),
        "\\PC{0,8}",
        "\\PC{0,120}",
    )
        .prop_map(|(name, verdict, observed, threshold, unit, detail)| Check {
            name,
            verdict,
            observed,
            threshold,
            unit,
            detail,
        });
    proptest::collection::vec(check, 0..12)
}

#[test]
fn fuzz_the_handling_of_plugin_results() {
    let dir = tempfile::tempdir().unwrap();
    let strategy = (
        verdicts(),
        plugin_checks(),
        "\\PC{0,200}",
        any::<u8>(),
        "\\PC{0,30}",
    );
    fuzz(
        "plugin-results",
        strategy,
        |(verdict, checks, summary, percent, action)| {
            let run = dir.path().join("run");
            let _ = std::fs::remove_dir_all(&run);
            std::fs::create_dir_all(&run).unwrap();
            let mut journal = Journal::open(&run.join("journal.jsonl")).unwrap();
            let checks: Vec<CheckRecord> = record::checks(checks);
            let verdict = VerdictRecord::from(verdict);
            let events = [
                Event::StageStarted {
                    stage: "s".into(),
                    title: summary.clone(),
                },
                Event::Decision {
                    stage: "s".into(),
                    percent: *percent,
                    action: action.clone(),
                    summary: summary.clone(),
                    checks: checks.clone(),
                    plugin: action.clone(),
                    call: None,
                },
                Event::StageFinished {
                    stage: "s".into(),
                    verdict: verdict.clone(),
                    checks,
                    summary: summary.clone(),
                    plugin: Some(action.clone()),
                    dry_run: false,
                    outcome: verdict.reason().to_string(),
                    elapsed_ms: u64::MAX,
                },
                Event::RunFinished {
                    outcome: Outcome::GateFailed,
                    summary: summary.clone(),
                },
            ];
            for e in events {
                journal.append(e).unwrap();
            }
            // Every record written reads back, and every report renders.
            let records = Journal::read(&run.join("journal.jsonl")).unwrap();
            assert_eq!(records.len(), 4);
            report::write_all(&run).unwrap();
        },
    );
}

/// A `files` entry: path pieces an attacker would try — `..`, absolute roots, empty names,
/// dots, symlinks planted in the folder, long lists.
fn grant_entry() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("..".to_string()),
        Just(".".to_string()),
        Just(String::new()),
        Just("dist".to_string()),
        Just("link-out".to_string()),
        Just("link-in".to_string()),
        Just("/etc".to_string()),
        Just("~".to_string()),
        "[a-z.]{1,6}",
    ];
    proptest::collection::vec(piece, 1..5).prop_map(|p| p.join("/"))
}

#[test]
fn fuzz_the_folders_a_runbook_grants() {
    // A runbook's folder with a build, a symlink that leads out and one that stays in.
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dist/assets")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link-out")).unwrap();
    std::os::unix::fs::symlink("dist", dir.path().join("link-in")).unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let book = dir.path().join("launch.toml");
    let mut granted = 0u64;
    fuzz(
        "grants",
        proptest::collection::vec(grant_entry(), 0..24),
        |entries| {
            let list: Vec<String> = entries
                .iter()
                .map(|e| serde_json::to_string(e).unwrap())
                .collect();
            let text = format!(
                "[launch]\nname = \"x\"\nflag = \"F\"\n[environments.staging]\ntarget = \"embedded\"\n[[stage]]\nname = \"s\"\nplugin = \"p\"\nfiles = [{}]\n",
                list.join(", ")
            );
            let Ok(runbook) = Runbook::parse(&text, book.to_str().unwrap()) else {
                return;
            };
            // Whatever the reader accepts is short, relative and without `..` ...
            let stage = &runbook.stages[0];
            assert!(stage.files.len() <= 16, "{entries:?}");
            for f in &stage.files {
                let p = Path::new(f.get_ref());
                assert!(!p.has_root() && !f.get_ref().is_empty(), "{entries:?}");
                assert!(!p.components().any(|c| c == std::path::Component::ParentDir));
            }
            // ... and whatever is granted on disk is inside the runbook's folder.
            if let Ok(dirs) = runbook.granted_dirs(stage) {
                granted += 1;
                for d in dirs {
                    assert!(
                        d.host.starts_with(&root),
                        "{} left {}",
                        d.host.display(),
                        root.display()
                    );
                }
            }
        },
    );
    println!("fuzz grants: {granted} grant lists opened, all inside");
}

#[test]
fn fuzz_files_of_any_size_are_read_within_their_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file");
    fuzz(
        "file sizes",
        (0usize..3 * 4096, 1u64..2 * 4096, any::<u8>()),
        |(len, max, byte)| {
            std::fs::write(&path, vec![*byte; *len]).unwrap();
            match launch_engine::files::read(&path, *max, "a file") {
                Ok(bytes) => assert!(bytes.len() as u64 <= *max && bytes.len() == *len),
                Err(e) => {
                    assert!(*len as u64 > *max, "{e:#}");
                    assert!(e.to_string().contains("is larger than"), "{e:#}");
                }
            }
            // A journal of that size parses line by line without reading past its lines.
            let _ = Journal::parse(&vec![*byte; *len]);
        },
    );
}
