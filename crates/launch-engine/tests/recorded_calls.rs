//! A canary's calls read back the same whether the journal holds them in their decisions (as
//! runs write them now) or as `call` records before them (as runs wrote them before): replay,
//! backtest and `--save-fixtures` see one history.

use launch_engine::journal::{Event, Inputs, Journal};
use launch_engine::lab::answer::{action_word, decided_call};
use launch_engine::lab::fixture::Fixture;
use launch_engine::lab::record::{CallStore, CanaryCalls, Saved};
use launch_engine::lab::replay::{RecordedCall, recorded};
use launch_engine::record::{EndpointRecord, WindowRecord};
use launch_runtime::types::{Action, CanaryState};
use launch_targets::probe::Served;

fn window(i: u64) -> WindowRecord {
    let side = |served, base: f64| EndpointRecord {
        endpoint: "board".into(),
        served: Some(served),
        requests: 100,
        errors: i,
        conflicts: 0,
        p50_ms: base,
        p95_ms: base + 40.0,
        p99_ms: base + 50.0,
        avg_ms: base,
        max_ms: base + 60.0,
        latencies_ms: vec![base, base + 1.0, base + i as f64],
        missing: Vec::new(),
    };
    WindowRecord {
        start_ms: 1_800_000_000_000 + i * 1000,
        duration_ms: 1000,
        percent: 10,
        endpoints: vec![side(Served::Canary, 90.0), side(Served::Baseline, 80.0)],
        sources: Vec::new(),
    }
}

/// What the policy answered at each window, and the summary its decision was journaled with:
/// stock words, a reason the summary does not say, a promotion.
fn answers() -> Vec<(Action, String)> {
    vec![
        (
            Action::Hold("too few requests".into()),
            "hold: too few requests".into(),
        ),
        (
            Action::Hold("p95 rising".into()),
            "waiting (paused by ops)".into(),
        ),
        (Action::Promote(30), "promote 30: healthy".into()),
    ]
}

/// Writes a canary's three windows and decisions, each call recorded the new way (in its
/// decision) or the old one (a `call` record before it).
fn write(run: &std::path::Path, in_decision: bool) {
    let mut journal = Journal::open(&run.join("journal.jsonl")).unwrap();
    let mut store = CallStore::new(run);
    let config = serde_json::json!({"steps": [10, 30], "mode": "statistical"});
    let map = config.as_object().cloned().unwrap();
    let mut recorder = CanaryCalls::new("canary", map);
    for (i, (action, summary)) in answers().into_iter().enumerate() {
        let i = i as u64;
        journal
            .append(Event::Window {
                stage: "canary".into(),
                environment: "production".into(),
                window: window(i),
            })
            .unwrap();
        let state = CanaryState {
            percent: 10,
            step_index: 0,
            step_elapsed_ms: (i + 1) * 1000,
            total_elapsed_ms: (i + 1) * 1000,
        };
        let history = (Some(0), i + 1);
        let call = if in_decision {
            Some(recorder.call(&mut store, &state, history, &action, &summary))
        } else {
            let fixture = Fixture::canary("canary-steps", config.clone(), &state);
            let Saved::Inline(rendered) = store.save("canary", fixture).unwrap() else {
                panic!("a canary call's inputs are small");
            };
            let kept = decided_call(&action, &summary);
            journal
                .append_unsynced(Event::Call {
                    stage: "canary".into(),
                    plugin: "canary-steps".into(),
                    input: String::new(),
                    inputs: Some(Inputs::Rendered(rendered)),
                    windows: Vec::new(),
                    history_from: history.0,
                    history_len: history.1,
                    answer: kept.answer,
                    reason: kept.reason,
                    checks: kept.checks,
                })
                .unwrap();
            None
        };
        journal
            .append(Event::Decision {
                stage: "canary".into(),
                percent: 10,
                action: action_word(&action),
                summary,
                checks: Vec::new(),
                plugin: "canary-steps".into(),
                call,
            })
            .unwrap();
    }
}

fn read(in_decision: bool) -> (Vec<RecordedCall>, String) {
    let run = tempfile::tempdir().unwrap();
    write(run.path(), in_decision);
    let journal = std::fs::read_to_string(run.path().join("journal.jsonl")).unwrap();
    (recorded(run.path()).unwrap(), journal)
}

#[test]
fn a_canary_call_in_its_decision_reads_back_as_its_own_record_did() {
    let (new, journal) = read(true);
    let (old, _) = read(false);
    assert_eq!(new.len(), 3);
    assert!(!journal.contains(r#""event":"call""#), "{journal}");
    // The config once, in the first decision; the reason only where the summary does not
    // say it: the paused hold's, and the promotion's (empty, while its summary says more).
    assert_eq!(journal.matches(r#""config""#).count(), 1, "{journal}");
    assert_eq!(journal.matches(r#""reason""#).count(), 2, "{journal}");
    for (n, o) in new.iter().zip(&old) {
        assert_eq!(
            serde_json::to_value(&n.fixture).unwrap(),
            serde_json::to_value(&o.fixture).unwrap()
        );
        assert_eq!(
            (&n.stage, &n.plugin, &n.answer, &n.reason),
            (&o.stage, &o.plugin, &o.answer, &o.reason)
        );
    }
    // Whole: the config, the state, the history the policy saw, what it answered.
    let last = &new[2].fixture;
    assert_eq!(last.config["mode"], "statistical");
    let canary = last.canary.as_ref().unwrap();
    assert_eq!((canary.step_elapsed_ms, canary.history.len()), (3000, 3));
    assert_eq!(last.expect.action.as_deref(), Some("promote 30"));
    assert_eq!(new[1].reason, "p95 rising");
}
