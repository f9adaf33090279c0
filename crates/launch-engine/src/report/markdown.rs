//! The end-of-run summary for people: PASS/FAIL per gate, the numbers behind each failure, and
//! what to do next.

use super::{RunReport, numbers};

pub fn render(r: &RunReport) -> String {
    let mut out = format!("# Launch {} — {}\n\n", r.run_id, r.outcome.to_uppercase());
    out.push_str(&format!("Runbook: {}  \n{}\n\n", r.runbook, r.summary));
    out.push_str("| # | stage | verdict | what happened | time |\n|---|---|---|---|---|\n");
    for (i, s) in r.stages.iter().enumerate() {
        let verdict = s.verdict.as_ref().map_or("—", |v| v.word());
        let mut what = s.summary.replace('|', "\\|");
        if let Some(p) = &s.plugin {
            what.push_str(&format!(" (plugin `{p}`)"));
        }
        if let Some(by) = &s.measured_by {
            what.push_str(&format!("; {} window(s) measured by {by}", s.windows.len()));
        }
        out.push_str(&format!(
            "| {} | {} | **{verdict}** | {what} | {:.1} s |\n",
            i + 1,
            s.title.replace('|', "\\|"),
            s.elapsed_ms as f64 / 1000.0
        ));
    }
    let failing: Vec<_> = r
        .stages
        .iter()
        .filter(|s| s.verdict.as_ref().is_some_and(|v| !v.is_pass()))
        .collect();
    if !failing.is_empty() {
        out.push_str("\n## Why\n\n");
        for s in &failing {
            let v = s.verdict.as_ref().expect("filtered on verdict");
            out.push_str(&format!(
                "### {} — {}\n\n{}\n\n",
                s.title,
                v.word(),
                v.reason()
            ));
            for c in s.checks.iter().filter(|c| !c.verdict.is_pass()) {
                out.push_str(&format!(
                    "- `{}` {}: {} {}\n",
                    c.name,
                    c.verdict.word(),
                    c.verdict.reason(),
                    numbers(c)
                ));
            }
            if let Some(d) = s.decisions.last() {
                out.push_str(&format!(
                    "- last canary decision at {}% by `{}`: {}\n",
                    d.percent, d.plugin, d.summary
                ));
            }
            out.push('\n');
        }
    }
    for s in &r.stages {
        out.push_str(&super::shadow::markdown(s));
    }
    let skipped: Vec<_> = r
        .stages
        .iter()
        .flat_map(|s| s.checks.iter().filter(|c| c.skipped).map(move |c| (s, c)))
        .collect();
    if !skipped.is_empty() {
        out.push_str("\n## Skipped\n\nNobody tested these; they are not passes.\n\n");
        for (s, c) in skipped {
            out.push_str(&format!(
                "- {}: `{}` SKIPPED — {}\n",
                s.title, c.name, c.detail
            ));
        }
    }
    if !r.takeovers.is_empty() {
        out.push_str(
            "\n## Taken over\n\nIts runner went silent; another process continued it.\n\n",
        );
        for t in &r.takeovers {
            out.push_str(&format!("- {}\n", t.describe()));
        }
    }
    if !r.undelivered.is_empty() {
        out.push_str("\n## Notifications not delivered\n\nNobody was told these; tell them.\n\n");
        for u in &r.undelivered {
            let level = u.level.map(|l| format!(" (L{l})")).unwrap_or_default();
            out.push_str(&format!(
                "- #{}: `{}`{level} — {} after {} attempt(s)\n",
                u.channel,
                u.what,
                u.error.replace('|', "\\|"),
                u.attempts
            ));
        }
    }
    if let Some(c) = &r.capabilities {
        out.push_str(&format!(
            "\n## Capabilities\n\nWhat each plugin was allowed to do ({}).\n\n",
            c.manifest_sha256
        ));
        for g in &c.grants {
            let shadow = if g.shadow { " (shadow)" } else { "" };
            out.push_str(&format!(
                "- stage `{}`, plugin `{}`{shadow}\n",
                g.stage, g.plugin
            ));
            for (what, value) in crate::manifest::describe(g) {
                out.push_str(&format!("  - {what}: {}\n", value.replace('|', "\\|")));
            }
        }
    }
    out.push_str("\n## Next actions\n\n");
    out.push_str(match r.outcome.as_str() {
        "passed" => "- Launch complete: keep monitoring (`launch-host monitor`), and remove the legacy board after the stability window.\n",
        "rolled-back" => "- The primary flag is at 0: users are on the legacy board.\n- Read *Why* above, fix the release, and start a new run.\n- For a full rollback to the previous release, use `launch-host rollback full`.\n",
        "host-failed" => "- The host itself failed mid-stage; the flag it had moved was put back (the journal's `flag-restored` says where).\n- Check the flags with `launch-host status`, report the error above, then start a new run.\n",
        "gate-failed" => "- A gate failed and the launch stopped; nothing after it ran.\n- Read *Why* above; fix and re-run, or resume with `launch-host resume RUN` once the cause is fixed.\n",
        _ => "- The run did not finish: `launch-host resume RUN` continues it.\n",
    });
    out
}
