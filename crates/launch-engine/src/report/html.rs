//! A one-file HTML report: the stage table, the checks behind every verdict, and per canary
//! stage an inline SVG of p95 latency over time, canary against baseline, with the flag steps.

use super::junit::escape;
use super::{RunReport, StageReport, numbers};
use launch_targets::probe::Served;

pub fn render(r: &RunReport) -> String {
    let mut out = String::from("<!doctype html>\n<html><head><meta charset=\"utf-8\">");
    out.push_str(&format!("<title>launch {}</title>", escape(&r.run_id)));
    out.push_str("<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}.PASS{color:#17622b}.FAIL,.NO.DATA,.INCONCLUSIVE{color:#a31515;font-weight:bold}svg{background:#fafafa;border:1px solid #ddd}</style></head><body>\n");
    out.push_str(&format!(
        "<h1>Launch {} — {}</h1><p>{}</p><p>Runbook: {}</p>\n",
        escape(&r.run_id),
        escape(&r.outcome.to_uppercase()),
        escape(&r.summary),
        escape(&r.runbook)
    ));
    out.push_str("<table><tr><th>#</th><th>stage</th><th>verdict</th><th>summary</th><th>host action</th><th>time</th></tr>\n");
    for (i, s) in r.stages.iter().enumerate() {
        let word = s.verdict.as_ref().map_or("—", |v| v.word());
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{word}</td><td>{}</td><td>{}</td><td>{:.1} s</td></tr>\n",
            i + 1,
            escape(&s.title),
            word.replace(' ', "."),
            escape(&s.summary),
            escape(&s.outcome),
            s.elapsed_ms as f64 / 1000.0
        ));
    }
    out.push_str("</table>\n");
    for s in &r.stages {
        out.push_str(&format!("<h2>{}</h2>", escape(&s.title)));
        if let Some(v) = s.verdict.as_ref().filter(|v| !v.is_pass()) {
            out.push_str(&format!(
                "<p class=\"{}\">{}: {}</p>",
                v.word().replace(' ', "."),
                v.word(),
                escape(v.reason())
            ));
        }
        if !s.checks.is_empty() {
            out.push_str(
                "<table><tr><th>check</th><th>verdict</th><th>numbers</th><th>detail</th></tr>",
            );
            for c in &s.checks {
                out.push_str(&format!(
                    "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&c.name),
                    c.word().replace(' ', "."),
                    c.word(),
                    escape(&numbers(c)),
                    escape(&format!("{} {}", c.verdict.reason(), c.detail))
                ));
            }
            out.push_str("</table>");
        }
        if !s.decisions.is_empty() {
            out.push_str(&chart(s));
            out.push_str("<ol>");
            for d in &s.decisions {
                out.push_str(&format!(
                    "<li>at {}%: {} <small>({})</small></li>",
                    d.percent,
                    escape(&d.summary),
                    escape(&d.plugin)
                ));
            }
            out.push_str("</ol>");
        }
        out.push_str(&super::shadow::html(s, escape));
    }
    if let Some(c) = &r.capabilities {
        out.push_str(&format!(
            "<h2>Capabilities</h2><p>What each plugin was allowed to do ({}).</p><table><tr><th>stage</th><th>plugin</th><th>grant</th></tr>",
            escape(&c.manifest_sha256)
        ));
        for g in &c.grants {
            let lines: Vec<String> = crate::manifest::describe(g)
                .into_iter()
                .map(|(what, value)| format!("{what}: {}", escape(&value)))
                .collect();
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}{}</td><td>{}</td></tr>",
                escape(&g.stage),
                escape(&g.plugin),
                if g.shadow { " (shadow)" } else { "" },
                lines.join("<br>")
            ));
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// p95 latency per check interval, canary (red) and baseline (blue), with the flag % as steps.
fn chart(s: &StageReport) -> String {
    const W: f64 = 760.0;
    const H: f64 = 220.0;
    let series = |served| -> Vec<(u64, f64)> {
        s.windows
            .iter()
            .filter_map(|w| {
                let eps: Vec<_> = w
                    .endpoints
                    .iter()
                    .filter(|e| e.served == Some(served) && e.requests > 0)
                    .collect();
                (!eps.is_empty()).then(|| {
                    (
                        w.start_ms + w.duration_ms,
                        eps.iter().map(|e| e.p95_ms).fold(0.0, f64::max),
                    )
                })
            })
            .collect()
    };
    let (canary, baseline) = (series(Served::Canary), series(Served::Baseline));
    let t0 = s.windows.first().map_or(0, |w| w.start_ms);
    let t1 = s
        .windows
        .last()
        .map_or(1, |w| w.start_ms + w.duration_ms)
        .max(t0 + 1);
    let ymax = canary
        .iter()
        .chain(&baseline)
        .map(|p| p.1)
        .fold(1.0, f64::max)
        * 1.1;
    let x = |t: u64| 40.0 + (t - t0) as f64 / (t1 - t0) as f64 * (W - 50.0);
    let y = |v: f64| H - 20.0 - v / ymax * (H - 30.0);
    let line = |pts: &[(u64, f64)], color: &str| {
        let d: Vec<String> = pts
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect();
        format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            d.join(" ")
        )
    };
    let steps: Vec<String> = s
        .windows
        .iter()
        .map(|w| {
            format!(
                "{:.1},{:.1}",
                x(w.start_ms + w.duration_ms),
                H - 20.0 - f64::from(w.percent) / 100.0 * (H - 30.0)
            )
        })
        .collect();
    format!(
        "<svg width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"p95 latency over time\">\
         <text x=\"4\" y=\"14\" font-size=\"11\">p95 ms (max {ymax:.0})</text>\
         <polyline fill=\"none\" stroke=\"#999\" stroke-dasharray=\"4 3\" points=\"{}\"/>{}{}\
         <text x=\"{:.0}\" y=\"14\" font-size=\"11\" fill=\"#c00\">canary</text><text x=\"{:.0}\" y=\"28\" font-size=\"11\" fill=\"#06c\">baseline</text>\
         <text x=\"{:.0}\" y=\"42\" font-size=\"11\" fill=\"#999\">flag %</text>\
         <text x=\"4\" y=\"{:.0}\" font-size=\"11\">measured by {}</text></svg>",
        steps.join(" "),
        line(&baseline, "#06c"),
        line(&canary, "#c00"),
        W - 70.0,
        W - 70.0,
        W - 70.0,
        H - 4.0,
        s.measured_by.as_deref().unwrap_or("probe")
    )
}
