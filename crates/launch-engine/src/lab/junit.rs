//! JUnit XML of a fixture run: one test suite per plugin, one test case per fixture, so CI
//! shows a policy's regressions like any other test.

use super::FixtureResult;
use crate::report::junit::escape;

pub fn render(results: &[FixtureResult]) -> String {
    let mut plugins: Vec<&str> = results.iter().map(|r| r.plugin.as_str()).collect();
    plugins.dedup();
    let failures = results.iter().filter(|r| !r.passed()).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"launch-host plugin test\" tests=\"{}\" failures=\"{failures}\">\n",
        results.len()
    );
    for plugin in plugins {
        let mine: Vec<&FixtureResult> = results.iter().filter(|r| r.plugin == plugin).collect();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\">\n",
            escape(plugin),
            mine.len(),
            mine.iter().filter(|r| !r.passed()).count()
        ));
        for r in mine {
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" time=\"{:.6}\">",
                escape(plugin),
                escape(&r.name),
                escape(&r.fixture.display().to_string()),
                r.elapsed_ms / 1000.0
            ));
            if let Some(e) = &r.error {
                out.push_str(&format!("<error message=\"{}\"/>", escape(e)));
            } else if !r.passed() {
                let diff: Vec<String> = r
                    .mismatches
                    .iter()
                    .map(|m| format!("{}: expected {}, got {}", m.what, m.expected, m.got))
                    .collect();
                out.push_str(&format!(
                    "<failure message=\"{}\">{}</failure>",
                    escape(diff.first().map_or("", String::as_str)),
                    escape(&diff.join("\n"))
                ));
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
