//! UAT stages: `uat-init` records the plugin's checklist and probes the automatable items; the
//! UAT gate hands the plugin the recorded results and sign-offs (walking testers through the
//! untested items in an interactive run) and marks what nobody tested as skipped.

use std::time::Duration;

use super::{fail, journal_logs, pass};
use crate::context::{Ctx, StageResult};
use crate::journal::now_ms;
use crate::manifest::Manifest;
use crate::record::{self, CheckRecord, VerdictRecord};
use crate::runbook::Stage;
use crate::uat::{
    Decision, ItemFile, Outcome, ResultFile, Scope, SignoffFile, UatData, read, record_result,
    write,
};
use launch_runtime::types as wit;

/// Records the plugin's checklist and checks the automatable items over HTTP.
pub async fn init(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let dir = ctx.uat_dir();
    let (plugin, sandbox, config) = (ctx.plugin(stage)?, ctx.sandbox(stage)?, stage.config_json());
    let called = plugin.uat_checklist(&sandbox, &config).await?;
    journal_logs(ctx, stage, &called.logs)?;
    let items: Vec<wit::UatItem> = called.value;
    let files: Vec<ItemFile> = items
        .iter()
        .map(|i| ItemFile {
            id: i.id.clone(),
            category: i.category.clone(),
            title: i.title.clone(),
            steps: i.steps.clone(),
            expected: i.expected.clone(),
            blocking: i.blocking,
            automated_probe: i.automated_probe.clone(),
        })
        .collect();
    write(&dir, "checklist.json", &files)?;
    let api = ctx.env(stage)?.api_url.clone();
    let mut results: Vec<ResultFile> = read(&dir, "results.json")?;
    let mut checks = vec![CheckRecord {
        observed: Some(items.len() as f64),
        unit: "items".into(),
        ..pass("checklist", format!("{} item(s) recorded", items.len()))
    }];
    for item in items.iter().filter(|i| i.automated_probe.is_some()) {
        let url = format!("{api}{}", item.automated_probe.as_deref().unwrap_or(""));
        let outcome = match ctx
            .probe_client
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => Outcome::Pass,
            _ => Outcome::Fail,
        };
        results.retain(|r| r.id != item.id);
        results.push(ResultFile {
            id: item.id.clone(),
            outcome,
            tester: "launch-host (automated)".into(),
            notes: format!("GET {url}"),
            at_ms: now_ms(),
        });
        checks.push(if outcome == Outcome::Pass {
            pass(&item.id, format!("GET {url} answered 2xx"))
        } else {
            fail(&item.id, format!("GET {url} did not answer 2xx"))
        });
    }
    write(&dir, "results.json", &results)?;
    Ok(StageResult::from_checks(checks, "UAT initialized"))
}

/// Judges the recorded results and sign-offs with the UAT plugin. In an automated run, items
/// no one tested are recorded as skipped, and the plugin's config decides what that means, and the
/// runbook's sign-offs are recorded.
pub async fn evaluate(ctx: &mut Ctx, stage: &Stage) -> anyhow::Result<StageResult> {
    let dir = ctx.uat_dir();
    let mut signoffs: Vec<SignoffFile> = read(&dir, "signoffs.json")?;
    let manifest = ctx.launch_manifest.clone();
    for s in &stage.signoffs {
        // The runbook's own sign-off is renewed (it approves the grants the same file
        // states); a person's, in the same role and name, stands.
        signoffs.retain(|x| {
            let runbooks = x.from_runbook
                || (x.scope.is_none() && x.decision == s.decision && x.note == s.note);
            !(runbooks && x.role == s.role && x.name == s.name)
        });
        if !signoffs
            .iter()
            .any(|x| x.role == s.role && x.name == s.name)
        {
            signoffs.push(SignoffFile {
                role: s.role.clone(),
                name: s.name.clone(),
                decision: s.decision,
                note: s.note.clone(),
                at_ms: now_ms(),
                scope: Some(Scope::of(manifest.clone(), &ctx.catalog)),
                from_runbook: true,
            });
        }
    }
    write(&dir, "signoffs.json", &signoffs)?;
    // An interactive run walks the tester through every untested item (unless
    // SKIP_UAT_INTERACTIVE); what they answer is recorded like `launch-host uat test`.
    if ctx.options.interactive && !ctx.options.skip_uat_interactive && ctx.operator.can_ask() {
        let data = UatData::load(&dir)?;
        let tester = std::env::var("USER").unwrap_or_else(|_| "tester".into());
        for item in data.items.iter().filter(|i| data.result(&i.id).is_none()) {
            let Some(answer) = ctx.operator.ask_uat_result(item) else {
                break;
            };
            record_result(
                &dir,
                ResultFile {
                    id: item.id.clone(),
                    outcome: answer.outcome,
                    tester: tester.clone(),
                    notes: answer.notes,
                    at_ms: now_ms(),
                },
            )?;
        }
    }
    let mut results: Vec<ResultFile> = read(&dir, "results.json")?;
    if ctx.options.auto {
        let items: Vec<ItemFile> = read(&dir, "checklist.json")?;
        let untested: Vec<&ItemFile> = items
            .iter()
            .filter(|i| !results.iter().any(|r| r.id == i.id))
            .collect();
        for item in untested {
            results.push(ResultFile {
                id: item.id.clone(),
                outcome: Outcome::Skipped,
                tester: "launch-host (automated run)".into(),
                notes: "not tested: the run is automated (SKIP_UAT_INTERACTIVE)".into(),
                at_ms: now_ms(),
            });
        }
    }
    // The plugin's inputs, recorded as they are given.
    let input = crate::lab::fixture::UatInput {
        results: results
            .iter()
            .map(|r| crate::lab::fixture::UatResultInput {
                id: r.id.clone(),
                outcome: r.outcome,
                tester: r.tester.clone(),
                notes: r.notes.clone(),
                at_ms: r.at_ms,
            })
            .collect(),
        signoffs: signoffs
            .iter()
            .map(|s| crate::lab::fixture::SignoffInput {
                role: s.role.clone(),
                name: s.name.clone(),
                decision: s.decision,
                note: s.note.clone(),
                at_ms: s.at_ms,
            })
            .collect(),
    };
    let (wit_results, wit_signoffs) = input.wit();
    let (plugin, sandbox, config) = (ctx.plugin(stage)?, ctx.sandbox(stage)?, stage.config_json());
    let called = plugin
        .evaluate_uat(&sandbox, &wit_results, &wit_signoffs, &config)
        .await?;
    journal_logs(ctx, stage, &called.logs)?;
    let r = called.value;
    let mut checks = record::checks(&r.checks);
    let plugin_name = ctx.plugin(stage)?.info.name.clone();
    let verdict = VerdictRecord::from(&r.verdict);
    let answer = super::calls::Answer::of_verdict(&verdict, &checks);
    super::calls::record(
        ctx,
        stage,
        super::calls::uat(&plugin_name, stage, input),
        Default::default(),
        answer,
    )?;
    // An item nobody tested never reads as a pass, whatever the policy allows: its check is
    // marked skipped, and every report says so.
    let skipped = mark_skipped(&mut checks, &results);
    let mut summary = if skipped == 0 {
        r.summary
    } else {
        // Counted by the host: the policy's own count ("9/9 passed") would call the
        // untested items passes.
        let passed = checks
            .iter()
            .filter(|c| !c.skipped && c.verdict.is_pass())
            .count();
        let other = checks.len() - passed - skipped;
        let rest = match other {
            0 => String::new(),
            n => format!(", {n} not passed"),
        };
        format!(
            "{passed} passed, {skipped} skipped (untested){rest} of {} checks — {}",
            checks.len(),
            verdict.word()
        )
    };
    // Whatever the policy counts, an approval of other plugins or grants than these is not
    // an approval of this launch.
    let (scope_checks, stale) = approvals_cover(&signoffs, &manifest);
    checks.extend(scope_checks);
    let mut verdict = VerdictRecord::from(&r.verdict);
    if let Some((first, why)) = stale.first() {
        let who: Vec<&str> = stale.iter().map(|(s, _)| s.name.as_str()).collect();
        let why = format!(
            "{} approval(s) given for other plugins or grants than this runbook's ({}): {why}; approve again with `launch-host uat approve {} \"{}\" {}`",
            stale.len(),
            who.join(", "),
            first.role,
            first.name,
            first.decision.word()
        );
        summary = format!("{summary}; {why}");
        verdict = VerdictRecord::Fail(why);
    }
    Ok(StageResult {
        verdict,
        checks,
        summary,
        plugin: None,
        rolled_back: false,
    })
}

/// One check per approval: does it cover the plugins and grants the launch runs with? Returns
/// the checks, and each approval that does not with why.
fn approvals_cover<'a>(
    signoffs: &'a [SignoffFile],
    manifest: &Manifest,
) -> (Vec<CheckRecord>, Vec<(&'a SignoffFile, String)>) {
    let mut checks = Vec::new();
    let mut stale = Vec::new();
    for s in signoffs.iter().filter(|s| s.decision != Decision::Rejected) {
        let name = format!("approval-scope:{}", s.role);
        match crate::uat::stale(s, manifest) {
            None => checks.push(pass(
                &name,
                format!(
                    "{} {} the plugins and grants of {}",
                    s.name,
                    s.decision.word(),
                    manifest.digest()
                ),
            )),
            Some(why) => {
                checks.push(fail(
                    &name,
                    format!(
                        "{}'s {} no longer holds: {why}; re-approve with `launch-host uat approve {} \"{}\" {}`",
                        s.name,
                        s.decision.word(),
                        s.role,
                        s.name,
                        s.decision.word()
                    ),
                ));
                stale.push((s, why));
            }
        }
    }
    (checks, stale)
}

/// Marks the checks of items whose latest result is `skipped`; returns how many.
fn mark_skipped(checks: &mut [CheckRecord], results: &[ResultFile]) -> usize {
    let latest = |id: &str| results.iter().rev().find(|r| r.id == id);
    let mut n = 0;
    for c in checks.iter_mut() {
        if latest(&c.name).is_some_and(|r| r.outcome == Outcome::Skipped) {
            c.skipped = true;
            n += 1;
        }
    }
    n
}
