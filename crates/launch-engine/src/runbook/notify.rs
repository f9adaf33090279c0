//! `[notify]`: where a launch tells people what happens — the guide's Slack channels (§14) —
//! and who is mentioned as it escalates.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::limits;

/// The guide's channels; what goes to each is fixed by the guide's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// Run started, each stage's verdict, launch complete.
    Releases,
    /// A failed gate, an automatic rollback with its rule and numbers (level 1).
    Alerts,
    /// A manual, emergency or full rollback (level 2), a failed rollback or both environments
    /// impacted (level 3).
    StatusboardEmergency,
}

impl Channel {
    pub fn word(self) -> &'static str {
        match self {
            Channel::Releases => "releases",
            Channel::Alerts => "alerts",
            Channel::StatusboardEmergency => "statusboard-emergency",
        }
    }
}

/// One channel's webhook: a Slack-compatible incoming webhook or a generic JSON one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ChannelSpec {
    pub slack: Option<Spanned<String>>,
    pub webhook: Option<Spanned<String>>,
}

impl ChannelSpec {
    /// The URL and its format (checked at parse time: exactly one is set).
    pub fn target(&self) -> Option<(&Spanned<String>, launch_targets::notify::Format)> {
        use launch_targets::notify::Format;
        match (&self.slack, &self.webhook) {
            (Some(url), None) => Some((url, Format::Slack)),
            (None, Some(url)) => Some((url, Format::Json)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Notify {
    #[serde(default)]
    pub channels: BTreeMap<Channel, ChannelSpec>,
    /// Mentioned from level 2 (a manual rollback): e.g. `<@U024BE7LH>` or `@oncall`.
    pub on_call: Option<String>,
    /// Mentioned at level 3 (a failed rollback, both environments impacted).
    pub leadership: Option<String>,
    /// Further attempts after a failed one [default: 3, at most 10].
    #[serde(
        default = "default_retries",
        deserialize_with = "limits::retries::deserialize"
    )]
    pub retries: u32,
    /// The most one message may take, retries included [default: 10s, at most 2 min]: the
    /// flag has moved long before, and a run's end waits for nothing longer.
    #[serde(default = "default_deadline", with = "limits::notify_deadline")]
    pub deadline: Duration,
}

fn default_retries() -> u32 {
    3
}
fn default_deadline() -> Duration {
    Duration::from_secs(10)
}
