//! Units in a runbook: durations ("500ms", "10s", "5m") and sizes ("64MiB"), read by serde.

pub(super) mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{s}` is not a duration ({e}); write e.g. \"500ms\", \"10s\", \"5m\""
            ))
        })
    }
}

pub(super) mod opt_duration {
    use std::time::Duration;

    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}

pub(super) mod bytes {
    use serde::{Deserialize, Deserializer};

    pub fn parse(s: &str) -> Option<usize> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(split);
        let n: usize = n.parse().ok()?;
        let mult = match unit.trim() {
            "" | "B" => 1,
            "KiB" | "K" => 1 << 10,
            "MiB" | "M" => 1 << 20,
            "GiB" | "G" => 1 << 30,
            _ => return None,
        };
        n.checked_mul(mult)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("`{s}` is not a size; write e.g. \"64MiB\""))
        })
    }
}

pub(super) mod opt_bytes {
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        super::bytes::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(bytes::parse("64MiB"), Some(64 << 20));
        assert_eq!(bytes::parse("12"), Some(12));
        assert_eq!(bytes::parse("3 parsecs"), None);
    }
}
