//! Progress bars on stderr (indicatif). They draw only when stderr is a terminal, so logs and
//! CI output stay plain lines; the engine prints its own one-line summaries either way.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

fn styled(bar: ProgressBar, template: &str) -> ProgressBar {
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("█▉▊▋▌▍▎▏ "));
    }
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Files uploaded out of `files`, with bytes per second.
pub fn uploads(files: usize, what: &str) -> ProgressBar {
    styled(
        ProgressBar::new(files as u64).with_message(what.to_string()),
        "  {spinner} {msg} [{bar:30}] {pos}/{len} files {elapsed}",
    )
}

/// A stretch of time: a wait, a monitoring window, a canary step.
pub fn timed(total: Duration, what: &str) -> ProgressBar {
    styled(
        ProgressBar::new(total.as_millis() as u64).with_message(what.to_string()),
        "  {spinner} {msg} [{bar:30}] {elapsed}/{duration}",
    )
}

/// A canary: the flag percentage, with the policy's last decision as the message. Cleared
/// however the canary ends.
pub fn canary(what: &str) -> Cleared {
    Cleared(styled(
        ProgressBar::new(100).with_message(what.to_string()),
        "  {spinner} [{bar:30}] {pos:>3}% {wide_msg}",
    ))
}

/// A bar that clears itself when dropped.
pub struct Cleared(ProgressBar);

impl std::ops::Deref for Cleared {
    type Target = ProgressBar;
    fn deref(&self) -> &ProgressBar {
        &self.0
    }
}

impl Drop for Cleared {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
