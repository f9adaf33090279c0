//! What a flag file or object holds, whichever place it is kept in (a local file, an S3
//! object): the plain map of percentages (`{"STATUS_BOARD_V2_ENABLED": 10}`) that the guide's
//! static sites read, or a flagd flag definition (`flagd`). A store reads and rewrites the whole
//! document; only the named flag changes.

use std::collections::BTreeMap;

use anyhow::Context;

use super::flagd;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// `{"FLAG": percent, ...}`.
    Percentages,
    /// A flagd flag definition (https://flagd.dev/schema/v0/flags.json) whose flag is split
    /// by a `fractional` rule.
    Flagd,
}

impl Document {
    /// The flag's percentage in `bytes` (`None`: no document yet, every flag 0). `source`
    /// names the file or object in errors.
    pub fn percent(self, bytes: Option<&[u8]>, name: &str, source: &str) -> anyhow::Result<u8> {
        let Some(bytes) = bytes else { return Ok(0) };
        match self {
            Document::Percentages => {
                Ok(percentages(bytes, source)?.get(name).copied().unwrap_or(0))
            }
            Document::Flagd => flagd::percent(&parse(bytes, source)?, name)
                .with_context(|| format!("reading {name} from {source}")),
        }
    }

    /// The document with `name` at `percent`, every other flag kept.
    pub fn with_percent(
        self,
        bytes: Option<&[u8]>,
        name: &str,
        percent: u8,
        source: &str,
    ) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(
            percent <= 100,
            "flag {name}: {percent}% is not a percentage"
        );
        match self {
            Document::Percentages => {
                let mut flags = match bytes {
                    Some(b) => percentages(b, source)?,
                    None => BTreeMap::new(),
                };
                flags.insert(name.to_string(), percent);
                Ok(serde_json::to_vec_pretty(&flags)?)
            }
            Document::Flagd => {
                let doc = bytes.map(|b| parse(b, source)).transpose()?;
                let doc = flagd::with_percent(doc, name, percent)
                    .with_context(|| format!("setting {name} to {percent}% in {source}"))?;
                Ok(serde_json::to_vec_pretty(&doc)?)
            }
        }
    }
}

/// The plain map of percentages.
pub fn percentages(bytes: &[u8], source: &str) -> anyhow::Result<BTreeMap<String, u8>> {
    serde_json::from_slice(bytes)
        .with_context(|| format!("{source} is not a JSON object of percentages"))
}

fn parse(bytes: &[u8], source: &str) -> anyhow::Result<serde_json::Value> {
    serde_json::from_slice(bytes).with_context(|| format!("{source} is not JSON"))
}
