//! The range of every number a runbook can hold, checked while it is read so the error carries
//! the value's line — and so `validate` and `run`, which parse the same way, can never
//! disagree. The ranges come from practice (docs/runbook.md lists them); a value outside one is
//! a typo or a unit slip, never a policy.

use std::ops::RangeInclusive;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

const MS: Duration = Duration::from_millis(1);
const HOUR: Duration = Duration::from_secs(3600);

/// A canary's check interval or a monitor's window: shorter measures nothing, longer would
/// leave a bad canary serving unobserved.
pub const INTERVAL: RangeInclusive<Duration> = Duration::from_millis(100)..=HOUR;
/// How long a stage (canary, monitor, wait) may last: up to a week of bake time.
pub const DURATION: RangeInclusive<Duration> = MS..=Duration::from_secs(7 * 24 * 3600);
/// How long a canary or a stability gate may go without data before it rolls back.
pub const NO_DATA_LIMIT: RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(24 * 3600);
/// A mirrored run's lease: renewed every third of it, taken over past it.
pub const LEASE_TTL: RangeInclusive<Duration> = Duration::from_secs(1)..=Duration::from_secs(600);
/// One plugin call, from instantiation to answer.
pub const DEADLINE: RangeInclusive<Duration> = launch_runtime::limits::DEADLINE;
/// A plugin's linear memory.
pub const MEMORY: RangeInclusive<usize> = launch_runtime::limits::MEMORY;
/// Probe requests per second while a canary or monitor measures.
pub const PROBE_RATE: RangeInclusive<u32> = 1..=10_000;
/// Lists an operator writes by hand: more is a generated file gone wrong.
pub const MAX_STAGES: usize = 500;
pub const MAX_LIST: usize = 100;
/// Folders granted to one stage's plugin.
pub const MAX_FILES: usize = 16;
/// Shadow policies on one stage: each multiplies the stage's plugin calls.
pub const MAX_SHADOWS: usize = 8;

fn out_of_range<E: serde::de::Error>(what: &str, written: &str, range: String) -> E {
    E::custom(format!(
        "{what} `{written}` is out of range: write a value from {range}"
    ))
}

fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn duration_within<'de, D: Deserializer<'de>>(
    d: D,
    what: &str,
    range: RangeInclusive<Duration>,
) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    let value = humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!(
            "{what} `{s}` is not a duration ({e}); write e.g. \"500ms\", \"10s\", \"5m\""
        ))
    })?;
    if !range.contains(&value) {
        let shown = format!("{} to {}", show(*range.start()), show(*range.end()));
        return Err(out_of_range(what, &s, shown));
    }
    Ok(value)
}

macro_rules! bounded_duration {
    ($module:ident, $what:literal, $range:expr) => {
        pub mod $module {
            use super::*;
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
                duration_within(d, $what, $range)
            }
            pub mod opt {
                use super::*;
                pub fn deserialize<'de, D: Deserializer<'de>>(
                    d: D,
                ) -> Result<Option<Duration>, D::Error> {
                    super::deserialize(d).map(Some)
                }
            }
        }
    };
}

bounded_duration!(interval, "interval", INTERVAL);
bounded_duration!(duration, "duration", DURATION);
bounded_duration!(deadline, "deadline", DEADLINE);
bounded_duration!(no_data_limit, "no-data-limit", NO_DATA_LIMIT);
bounded_duration!(lease_ttl, "lease-ttl", LEASE_TTL);

pub mod memory {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        let s = String::deserialize(d)?;
        let value = super::super::units::parse_bytes(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("memory `{s}` is not a size; write e.g. \"64MiB\""))
        })?;
        if !MEMORY.contains(&value) {
            return Err(out_of_range("memory", &s, "1MiB to 4GiB".into()));
        }
        Ok(value)
    }

    pub mod opt {
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<usize>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

pub mod probe_rate {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        // Read wide so a negative or enormous rate gets the range, not a type error.
        let n = i64::deserialize(d)?;
        u32::try_from(n)
            .ok()
            .filter(|r| PROBE_RATE.contains(r))
            .ok_or_else(|| {
                out_of_range(
                    "probe-rate",
                    &n.to_string(),
                    format!(
                        "{} to {} requests per second",
                        PROBE_RATE.start(),
                        PROBE_RATE.end()
                    ),
                )
            })
    }
}

/// Consecutive breaching windows a stability gate tolerates before rolling back.
pub const BREACHES: RangeInclusive<u32> = 1..=1_000;

/// A whole number in `range` (read wide, so a negative or enormous one gets the range, not a
/// type error), with its place in the file.
fn spanned_count<'de, D: Deserializer<'de>>(
    d: D,
    what: &str,
    range: RangeInclusive<u32>,
    unit: &str,
) -> Result<Option<toml::Spanned<u32>>, D::Error> {
    let n = toml::Spanned::<i64>::deserialize(d)?;
    let (span, v) = (n.span(), *n.get_ref());
    u32::try_from(v)
        .ok()
        .filter(|c| range.contains(c))
        .map(|c| Some(toml::Spanned::new(span, c)))
        .ok_or_else(|| {
            let shown = format!("{} to {} {unit}", range.start(), range.end());
            out_of_range(what, &v.to_string(), shown)
        })
}

/// `breaches`: a count in [`BREACHES`].
pub mod breaches {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<toml::Spanned<u32>>, D::Error> {
        spanned_count(d, "breaches", BREACHES, "windows")
    }
}

/// Further attempts to deliver a notification after a failed one.
pub const RETRIES: RangeInclusive<u32> = 0..=10;
/// The most one notification may take, retries included: past it the run's end stops waiting.
pub const NOTIFY_DEADLINE: RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(120);

bounded_duration!(notify_deadline, "notify.deadline", NOTIFY_DEADLINE);

/// `notify.retries`: a count in [`RETRIES`], refused at its own line.
pub mod retries {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        Ok(spanned_count(d, "notify.retries", RETRIES, "attempts")?.map_or(0, |c| *c.get_ref()))
    }
}

/// `traffic`: simulated users' requests per second, in the probe's range.
pub mod traffic {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<toml::Spanned<u32>>, D::Error> {
        spanned_count(d, "traffic", PROBE_RATE, "requests per second")
    }
}

/// `allow-hosts`: each entry a host pattern, at most [`MAX_LIST`] of them.
pub mod hosts {
    use super::*;
    use launch_runtime::capabilities::allow_list::HostPattern;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let hosts = Vec::<String>::deserialize(d)?;
        if hosts.len() > MAX_LIST {
            return Err(serde::de::Error::custom(format!(
                "allow-hosts has {} entries; at most {MAX_LIST} are allowed",
                hosts.len()
            )));
        }
        for h in &hosts {
            if let Some((_, host)) = h.rsplit_once('@') {
                // Never quoted: what comes before the `@` may be a password.
                return Err(serde::de::Error::custom(format!(
                    "allow-hosts: `***@{host}` is not a host pattern: it carries a user name or password; write only the host (e.g. `{host}`)"
                )));
            }
            HostPattern::parse(h)
                .map_err(|e| serde::de::Error::custom(format!("allow-hosts: {e}")))?;
        }
        Ok(hosts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct T {
        #[serde(default, with = "interval::opt")]
        interval: Option<Duration>,
        #[serde(default, with = "memory::opt")]
        memory: Option<usize>,
        #[serde(default, with = "probe_rate")]
        rate: u32,
    }

    fn read(text: &str) -> Result<T, String> {
        toml::from_str::<T>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn values_inside_their_range_are_read() {
        let t = read("interval = \"250ms\"\nmemory = \"64MiB\"\nrate = 400").unwrap();
        assert_eq!(t.interval, Some(Duration::from_millis(250)));
        assert_eq!(t.memory, Some(64 << 20));
        assert_eq!(t.rate, 400);
    }

    #[test]
    fn values_outside_their_range_name_it() {
        let e = read("interval = \"1ns\"").unwrap_err();
        assert!(e.contains("from 100ms to 1h"), "{e}");
        let e = read("interval = \"10000000000years\"").unwrap_err();
        assert!(e.contains("interval"), "{e}");
        let e = read("memory = \"0B\"").unwrap_err();
        assert!(e.contains("1MiB to 4GiB"), "{e}");
        for rate in ["0", "4000000000", "-3"] {
            let e = read(&format!("rate = {rate}")).unwrap_err();
            assert!(e.contains("1 to 10000 requests per second"), "{e}");
        }
    }
}
