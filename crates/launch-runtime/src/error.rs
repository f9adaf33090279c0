//! Why a plugin could not be loaded, or why a call into it failed. Every message names the file
//! or plugin, says what was found, and says what to do about it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::contract::{self, Role};
use crate::capabilities::log::{Level, LogLine, Source};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read the file: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{}: not a WebAssembly file ({found}); a plugin is a wasm component built against {}", path.display(), contract::accepted_range())]
    NotWasm { path: PathBuf, found: String },

    #[error("{}: a core WebAssembly module, not a component; build the plugin for `wasm32-wasip2` (or wrap the module with `wasm-tools component new`)", path.display())]
    CoreModule { path: PathBuf },

    #[error("{}: not a valid component: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },

    #[error("{}: built against {}@{found}, but this host speaks {}@{} (it accepts {}); rebuild the plugin against this host's `wit/`", path.display(), contract::PACKAGE, contract::PACKAGE, contract::VERSION, contract::accepted_range())]
    IncompatibleContract { path: PathBuf, found: String },

    #[error("{}: implements no launch-host role: it exports [{}]; expected `{}/describe` and one of `{}/{{{}}}` (build it against a world of `wit/worlds.wit`, e.g. `slo-gate-plugin`)",
        path.display(), exports.join(", "), contract::PACKAGE, contract::PACKAGE, role_list())]
    NoRole { path: PathBuf, exports: Vec<String> },

    #[error("{}: exports several roles ({}); a plugin plays exactly one", path.display(), roles.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", "))]
    SeveralRoles { path: PathBuf, roles: Vec<Role> },

    #[error("{}: needs imports this host does not provide: {reason}", path.display())]
    Link { path: PathBuf, reason: String },

    #[error("{}: describe() failed: {failure}", path.display())]
    Describe {
        path: PathBuf,
        failure: Box<CallFailure>,
    },

    #[error("{}: describe() says role `{described}` but the component exports `{exported}`", path.display())]
    RoleMismatch {
        path: PathBuf,
        described: Role,
        exported: Role,
    },

    #[error("{}: describe() returned unusable information: {reason}", path.display())]
    BadInfo { path: PathBuf, reason: String },
}

impl LoadError {
    /// The file that could not be loaded.
    pub fn path(&self) -> &std::path::Path {
        match self {
            LoadError::Read { path, .. }
            | LoadError::NotWasm { path, .. }
            | LoadError::CoreModule { path }
            | LoadError::Invalid { path, .. }
            | LoadError::IncompatibleContract { path, .. }
            | LoadError::NoRole { path, .. }
            | LoadError::SeveralRoles { path, .. }
            | LoadError::Link { path, .. }
            | LoadError::Describe { path, .. }
            | LoadError::RoleMismatch { path, .. }
            | LoadError::BadInfo { path, .. } => path,
        }
    }
}

fn role_list() -> String {
    Role::ALL
        .iter()
        .map(|r| r.interface())
        .collect::<Vec<_>>()
        .join(",")
}

/// A call into a plugin that did not return a value.
#[derive(Debug)]
pub struct CallFailure {
    pub plugin: String,
    pub function: String,
    pub kind: FailureKind,
    /// What the plugin logged (and wrote to stdout/stderr) before it failed.
    pub logs: Vec<LogLine>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FailureKind {
    /// The call ran past its deadline and was interrupted.
    Deadline(Duration),
    /// The instance tried to grow its memory past the limit.
    MemoryLimit { limit: usize, requested: usize },
    /// The plugin trapped (panic, `unreachable`, bad memory access...).
    Trap(String),
    /// The instance could not even be created.
    Instantiate(String),
}

impl fmt::Display for CallFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin `{}` ", self.plugin)?;
        match &self.kind {
            FailureKind::Deadline(d) => write!(
                f,
                "ran past its deadline of {} ms in `{}` and was stopped; if it is legitimately slow, raise the stage's `deadline`",
                d.as_millis(),
                self.function
            )?,
            FailureKind::MemoryLimit { limit, requested } => write!(
                f,
                "exceeded its memory limit of {} in `{}` (tried to grow to {}); if it needs more, raise the stage's `memory`",
                mib(*limit),
                self.function,
                mib(*requested)
            )?,
            FailureKind::Trap(msg) => write!(f, "trapped in `{}`: {msg}", self.function)?,
            FailureKind::Instantiate(msg) => write!(
                f,
                "could not be instantiated for `{}`: {msg}",
                self.function
            )?,
        }
        // A panic or an exception's message goes to stderr; it is usually the most useful line.
        let stderr: Vec<&str> = self
            .logs
            .iter()
            .filter(|l| l.source == Source::Stderr)
            .map(|l| l.message.as_str())
            .collect();
        if !stderr.is_empty() {
            write!(f, "; its stderr says: {}", meaningful(&stderr).join(" | "))?;
        } else if let Some(panic) = self.logs.iter().rev().find(|l| is_panic_log(l)) {
            // A plugin built without WASI has no stderr: the SDK's panic hook logs the message.
            write!(f, "; its log says: {}", panic.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for CallFailure {}

/// The lines of a failed call's stderr worth showing: a Rust panic's message, a Python or
/// JavaScript exception's `Type: message` line — not the language runtime's abort lines that
/// follow them (CPython and StarlingMonkey print several). At most three; the last three lines
/// when nothing looks like an error.
pub fn meaningful<'a>(stderr: &[&'a str]) -> Vec<&'a str> {
    let exception = |l: &str| {
        let l = l.trim_start_matches("Uncaught ").trim();
        let name = l.split(':').next().unwrap_or("");
        l.contains(':')
            && !name.is_empty()
            && !name.contains(' ')
            && (name.ends_with("Error") || name.ends_with("Exception"))
    };
    let mut picked = Vec::new();
    for (i, line) in stderr.iter().enumerate() {
        if line.contains("panicked at") {
            // Since Rust 1.73 the message is on the line after the location.
            let next = stderr.get(i + 1).filter(|n| !n.starts_with("note:"));
            let message = next.copied().unwrap_or(line);
            // componentize-py re-raises a Python exception as an unwrap panic: the exception
            // line before it already says it better.
            if !message.starts_with("called `") || picked.is_empty() {
                picked.push(message);
            }
        } else if exception(line) {
            picked.push(line.trim());
        } else if line.trim() == "Stack:" && i > 0 {
            // componentize-js prints a thrown value's message, then `Stack:` and the frames.
            picked.push(stderr[i - 1].trim());
        }
    }
    if picked.is_empty() {
        picked = stderr.to_vec();
    }
    picked.dedup();
    picked[picked.len().saturating_sub(3)..].to_vec()
}

/// The line the Rust SDK's panic hook logs: `panicked at src/lib.rs:9:5: the message`.
fn is_panic_log(line: &LogLine) -> bool {
    line.source == Source::Log
        && line.level == Level::Error
        && line.message.starts_with("panicked at ")
}

pub fn mib(bytes: usize) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::meaningful;

    #[test]
    fn a_python_exception_is_shown_not_the_runtime_abort() {
        let stderr = [
            "Traceback (most recent call last):",
            "  File \"/app.py\", line 12, in evaluate",
            "    raise ValueError(\"threshold must be positive\")",
            "ValueError: threshold must be positive",
            "thread '<unnamed>' panicked at src/lib.rs:475:33:",
            "called `Result::unwrap()` on an `Err` value: PyErr { type: <class 'ValueError'> }",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        ];
        assert_eq!(
            meaningful(&stderr),
            ["ValueError: threshold must be positive"]
        );
    }

    #[test]
    fn a_javascript_error_and_a_rust_panic_are_found() {
        let js = [
            "Error: no samples in window",
            "evaluate@app.js:3:9",
            "@app.js:10:1",
        ];
        assert_eq!(meaningful(&js), ["Error: no samples in window"]);
        // What componentize-js 0.23 prints for `throw new TypeError("...")` in an export.
        let componentize_js = [
            "the threshold table is missing",
            "Stack:",
            "  run@app.js:70:11",
            "  export_step_0_1_0$run@/tmp/x/sources/initializer.js:823:15",
            "Redirecting call to abort() to mozalloc_abort",
        ];
        assert_eq!(
            meaningful(&componentize_js),
            ["the threshold table is missing"]
        );
        let rust = [
            "thread '<unnamed>' panicked at src/lib.rs:9:5:",
            "bad config: steps must increase",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        ];
        assert_eq!(meaningful(&rust), ["bad config: steps must increase"]);
    }

    #[test]
    fn without_an_error_line_the_last_three_lines_are_kept() {
        let plain = ["a", "b", "c", "d"];
        assert_eq!(meaningful(&plain), ["b", "c", "d"]);
    }
}
