//! Reading a run's journal into its `RunReport`: one arm per journal event, each saying what
//! that event adds to the report (the journal is the reports' only source).

use std::path::Path;

use anyhow::Context;

use super::{
    Capabilities, ControlReport, DecisionReport, RunReport, ShadowAnswer, SignedReport,
    StageReport, TakeoverReport, Undelivered,
};
use crate::journal::{Event, Journal};

impl RunReport {
    /// The latest attempt of `name` (a resumed stage starts again).
    fn stage_mut(&mut self, name: &str) -> Option<&mut StageReport> {
        self.stages.iter_mut().rev().find(|s| s.name == name)
    }

    /// The report of the run in `run_dir` as it stands: from its journal — or, when the
    /// journal was lost mid-run, from what the run salvaged, as a host failure — and for a run
    /// that has not finished, whether its process still runs (`running`) or not
    /// (`interrupted`: `resume` continues it).
    pub fn from_journal(run_dir: &Path) -> anyhow::Result<RunReport> {
        let mut report = RunReport::read(run_dir)?;
        if let Some(f) = crate::journal::HostFailed::of_run(run_dir) {
            report.outcome = crate::record::Outcome::HostFailed.word().into();
            report.summary = f.reason;
        } else if report.finished_ms.is_none() {
            match crate::owner::Owner::of_run(run_dir) {
                Some(o) if o.process.alive() != Some(false) => {
                    report.summary = format!("in progress: {}", o.who());
                }
                // A copy fetched from where it runs: no owner record here to tell.
                None if !run_dir.join(crate::owner::FILE).exists() => {
                    report.summary = "started elsewhere: whether its process still runs is not known here (`launch-host resume` refuses while its owner lives)".into();
                }
                _ => {
                    report.outcome = "interrupted".into();
                    report.summary = format!(
                        "interrupted: no process is running it; `launch-host resume {}` continues it",
                        report.run_id
                    );
                }
            }
        }
        Ok(report)
    }

    /// The report of the journal in `run_dir` (or of what a run that lost its journal
    /// salvaged), as its files say — the same however long after, which is what the report
    /// files hold and `verify` rebuilds.
    pub fn read(run_dir: &Path) -> anyhow::Result<RunReport> {
        let failed = crate::journal::HostFailed::of_run(run_dir);
        let name = match &failed {
            Some(f) => f.salvaged.as_deref().unwrap_or("journal.jsonl"),
            None => "journal.jsonl",
        };
        let path = run_dir.join(name);
        let folder = launch_targets::rooted::Rooted::open(run_dir, false)
            .with_context(|| format!("reading the journal {}", path.display()))?;
        let bytes =
            crate::files::read_rooted(&folder, name, crate::journal::MAX_BYTES, "the journal");
        match (bytes, &failed) {
            (Ok(bytes), _) => {
                RunReport::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))
            }
            (Err(_), Some(_)) => RunReport::from_bytes(b"").map_err(|e| anyhow::anyhow!(e)),
            (Err(e), None) => Err(e),
        }
    }

    /// The report of a journal's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<RunReport, String> {
        let records = Journal::parse(bytes)?;
        let journal_sha256 = crate::journal::lines(bytes)
            .last()
            .map(|l| crate::journal::line_hash(l))
            .unwrap_or_default();
        let mut report = RunReport {
            run_id: String::new(),
            launch: String::new(),
            flag: String::new(),
            environments: Vec::new(),
            runbook: String::new(),
            outcome: "running".into(),
            summary: String::new(),
            started_ms: records.first().map_or(0, |r| r.at),
            started_by: None,
            finished_ms: None,
            plugins: Vec::new(),
            capabilities: None,
            stages: Vec::new(),
            planned: Vec::new(),
            journal_sha256,
            undelivered: Vec::new(),
            signed: None,
            uat: None,
            takeovers: Vec::new(),
        };
        for r in records {
            match r.event {
                Event::RunStarted {
                    run_id,
                    runbook,
                    plugins,
                    started_by,
                    launch,
                    flag,
                    environments,
                    ..
                } => {
                    report.run_id = run_id;
                    report.runbook = runbook;
                    report.plugins = plugins;
                    report.started_by = started_by;
                    report.launch = launch;
                    report.flag = flag;
                    report.environments = environments;
                }
                Event::Planned { stages } => report.planned = stages,
                Event::Capabilities {
                    manifest_sha256,
                    grants,
                } => {
                    report.capabilities = Some(Capabilities {
                        manifest_sha256,
                        grants,
                    })
                }
                Event::StageStarted { stage, title } => {
                    report.stages.push(StageReport::started(stage, title))
                }
                Event::EffectDone { stage, detail, .. } => {
                    if let Some(s) = report.stage_mut(&stage) {
                        s.effects.push(detail);
                    }
                }
                Event::FlagRestored {
                    stage,
                    environment,
                    flag,
                    percent,
                    restored,
                    ..
                } => {
                    if let Some(s) = report.stage_mut(&stage) {
                        s.effects.push(if restored {
                            format!("host failed: {flag} on {environment} restored to {percent}%")
                        } else {
                            format!("host failed: {flag} on {environment} could NOT be restored to {percent}%")
                        });
                    }
                }
                Event::Shadow {
                    stage,
                    plugin,
                    percent,
                    live,
                    shadow,
                    agrees,
                    summary,
                    checks,
                    failed,
                } => {
                    if let Some(s) = report.stage_mut(&stage) {
                        s.shadows.push(ShadowAnswer {
                            at_ms: r.at,
                            plugin,
                            percent,
                            live,
                            shadow,
                            agrees,
                            summary,
                            checks,
                            failed,
                        });
                    }
                }
                Event::Window {
                    stage,
                    window,
                    environment,
                } => {
                    if let Some(s) = report.stage_mut(&stage) {
                        s.environment.get_or_insert(environment);
                        let by = window.source_words();
                        s.measured_by = Some(match s.measured_by.take() {
                            Some(seen) if seen != by && !seen.split(", ").any(|w| w == by) => {
                                format!("{seen}, {by}")
                            }
                            Some(seen) => seen,
                            None => by,
                        });
                        s.windows.push(window);
                    }
                }
                Event::Decision {
                    stage,
                    percent,
                    action,
                    summary,
                    checks,
                    plugin,
                    ..
                } => {
                    if let Some(s) = report.stage_mut(&stage) {
                        s.decisions.push(DecisionReport {
                            at_ms: r.at,
                            percent,
                            action,
                            summary,
                            plugin,
                            checks,
                        });
                    }
                }
                Event::StageFinished {
                    stage,
                    verdict,
                    checks,
                    summary,
                    plugin,
                    dry_run,
                    outcome,
                    elapsed_ms,
                } => {
                    if let Some(s) = report.stage_mut(&stage) {
                        s.verdict = Some(verdict);
                        s.checks = checks;
                        s.summary = summary;
                        s.plugin = plugin;
                        s.dry_run = dry_run;
                        s.outcome = outcome;
                        s.elapsed_ms = elapsed_ms;
                    }
                }
                Event::RunFinished { outcome, summary } => {
                    report.outcome = outcome.word().into();
                    report.summary = summary;
                    report.finished_ms = Some(r.at);
                }
                Event::Control {
                    stage,
                    command,
                    operator,
                    reason,
                    outcome,
                    ..
                } => {
                    if let Some(s) = report.stage_mut(&stage) {
                        s.effects.push(format!(
                            "{operator}: canary {} ({reason}) — {outcome}",
                            command.word()
                        ));
                        s.controls.push(ControlReport {
                            at_ms: r.at,
                            command: command.word().into(),
                            operator,
                            reason,
                            outcome,
                        });
                    }
                }
                Event::Notified {
                    channel,
                    what,
                    level,
                    delivered: false,
                    attempts,
                    error,
                    ..
                } => report.undelivered.push(Undelivered {
                    channel: channel.word().into(),
                    what,
                    level,
                    attempts,
                    error: error.unwrap_or_default(),
                }),
                Event::Uat { data } => report.uat = Some(data),
                Event::TakenOver {
                    by,
                    from,
                    lease_silent_ms,
                    generation,
                    action,
                } => report.takeovers.push(TakeoverReport {
                    at_ms: r.at,
                    by,
                    from,
                    lease_silent_ms,
                    generation,
                    action,
                }),
                Event::Signed { line, key, .. } => {
                    report.signed = Some(SignedReport { line, key });
                }
                Event::Resumed { .. }
                | Event::Notified { .. }
                | Event::EffectStarted { .. }
                | Event::Log { .. }
                | Event::Call { .. } => {}
            }
        }
        Ok(report)
    }
}
