//! The capability manifest that approvers sign: `uat approve` records the builds of the
//! runbook's plugins and what each may do; when a stage's grants change after the approval,
//! the UAT gate fails, naming who approved and what changed, until the sign-off is given again.
//! `plugins inspect` and the run's reports show the same manifest.

mod support;

use std::path::{Path, PathBuf};

use support::{local_runs, repo};

fn runbook(dir: &Path, smoke_grants: &str) -> PathBuf {
    let path = dir.join("launch.toml");
    std::fs::write(
        &path,
        format!(
            r#"[launch]
name = "approvals"
flag = "STATUS_BOARD_V2_ENABLED"

[environments.staging]
target = "embedded"

[[stage]]
name = "uat-init"
action = "uat-init"
plugin = "uat-signoff"
environment = "staging"

[[stage]]
name = "smoke"
plugin = "health-check"
environment = "staging"
{smoke_grants}

[[stage]]
name = "uat"
plugin = "uat-signoff"
environment = "staging"
config = {{ allow-skipped = true }}
"#
        ),
    )
    .unwrap();
    path
}

struct Workspace {
    dir: tempfile::TempDir,
    book: PathBuf,
}

impl Workspace {
    fn host(&self, args: &[&str]) -> (Option<i32>, String) {
        let plugins = repo().join("plugins");
        let ws = self.dir.path().join("ws");
        let mut all: Vec<&str> = args.to_vec();
        all.extend([
            "--plugins",
            plugins.to_str().unwrap(),
            "--runbook",
            self.book.to_str().unwrap(),
            "--workspace",
            ws.to_str().unwrap(),
        ]);
        support::launch_host_output(&[], &all)
    }

    fn approve(&self, role: &str, name: &str) {
        let (code, out) = self.host(&["uat", "approve", role, name, "approved", "looks good"]);
        assert_eq!(code, Some(0), "{out}");
        assert!(
            out.contains("this sign-off covers 3 plugin grant(s), sha256:"),
            "{out}"
        );
    }

    fn uat_gate(&self) -> (Option<i32>, String) {
        self.host(&["uat", "report", "--yes"])
    }

    fn last_report(&self) -> serde_json::Value {
        let run = local_runs(&self.dir.path().join("ws").join("runs"))
            .pop()
            .unwrap();
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap()
    }
}

fn scope_checks(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["stages"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("approval-scope:"))
        .cloned()
        .collect()
}

#[test]
fn changing_a_stage_allow_list_after_sign_off_fails_the_uat_gate_until_re_approved() {
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path(), "");
    let ws = Workspace { dir, book };
    let (code, out) = ws.host(&["uat", "init", "--yes"]);
    assert_eq!(code, Some(0), "{out}");
    ws.approve("qa_lead", "Alice");
    ws.approve("product_owner", "Bob");

    // Approved as the runbook stands: the gate passes, each approval's scope checked.
    let (code, out) = ws.uat_gate();
    assert_eq!(code, Some(0), "{out}");
    let report = ws.last_report();
    let checks = scope_checks(&report);
    assert_eq!(checks.len(), 2, "{report:#}");
    assert!(
        checks.iter().all(|c| c["verdict"]["kind"] == "pass"),
        "{checks:#?}"
    );
    // The run journals what its plugin may do; its reports show it.
    let caps = &report["capabilities"];
    assert_eq!(caps["grants"][0]["plugin"], "uat-signoff", "{caps:#}");
    assert!(
        caps["manifest_sha256"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    // The smoke stage may now reach one more host: what Alice and Bob approved no longer holds.
    runbook(ws.dir.path(), r#"allow-hosts = ["partner.example.com"]"#);
    let (code, out) = ws.uat_gate();
    assert_eq!(code, Some(1), "{out}");
    let report = ws.last_report();
    assert_eq!(report["outcome"], "gate-failed", "{report:#}");
    let checks = scope_checks(&report);
    let alice = checks
        .iter()
        .find(|c| c["name"] == "approval-scope:qa_lead")
        .unwrap();
    let why = alice["verdict"]["reason"].as_str().unwrap();
    assert!(
        why.contains("Alice's approved no longer holds")
            && why.contains(
                "stage `smoke`, plugin `health-check`: hosts now also partner.example.com"
            )
            && why.contains("uat approve qa_lead \"Alice\" approved"),
        "{why}"
    );
    assert!(
        out.contains("2 approval(s) given for other plugins or grants"),
        "{out}"
    );

    // Re-approved (one is not enough: Bob's still covers the old grants).
    ws.approve("qa_lead", "Alice");
    assert_eq!(ws.uat_gate().0, Some(1));
    ws.approve("product_owner", "Bob");
    let (code, out) = ws.uat_gate();
    assert_eq!(code, Some(0), "{out}");

    // The recorded sign-off names the manifest it approved and the grant it covers.
    let signoffs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.dir.path().join("ws/uat/signoffs.json")).unwrap())
            .unwrap();
    let scope = &signoffs[0]["scope"];
    let smoke = scope["manifest"]["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["stage"] == "smoke")
        .unwrap();
    assert_eq!(smoke["hosts"], serde_json::json!(["partner.example.com"]));
    assert_eq!(smoke["network"], serde_json::json!(["launch:plugin/http"]));
}

#[test]
fn inspect_shows_what_a_plugin_may_do_at_each_stage() {
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(
        dir.path(),
        r#"allow-hosts = ["partner.example.com"]
memory = "32MiB"
deadline = "3s""#,
    );
    let file = repo().join("plugins/health-check.wasm");
    // stdout alone: the JSON (stderr may say a build is compiled for its first load).
    let inspected = support::launch_host_with(&[])
        .args(["plugins", "inspect", file.to_str().unwrap(), "--runbook"])
        .arg(&book)
        .args(["--output", "json"])
        .output()
        .unwrap();
    let (code, out) = (
        inspected.status.code(),
        String::from_utf8_lossy(&inspected.stdout).to_string(),
    );
    assert_eq!(code, Some(0), "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let grants = json["capabilities"].as_array().unwrap();
    assert_eq!(grants.len(), 1, "{json:#}");
    let g = &grants[0];
    assert_eq!(g["stage"], "smoke");
    assert_eq!(g["hosts"], serde_json::json!(["partner.example.com"]));
    assert_eq!(g["environment"], "staging");
    assert_eq!(g["memory-bytes"], 32 << 20);
    assert_eq!(g["deadline-ms"], 3000);
    assert_eq!(g["sha256"], json["digest"]);

    // For people: the same, in the operator's words.
    let (code, out) = support::launch_host_output(
        &[],
        &[
            "plugins",
            "inspect",
            file.to_str().unwrap(),
            "--runbook",
            book.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("stage `smoke`:")
            && out.contains("launch:plugin/http to environment `staging`, partner.example.com")
            && out.contains("32 MiB"),
        "{out}"
    );
}
