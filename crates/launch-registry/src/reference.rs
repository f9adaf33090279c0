//! `oci://HOST[:PORT]/NAMESPACE/NAME[:TAG][@sha256:HEX]`: where a plugin lives in a registry.
//! The registry host is always written out: a policy never comes from Docker Hub because a
//! runbook forgot a host name.

use std::fmt;

use oci_client::Reference;

pub const SCHEME: &str = "oci://";

/// A parsed `oci://` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    inner: Reference,
}

#[derive(Debug, thiserror::Error)]
pub enum RefError {
    #[error(
        "`{0}` is not an OCI reference: write oci://HOST[:PORT]/NAMESPACE/NAME:TAG or …@sha256:HEX"
    )]
    NotOci(String),
    #[error("`{0}`: {1}; write oci://HOST[:PORT]/NAMESPACE/NAME:TAG or …@sha256:HEX")]
    Malformed(String, String),
    #[error("`{0}` names no registry host; write it out, e.g. oci://registry.example.com/{1}")]
    NoHost(String, String),
}

impl PluginRef {
    /// Whether `text` is meant as an OCI reference (rather than a plugin's name).
    pub fn is_oci(text: &str) -> bool {
        text.starts_with(SCHEME)
    }

    pub fn parse(text: &str) -> Result<PluginRef, RefError> {
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| RefError::NotOci(text.to_string()))?;
        // Without a host the parser would quietly fill in docker.io.
        let (host, path) = rest
            .split_once('/')
            .ok_or_else(|| RefError::NoHost(text.to_string(), rest.to_string()))?;
        if !(host.contains('.') || host.contains(':') || host == "localhost") {
            return Err(RefError::NoHost(text.to_string(), rest.to_string()));
        }
        if path.is_empty() {
            return Err(RefError::Malformed(
                text.to_string(),
                "it names no repository".into(),
            ));
        }
        let inner: Reference = rest
            .parse()
            .map_err(|e| RefError::Malformed(text.to_string(), format!("{e}")))?;
        if let Some(d) = inner.digest()
            && !is_sha256(d)
        {
            return Err(RefError::Malformed(
                text.to_string(),
                format!("`{d}` is not a sha256 digest (sha256: and 64 hex digits)"),
            ));
        }
        Ok(PluginRef { inner })
    }

    pub fn registry(&self) -> &str {
        self.inner.resolve_registry()
    }

    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag as written; `None` when the reference names only a digest.
    pub fn tag(&self) -> Option<&str> {
        if self.inner.digest().is_some() && self.inner.tag().is_none() {
            return None;
        }
        self.inner.tag()
    }

    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// The last path segment: the plugin's file name when pulled.
    pub fn name(&self) -> &str {
        self.repository()
            .rsplit('/')
            .next()
            .unwrap_or(self.repository())
    }

    /// This repository at `digest` (the tag dropped: a digest is what is fetched).
    pub fn at(&self, digest: &str) -> PluginRef {
        PluginRef {
            inner: Reference::with_digest(
                self.registry().to_string(),
                self.repository().to_string(),
                digest.to_string(),
            ),
        }
    }

    /// This repository at another tag.
    pub fn tagged(&self, tag: &str) -> PluginRef {
        PluginRef {
            inner: Reference::with_tag(
                self.registry().to_string(),
                self.repository().to_string(),
                tag.to_string(),
            ),
        }
    }

    pub(crate) fn oci(&self) -> &Reference {
        &self.inner
    }
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry(), self.repository())?;
        if let Some(t) = self.tag() {
            write!(f, ":{t}")?;
        }
        if let Some(d) = self.digest() {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `sha256:` and 64 lowercase hex digits.
pub fn is_sha256(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_read_as_written() {
        let r = PluginRef::parse("oci://127.0.0.1:5000/launch/canary-steps:1.2.0").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "launch/canary-steps");
        assert_eq!(r.tag(), Some("1.2.0"));
        assert_eq!(r.name(), "canary-steps");
        assert_eq!(
            r.to_string(),
            "oci://127.0.0.1:5000/launch/canary-steps:1.2.0"
        );
        let d = format!("sha256:{}", "ab".repeat(32));
        let pinned = r.at(&d);
        assert_eq!(pinned.tag(), None);
        assert_eq!(
            pinned.to_string(),
            format!("oci://127.0.0.1:5000/launch/canary-steps@{d}")
        );
        assert_eq!(PluginRef::parse(&pinned.to_string()).unwrap(), pinned);
    }

    #[test]
    fn a_reference_without_a_host_or_with_a_bad_digest_is_refused() {
        for bad in [
            "canary-steps",
            "oci://launch/canary-steps:1.0",
            "oci://canary-steps",
            "oci://registry.example.com/",
            "oci://registry.example.com/x@sha256:abc",
            "oci://registry.example.com/x@md5:abc",
        ] {
            assert!(PluginRef::parse(bad).is_err(), "{bad}");
        }
    }
}
