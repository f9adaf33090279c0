//! The `log` capability: levelled lines from the plugin, plus whatever it wrote to stdout and
//! stderr through WASI, kept per call and bounded in count and length.

use std::fmt;

use serde::Serialize;

use super::bindings::log;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        })
    }
}

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Log,
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub level: Level,
    pub source: Source,
    pub message: String,
}

/// Lines of one plugin call.
#[derive(Debug, Default)]
pub struct LogSink {
    lines: Vec<LogLine>,
    dropped: usize,
    max_lines: usize,
    max_line_bytes: usize,
}

impl LogSink {
    pub fn new(max_lines: usize, max_line_bytes: usize) -> Self {
        LogSink {
            lines: Vec::new(),
            dropped: 0,
            max_lines,
            max_line_bytes,
        }
    }

    pub fn push(&mut self, level: Level, source: Source, message: &str) {
        if self.lines.len() >= self.max_lines {
            self.dropped += 1;
            return;
        }
        let message = crate::text::truncate(message, self.max_line_bytes);
        self.lines.push(LogLine {
            level,
            source,
            message,
        });
    }

    /// Adds captured stdout/stderr, one entry per line.
    pub fn push_captured(&mut self, source: Source, bytes: &[u8]) {
        let level = if source == Source::Stderr {
            Level::Warn
        } else {
            Level::Info
        };
        for line in String::from_utf8_lossy(bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            self.push(level, source, line);
        }
    }

    /// The lines, with a final note when some were dropped.
    pub fn finish(mut self) -> Vec<LogLine> {
        if self.dropped > 0 {
            let note = format!(
                "{} more log line(s) dropped (limit {} per call)",
                self.dropped, self.max_lines
            );
            self.lines.push(LogLine {
                level: Level::Warn,
                source: Source::Log,
                message: note,
            });
        }
        self.lines
    }
}

impl log::Host for LogSink {
    async fn log(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Trace => Level::Trace,
            log::Level::Debug => Level::Debug,
            log::Level::Info => Level::Info,
            log::Level::Warn => Level::Warn,
            log::Level::Error => Level::Error,
        };
        self.push(level, Source::Log, &message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_dropping_is_reported() {
        let mut sink = LogSink::new(2, 5);
        sink.push(Level::Info, Source::Log, "abcdefghij");
        sink.push(Level::Info, Source::Log, "b");
        sink.push(Level::Info, Source::Log, "c");
        let lines = sink.finish();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].message.starts_with("abcde"));
        assert!(lines[0].message.len() < 10 + 40);
        assert!(lines[2].message.contains("1 more log line(s) dropped"));
    }
}
