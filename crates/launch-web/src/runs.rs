//! The runs a server shows: the workspace's run folders, and with `--state` every run
//! mirrored under the state location — listed from the runs' summaries (`launch/index/`) and
//! leases, never from their files; a mirrored run's files are fetched when its page is opened.

use std::collections::BTreeSet;
use std::path::PathBuf;

use askama::Template;

use launch_engine::fleet::Row;

/// What the fleet page shows: every field empty shows everything.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub environment: String,
    #[serde(default)]
    pub outcome: String,
}

impl Filter {
    fn keeps(&self, row: &Row) -> bool {
        let s = &row.summary;
        (self.service.is_empty() || s.launch == self.service)
            && (self.environment.is_empty() || s.environments.contains(&self.environment))
            && (self.outcome.is_empty() || s.outcome == self.outcome)
    }
}

/// One filter's choices: (value, shown, selected), "all" first.
pub struct Choices {
    pub name: &'static str,
    pub label: &'static str,
    pub options: Vec<(String, String, bool)>,
}

impl Choices {
    fn of<'a>(
        name: &'static str,
        label: &'static str,
        values: impl Iterator<Item = &'a str>,
        chosen: &str,
    ) -> Choices {
        let values: BTreeSet<&str> = values.filter(|v| !v.is_empty()).collect();
        let mut options = vec![(String::new(), "all".to_string(), chosen.is_empty())];
        options.extend(
            values
                .into_iter()
                .map(|v| (v.to_string(), v.to_string(), v == chosen)),
        );
        Choices {
            name,
            label,
            options,
        }
    }
}

/// One line of the runs list.
pub struct RunRow {
    pub id: String,
    pub launch: String,
    pub environments: String,
    pub outcome: String,
    pub stage: String,
    pub started: String,
    pub by: String,
    pub duration: String,
    /// Who holds the run's lease and how long ago it renewed, while it is held.
    pub owner: String,
    pub takeovers: String,
}

impl RunRow {
    fn of(row: &Row) -> RunRow {
        let s = &row.summary;
        RunRow {
            id: s.run_id.clone(),
            launch: s.launch.clone(),
            environments: s.environments.join(", "),
            outcome: s.outcome.clone(),
            stage: s.stage.clone().unwrap_or_default(),
            started: humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(s.started_ms),
            )
            .to_string(),
            by: s.started_by.clone().unwrap_or_default(),
            duration: match s.finished_ms {
                Some(f) => format!("{:.1} s", f.saturating_sub(s.started_ms) as f64 / 1000.0),
                None => "running".into(),
            },
            owner: match (&row.owner, row.lease_age_ms) {
                (Some(who), Some(age)) => {
                    format!("{who} (renewed {:.1} s ago)", age as f64 / 1000.0)
                }
                _ => String::new(),
            },
            takeovers: s
                .takeovers
                .iter()
                .map(|t| format!("{} ← {}", t.by, t.from))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage<'a> {
    source: &'a str,
    runs: &'a [RunRow],
    /// How many runs there are before the filters.
    total: usize,
    running: usize,
    filters: Vec<Choices>,
    errors: &'a [String],
}

/// Where the runs are.
#[derive(Clone)]
pub struct Runs {
    pub dir: PathBuf,
    pub state: Option<String>,
    /// Where the runs' summaries are kept between loads (by version), if anywhere.
    pub cache: Option<PathBuf>,
}

impl Runs {
    /// A run's folder, when `id` is one folder name of a run (never a path out of the folder).
    pub fn folder(&self, id: &str) -> Option<PathBuf> {
        let id = plain_id(id)?;
        let dir = self.dir.join(id);
        dir.join("journal.jsonl").is_file().then_some(dir)
    }

    /// Run `id`'s folder, fetched from the shared state first unless a finished copy is here:
    /// only the run whose page is opened is fetched.
    pub async fn open(&self, id: &str) -> Option<PathBuf> {
        let id = plain_id(id)?;
        let here = self.folder(id);
        let finished = here.as_deref().is_some_and(|d| {
            launch_engine::fleet::Summary::of_run(d).is_ok_and(|s| s.finished_ms.is_some())
        });
        if let (Some(url), false) = (&self.state, finished) {
            // A fetch that fails leaves what is here (if anything) to be shown.
            let _ = launch_engine::workspace::find_run(&self.dir, Some(id), Some(url)).await;
        }
        self.folder(id)
    }

    /// Every run: the mirrored ones from their summaries, then the local ones not mirrored.
    async fn rows(&self) -> (Vec<Row>, Vec<String>) {
        let cache = |what: &str| self.cache.as_ref().map(|c| c.join(what));
        let mut errors = Vec::new();
        let mut rows = match &self.state {
            Some(url) => match launch_engine::fleet::list(url, cache("shared").as_deref()).await {
                Ok(rows) => rows,
                Err(e) => {
                    errors.push(format!("{url}: {e:#}"));
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let shared: BTreeSet<String> = rows.iter().map(|r| r.summary.run_id.clone()).collect();
        let (dir, local_cache) = (self.dir.clone(), cache("local"));
        let local = tokio::task::spawn_blocking(move || {
            launch_engine::fleet::local(&dir, local_cache.as_deref())
        })
        .await
        .unwrap_or_default();
        rows.extend(
            local
                .into_iter()
                .filter(|r| !shared.contains(&r.summary.run_id)),
        );
        rows.sort_by(|a, b| b.summary.run_id.cmp(&a.summary.run_id));
        (rows, errors)
    }

    /// The fleet page: the runs `filter` keeps, those running first, then newest first.
    pub async fn page(&self, filter: &Filter) -> String {
        let (mut rows, errors) = self.rows().await;
        rows.sort_by_key(|r| r.summary.finished_ms.is_some());
        let choices = |name, label, field: fn(&Row) -> Vec<&str>, chosen: &str| {
            Choices::of(name, label, rows.iter().flat_map(field), chosen)
        };
        let filters = vec![
            choices(
                "service",
                "service",
                |r| vec![r.summary.launch.as_str()],
                &filter.service,
            ),
            choices(
                "environment",
                "environment",
                |r| r.summary.environments.iter().map(String::as_str).collect(),
                &filter.environment,
            ),
            choices(
                "outcome",
                "outcome",
                |r| vec![r.summary.outcome.as_str()],
                &filter.outcome,
            ),
        ];
        let total = rows.len();
        let kept: Vec<RunRow> = rows
            .iter()
            .filter(|r| filter.keeps(r))
            .map(RunRow::of)
            .collect();
        let source = match &self.state {
            Some(url) => format!("{} and {url}", self.dir.display()),
            None => self.dir.display().to_string(),
        };
        RunsPage {
            source: &source,
            running: kept.iter().filter(|r| r.duration == "running").count(),
            runs: &kept,
            total,
            filters,
            errors: &errors,
        }
        .render()
        .unwrap_or_else(|e| format!("<p>{e}</p>"))
    }
}

/// `id` when it is a single, plain folder name.
fn plain_id(id: &str) -> Option<&str> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_ids_name_a_folder() {
        assert!(super::plain_id("20261128T101500123Z-ab12").is_some());
        for bad in ["..", "a/b", "", "../../etc", "a b", "%2e%2e"] {
            assert!(super::plain_id(bad).is_none(), "{bad}");
        }
    }
}
