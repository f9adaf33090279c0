//! The runs a server shows: the workspace's run folders, and with `--state` the runs mirrored
//! in S3 (fetched into the workspace's runs folder, as `status --state` does), newest first.

use std::path::PathBuf;

use askama::Template;

use launch_engine::report::RunReport;

/// One line of the runs list.
pub struct RunRow {
    pub id: String,
    pub outcome: String,
    pub stage: String,
    pub started: String,
    pub by: String,
    pub duration: String,
}

impl RunRow {
    fn of(id: &str, r: &RunReport) -> RunRow {
        RunRow {
            id: id.to_string(),
            outcome: r.outcome.clone(),
            stage: r.stages.last().map(|s| s.title.clone()).unwrap_or_default(),
            started: humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.started_ms),
            )
            .to_string(),
            by: r.started_by.clone().unwrap_or_default(),
            duration: match r.finished_ms {
                Some(f) => format!("{:.1} s", f.saturating_sub(r.started_ms) as f64 / 1000.0),
                None => "running".into(),
            },
        }
    }
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage<'a> {
    source: &'a str,
    runs: &'a [RunRow],
    errors: &'a [String],
}

/// Where the runs are.
#[derive(Clone)]
pub struct Runs {
    pub dir: PathBuf,
    pub state: Option<String>,
}

impl Runs {
    /// A run's folder, when `id` is one folder name of a run (never a path out of the folder).
    pub fn folder(&self, id: &str) -> Option<PathBuf> {
        let id = plain_id(id)?;
        let dir = self.dir.join(id);
        dir.join("journal.jsonl").is_file().then_some(dir)
    }

    /// Brings the mirrored runs that are not here yet (and refreshes unfinished ones).
    pub async fn sync(&self) -> Vec<String> {
        let Some(url) = &self.state else {
            return Vec::new();
        };
        let ids = match launch_engine::mirror::list(url).await {
            Ok(ids) => ids,
            Err(e) => return vec![format!("{url}: {e:#}")],
        };
        let mut errors = Vec::new();
        for id in ids {
            let here = self.dir.join(&id);
            let finished = RunReport::from_journal(&here).is_ok_and(|r| r.finished_ms.is_some());
            if finished {
                continue;
            }
            if let Err(e) =
                launch_engine::workspace::find_run(&self.dir, Some(&id), Some(url)).await
            {
                errors.push(format!("{id}: {e:#}"));
            }
        }
        errors
    }

    /// The runs list page.
    pub async fn page(&self) -> String {
        let errors = self.sync().await;
        let mut rows: Vec<RunRow> = launch_engine::workspace::runs(&self.dir)
            .iter()
            .filter_map(|id| {
                RunReport::from_journal(&self.dir.join(id))
                    .ok()
                    .map(|r| RunRow::of(id, &r))
            })
            .collect();
        rows.reverse();
        let source = match &self.state {
            Some(url) => format!("{} and {url}", self.dir.display()),
            None => self.dir.display().to_string(),
        };
        RunsPage {
            source: &source,
            runs: &rows,
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
