//! The operator interface on a terminal: stage lines with coloured verdicts (anstream drops the
//! colour with NO_COLOR or when piped), prompts on stdin, and progress bars (indicatif) that
//! draw only when stderr is a terminal, so logs and CI output stay plain lines.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use launch_engine::operator::{Measure, Notice, Operator, Progress, Step, UatAnswer};
use launch_engine::record::VerdictRecord;
use launch_engine::redact;
use launch_engine::uat::{ItemFile, Outcome};

/// Asks on stdin when it is a terminal; tells on stderr.
pub struct Terminal;

impl Operator for Terminal {
    fn can_ask(&self) -> bool {
        std::io::stdin().is_terminal()
    }

    /// End of input means abort, never proceed.
    fn ask_step(&self, title: &str) -> Step {
        loop {
            eprint!("  run \"{title}\"? [p]roceed / [s]kip / [a]bort: ");
            let Some(line) = read_line() else {
                return Step::Abort;
            };
            match line.to_ascii_lowercase().as_str() {
                "p" | "proceed" | "y" | "yes" | "" => return Step::Proceed,
                "s" | "skip" => return Step::Skip,
                "a" | "abort" | "q" => return Step::Abort,
                other => eprintln!("  `{other}`: answer p, s or a"),
            }
        }
    }

    fn ask_proceed(&self, stage: &str, reason: &str) -> bool {
        let reason = redact::text(reason);
        eprint!("  stage `{stage}` is inconclusive ({reason}). Proceed anyway? [y/N] ");
        read_line().is_some_and(|l| matches!(l.as_str(), "y" | "Y" | "yes"))
    }

    fn ask_uat_result(&self, item: &ItemFile) -> Option<UatAnswer> {
        walk_through(item)
    }

    /// Every line is masked (launch_engine::redact) before it reaches the terminal.
    fn tell(&self, notice: Notice<'_>) {
        anstream::eprintln!("{}", redact::text(&line(notice)));
    }

    fn progress(&self, measure: Measure<'_>) -> Box<dyn Progress> {
        let (bar, template) = match measure {
            Measure::Uploads { files, what } => (
                ProgressBar::new(files).with_message(what.to_string()),
                "  {spinner} {msg} [{bar:30}] {pos}/{len} files {elapsed}",
            ),
            Measure::Timed { total, what } => (
                ProgressBar::new(total.as_millis() as u64).with_message(what.to_string()),
                "  {spinner} {msg} [{bar:30}] {elapsed}/{duration}",
            ),
            Measure::Canary { what } => (
                ProgressBar::new(100).with_message(what.to_string()),
                "  {spinner} [{bar:30}] {pos:>3}% {wide_msg}",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("█▉▊▋▌▍▎▏ "));
        }
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(120));
        Box::new(Bar(bar))
    }
}

/// A bar that clears itself when dropped, however the work ended.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn set_position(&self, position: u64) {
        self.0.set_position(position);
    }
    fn inc(&self, by: u64) {
        self.0.inc(by);
    }
    fn set_message(&self, message: String) {
        self.0.set_message(redact::text(&message).into_owned());
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// One trimmed line of stdin; `None` at end of input.
fn read_line() -> Option<String> {
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_string()),
    }
}

/// Walks a tester through one UAT item: its steps and expected result, then asks for the
/// outcome and notes. `None` when input ends.
pub fn walk_through(item: &ItemFile) -> Option<UatAnswer> {
    eprintln!(
        "\n{} [{}]{}: {}",
        item.id,
        item.category,
        if item.blocking { " (blocking)" } else { "" },
        item.title
    );
    for (i, step) in item.steps.iter().enumerate() {
        eprintln!("  {}. {step}", i + 1);
    }
    eprintln!("  expected: {}", item.expected);
    let outcome = loop {
        eprint!("  result? [p]ass / [f]ail / [b]locked / [s]kip: ");
        match read_line()?.to_ascii_lowercase().as_str() {
            "p" | "pass" => break Outcome::Pass,
            "f" | "fail" => break Outcome::Fail,
            "b" | "blocked" => break Outcome::Blocked,
            "s" | "skip" | "skipped" => break Outcome::Skipped,
            other => eprintln!("  `{other}`: answer p, f, b or s"),
        }
    };
    eprint!("  notes: ");
    let notes = read_line()?;
    Some(UatAnswer { outcome, notes })
}

/// A notice as one line for people.
fn line(notice: Notice<'_>) -> String {
    match notice {
        Notice::StageStarted { title } => format!("▶ {title}"),
        Notice::StageSkipped { .. } => "  skipped by the operator".to_string(),
        Notice::StageFinished {
            verdict,
            skipped,
            action,
        } => {
            let colour = match verdict {
                VerdictRecord::Pass => anstyle::AnsiColor::Green,
                VerdictRecord::Fail(_) => anstyle::AnsiColor::Red,
                _ => anstyle::AnsiColor::Yellow,
            };
            let style = anstyle::Style::new().bold().fg_color(Some(colour.into()));
            let skipped = match skipped {
                0 => String::new(),
                n => format!(" ({n} SKIPPED: untested)"),
            };
            format!(
                "  {style}{}{style:#}{skipped} {} — {action}",
                verdict.word(),
                verdict.reason(),
            )
        }
        Notice::CanaryPromoted { from, to } => format!("  canary {from}% → {to}%"),
        Notice::CanaryRolledBack { percent, reason } => {
            format!("  canary rolled back at {percent}%: {reason}")
        }
        Notice::RolledBack { environment, flag } => {
            format!("  {flag} on {environment} is at 0%: rolled back")
        }
        Notice::ShadowDisagrees {
            plugin,
            live,
            shadow,
            percent,
            why,
        } => {
            let at = percent.map(|p| format!(" at {p}%")).unwrap_or_default();
            format!(
                "  shadow `{plugin}`{at}: {shadow} where the live policy said {live} — {why} (recorded, not obeyed)"
            )
        }
        Notice::CanaryHeld { percent, reason } => {
            format!("  canary holding at {percent}%: {reason}")
        }
        Notice::Warning(w) => format!("warning: {w}"),
    }
}

/// Nobody at the keyboard, and several runs at once (an agent): no question is asked (each
/// answer is the safe one), every notice is one masked line labelled with its run.
pub struct Labelled(pub String);

impl Operator for Labelled {
    fn can_ask(&self) -> bool {
        false
    }
    fn ask_step(&self, _: &str) -> Step {
        Step::Abort
    }
    fn ask_proceed(&self, _: &str, _: &str) -> bool {
        false
    }
    fn ask_uat_result(&self, _: &ItemFile) -> Option<UatAnswer> {
        None
    }
    fn tell(&self, notice: Notice<'_>) {
        eprintln!("[{}] {}", self.0, redact::text(line(notice).trim_start()));
    }
    fn progress(&self, _: Measure<'_>) -> Box<dyn Progress> {
        Box::new(launch_engine::operator::NoProgress)
    }
}
