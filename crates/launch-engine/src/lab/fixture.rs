//! A fixture: one plugin call's inputs and what must come back, in TOML or JSON, so a policy
//! can be tested offline like `opa test`. Its format is documented in docs/plugins.md.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::record::{EndpointRecord, WindowRecord};
use crate::uat::{Decision, Outcome};
use launch_runtime::types as wit;
use launch_targets::probe::Served;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Fixture {
    /// What the fixture shows, for the listing; the file name when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The plugin it tests, by its `describe` name; required when a folder of plugins is tested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uat: Option<UatInput>,
    /// The target a smoke suite or step is called with; its hosts are the only ones granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetInput>,
    /// Canned HTTP exchanges (`[[http]]`): when present, the plugin's requests are answered
    /// from them, each once and in order, and never reach the network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<Vec<launch_runtime::Exchange>>,
    pub expect: Expect,
    /// Where it was read from (set by `load`).
    #[serde(skip)]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CanaryInput {
    #[serde(default)]
    pub percent: u8,
    #[serde(default)]
    pub step_index: u32,
    #[serde(default)]
    pub step_elapsed_ms: u64,
    #[serde(default)]
    pub total_elapsed_ms: u64,
    /// Windows since the last promotion, oldest first.
    #[serde(default)]
    pub history: Vec<CanaryWindowInput>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CanaryWindowInput {
    #[serde(default)]
    pub start_ms: u64,
    #[serde(default = "minute")]
    pub duration_ms: u64,
    #[serde(default)]
    pub canary: Vec<EndpointInput>,
    #[serde(default)]
    pub baseline: Vec<EndpointInput>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SloInput {
    pub windows: Vec<MetricWindowInput>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricWindowInput {
    #[serde(default)]
    pub start_ms: u64,
    #[serde(default = "minute")]
    pub duration_ms: u64,
    pub endpoints: Vec<EndpointInput>,
}

fn minute() -> u64 {
    60_000
}

/// An endpoint's numbers; what is left out is 0 (and p50/p99/avg/max default to p95).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EndpointInput {
    #[serde(default = "all")]
    pub endpoint: String,
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub errors: u64,
    #[serde(default)]
    pub conflicts: u64,
    #[serde(default)]
    pub p95_ms: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avg_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<f64>,
    #[serde(default)]
    pub latencies_ms: Vec<f64>,
}

fn all() -> String {
    "all".into()
}

impl EndpointInput {
    fn record(&self, served: Option<Served>) -> EndpointRecord {
        let p95 = self.p95_ms;
        EndpointRecord {
            endpoint: self.endpoint.clone(),
            served,
            requests: self.requests,
            errors: self.errors,
            conflicts: self.conflicts,
            p50_ms: self.p50_ms.unwrap_or(p95),
            p95_ms: p95,
            p99_ms: self.p99_ms.unwrap_or(p95),
            avg_ms: self.avg_ms.unwrap_or(p95),
            max_ms: self.max_ms.unwrap_or(p95),
            latencies_ms: self.latencies_ms.clone(),
            missing: Vec::new(),
        }
    }
}

impl EndpointInput {
    fn from_record(w: &WindowRecord, e: &EndpointRecord) -> EndpointInput {
        EndpointInput {
            endpoint: e.endpoint.clone(),
            requests: e.requests,
            errors: e.errors,
            conflicts: e.conflicts,
            p95_ms: e.p95_ms,
            p50_ms: Some(e.p50_ms),
            p99_ms: Some(e.p99_ms),
            avg_ms: Some(e.avg_ms),
            max_ms: Some(e.max_ms),
            latencies_ms: w.latencies(e),
        }
    }
}

impl CanaryWindowInput {
    /// The window as a canary policy saw it: canary and baseline apart.
    pub fn from_record(w: &WindowRecord) -> CanaryWindowInput {
        let side = |served| {
            w.endpoints
                .iter()
                // As the policy saw it: a record with a measure missing was never shown.
                .filter(|e| e.served == Some(served) && e.is_complete())
                .map(|e| EndpointInput::from_record(w, e))
                .collect()
        };
        CanaryWindowInput {
            start_ms: w.start_ms,
            duration_ms: w.duration_ms,
            canary: side(Served::Canary),
            baseline: side(Served::Baseline),
        }
    }

    pub fn record(&self, percent: u8) -> WindowRecord {
        let canary = self.canary.iter().map(|e| e.record(Some(Served::Canary)));
        let baseline = self
            .baseline
            .iter()
            .map(|e| e.record(Some(Served::Baseline)));
        WindowRecord {
            start_ms: self.start_ms,
            duration_ms: self.duration_ms,
            percent,
            endpoints: canary.chain(baseline).collect(),
            sources: Vec::new(),
        }
    }
}

impl MetricWindowInput {
    /// The window as an SLO gate saw it: both versions together.
    pub fn from_record(w: &WindowRecord) -> MetricWindowInput {
        MetricWindowInput {
            start_ms: w.start_ms,
            duration_ms: w.duration_ms,
            endpoints: w
                .endpoints
                .iter()
                .filter(|e| e.served.is_none() && e.is_complete())
                .map(|e| EndpointInput::from_record(w, e))
                .collect(),
        }
    }

    pub fn record(&self) -> WindowRecord {
        WindowRecord {
            start_ms: self.start_ms,
            duration_ms: self.duration_ms,
            percent: 0,
            endpoints: self.endpoints.iter().map(|e| e.record(None)).collect(),
            sources: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UatInput {
    #[serde(default)]
    pub results: Vec<UatResultInput>,
    #[serde(default)]
    pub signoffs: Vec<SignoffInput>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UatResultInput {
    pub id: String,
    pub outcome: Outcome,
    #[serde(default)]
    pub tester: String,
    #[serde(default)]
    pub notes: String,
    /// When it was recorded; the latest result of an item wins.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub at_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SignoffInput {
    pub role: String,
    #[serde(default)]
    pub name: String,
    pub decision: Decision,
    #[serde(default)]
    pub note: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub at_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl UatInput {
    /// The results and sign-offs as the contract carries them.
    pub fn wit(&self) -> (Vec<wit::UatResult>, Vec<wit::Signoff>) {
        let results = self
            .results
            .iter()
            .map(|r| wit::UatResult {
                id: r.id.clone(),
                outcome: r.outcome.wit(),
                tester: r.tester.clone(),
                notes: r.notes.clone(),
                at_ms: r.at_ms,
            })
            .collect();
        let signoffs = self
            .signoffs
            .iter()
            .map(|s| wit::Signoff {
                role: s.role.clone(),
                name: s.name.clone(),
                decision: s.decision.wit(),
                note: s.note.clone(),
                at_ms: s.at_ms,
            })
            .collect();
        (results, signoffs)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TargetInput {
    #[serde(default = "staging")]
    pub environment: String,
    pub base_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_id: Option<String>,
}

fn staging() -> String {
    "staging".into()
}

/// What must come back; only what is given is compared.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expect {
    /// `pass`, `fail`, `inconclusive` or `no-data` (smoke suites, SLO gates, UAT, steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// `promote`, `promote 30`, `hold`, `rollback` or `complete` (canary policies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Text the verdict's or action's reason must contain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_contains: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary_contains: Option<String>,
    /// Check name → its verdict word (`pass`, `fail`, `inconclusive`, `no-data`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub checks: std::collections::BTreeMap<String, String>,
    /// The call must take at most this long, e.g. "50ms".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
}

impl Fixture {
    /// A fixture with no inputs yet, for `plugin` with `config`.
    pub fn new(plugin: &str, config: serde_json::Value) -> Fixture {
        Fixture {
            description: None,
            plugin: Some(plugin.to_string()),
            config: match config {
                serde_json::Value::Object(map) => map,
                _ => serde_json::Map::new(),
            },
            canary: None,
            slo: None,
            uat: None,
            target: None,
            http: None,
            expect: Expect::default(),
            file: PathBuf::new(),
        }
    }

    /// The inputs of a canary decision but its history (a recorded call names the run's
    /// windows instead).
    pub fn canary(plugin: &str, config: serde_json::Value, state: &wit::CanaryState) -> Fixture {
        let mut f = Fixture::new(plugin, config);
        f.canary = Some(CanaryInput {
            percent: state.percent,
            step_index: state.step_index,
            step_elapsed_ms: state.step_elapsed_ms,
            total_elapsed_ms: state.total_elapsed_ms,
            history: Vec::new(),
        });
        f
    }

    /// Reads a `.toml` or `.json` fixture; errors name the file and line.
    pub fn load(path: &Path) -> anyhow::Result<Fixture> {
        let text = crate::files::read_to_string(path, crate::files::FIXTURE, "the fixture")?;
        let mut fixture: Fixture = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), e.line()))?
        } else {
            toml::from_str(&text).map_err(|e| {
                let line = e
                    .span()
                    .map_or(0, |s| crate::runbook::line_of(&text, s.start));
                anyhow::anyhow!("{}:{line}: {}", path.display(), e.message().trim())
            })?
        };
        fixture.file = path.to_path_buf();
        Ok(fixture)
    }

    /// The fixture's name in listings: its description, else its file name.
    pub fn name(&self) -> String {
        self.description.clone().unwrap_or_else(|| {
            self.file
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
        })
    }
}

/// Fixture files under `root`: every `.toml` and `.json` in a folder named `fixtures`, sorted.
pub fn discover(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    // Build outputs and dependencies hold no fixtures of ours.
    let ours = |dir: &Path| {
        !dir.file_name()
            .is_some_and(|n| n == "target" || n == "node_modules" || n == ".git")
    };
    let fixture = |path: &PathBuf| {
        path.parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == "fixtures")
            && path.extension().is_some_and(|e| e == "toml" || e == "json")
    };
    let files = launch_targets::store::files_under(root, ours)?;
    Ok(files.into_iter().filter(fixture).collect())
}
