//! The hosts a stage lets a plugin reach. Deny by default: an empty list reaches nothing.

use std::fmt;

use reqwest::Url;

/// One allowed host: `example.com` (any port), `example.com:8443`, `*.example.com` (subdomains
/// only), `127.0.0.1:8080`, `[::1]:9000`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl HostPattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || s.contains('/') || s.contains('@') {
            return Err(format!(
                "`{s}` is not a host pattern (expected e.g. `api.example.com`, `*.example.com` or `127.0.0.1:8080`)"
            ));
        }
        let (host, port) = split_port(s)?;
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        if host.is_empty() || host.contains('*') {
            return Err(format!("`{s}`: a wildcard may only be a leading `*.`"));
        }
        Ok(HostPattern {
            host: host.trim_matches(['[', ']']).to_ascii_lowercase(),
            wildcard,
            port,
        })
    }

    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        let host_ok = if self.wildcard {
            host.strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.ends_with('.'))
        } else {
            host == self.host
        };
        host_ok && self.port.is_none_or(|p| Some(p) == port)
    }
}

fn split_port(s: &str) -> Result<(&str, Option<u16>), String> {
    let bad_port = |p: &str| format!("`{s}`: `{p}` is not a port number");
    if let Some(rest) = s.strip_prefix('[') {
        // [v6]:port or [v6]
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: unclosed `[`"))?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((addr, Some(p.parse().map_err(|_| bad_port(p))?))),
            None if after.is_empty() => Ok((addr, None)),
            None => Err(format!("`{s}`: unexpected `{after}`")),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((h, Some(p.parse().map_err(|_| bad_port(p))?))),
        _ => Ok((s, None)),
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    patterns: Vec<HostPattern>,
}

impl AllowList {
    pub fn new(patterns: Vec<HostPattern>) -> Self {
        AllowList { patterns }
    }

    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        items
            .iter()
            .map(|s| HostPattern::parse(s.as_ref()))
            .collect::<Result<_, _>>()
            .map(AllowList::new)
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `Ok` when the URL's host (and port, where the pattern names one) is allowed.
    pub fn check(&self, url: &Url) -> Result<(), String> {
        let host = url
            .host_str()
            .unwrap_or("")
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        let port = url.port_or_known_default();
        self.check_host(&host, port)
    }

    pub fn check_host(&self, host: &str, port: Option<u16>) -> Result<(), String> {
        if self.patterns.iter().any(|p| p.matches(host, port)) {
            return Ok(());
        }
        let target = match port {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        if self.patterns.is_empty() {
            Err(format!(
                "{target} is not allowed: this stage grants no network access (add it to the stage's `allow-hosts`)"
            ))
        } else {
            Err(format!(
                "{target} is not on this stage's allow-list ({self})"
            ))
        }
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.patterns.iter().map(ToString::to_string).collect();
        f.write_str(&items.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> AllowList {
        AllowList::parse(items).unwrap()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn empty_list_denies_everything() {
        assert!(list(&[]).check(&url("http://127.0.0.1/")).is_err());
    }

    #[test]
    fn port_in_pattern_is_enforced() {
        let l = list(&["127.0.0.1:8080"]);
        assert!(l.check(&url("http://127.0.0.1:8080/x")).is_ok());
        let err = l.check(&url("http://127.0.0.1:8081/x")).unwrap_err();
        assert!(err.contains("127.0.0.1:8081"), "{err}");
    }

    #[test]
    fn host_without_port_allows_any_port() {
        let l = list(&["localhost"]);
        assert!(l.check(&url("http://localhost:1234/")).is_ok());
        assert!(l.check(&url("https://localhost/")).is_ok());
        assert!(l.check(&url("http://127.0.0.1/")).is_err());
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let l = list(&["*.example.com"]);
        assert!(l.check(&url("https://api.example.com/")).is_ok());
        assert!(l.check(&url("https://example.com/")).is_err());
        assert!(l.check(&url("https://evilexample.com/")).is_err());
    }

    #[test]
    fn ipv6_patterns() {
        let l = list(&["[::1]:9000"]);
        assert!(l.check(&url("http://[::1]:9000/")).is_ok());
        assert!(l.check(&url("http://[::1]:9001/")).is_err());
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for bad in ["", "http://x.com", "a*.com", "x.com:port", "user@x.com"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
