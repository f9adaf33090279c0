//! Flags as one JSON object in S3 (`{"STATUS_BOARD_V2_ENABLED": 10, ...}`), for static sites
//! that read their flags from the bucket. Every change is a conditional write (`If-Match` the
//! ETag read, or `If-None-Match: *` for the first), retried on conflict, so two writers never
//! lose each other's flags.

use std::collections::BTreeMap;

use anyhow::Context;

use super::flags::{FlagFuture, FlagStore};
use super::s3::{S3Location, Written};

pub struct S3Flags {
    loc: S3Location,
    key: String,
}

impl S3Flags {
    /// `url` is `s3://bucket/path/flags.json`.
    pub async fn connect(url: &str) -> anyhow::Result<S3Flags> {
        let loc = S3Location::connect(url).await?;
        let key = loc.prefix.trim_end_matches('/').to_string();
        anyhow::ensure!(
            !key.is_empty(),
            "`{url}`: name the flags object, e.g. s3://bucket/config/flags.json"
        );
        Ok(S3Flags { loc, key })
    }

    async fn read(&self) -> anyhow::Result<(BTreeMap<String, u8>, Option<String>, bool)> {
        match self.loc.get(&self.key).await? {
            None => Ok((BTreeMap::new(), None, false)),
            Some((bytes, etag)) => {
                let flags = serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "{} is not a JSON object of percentages",
                        self.loc.url(&self.key)
                    )
                })?;
                Ok((flags, etag, true))
            }
        }
    }
}

impl FlagStore for S3Flags {
    fn get<'a>(&'a self, name: &'a str) -> FlagFuture<'a, u8> {
        Box::pin(async move { Ok(self.read().await?.0.get(name).copied().unwrap_or(0)) })
    }

    fn set<'a>(&'a self, name: &'a str, percent: u8) -> FlagFuture<'a, ()> {
        Box::pin(async move {
            anyhow::ensure!(
                percent <= 100,
                "flag {name}: {percent}% is not a percentage"
            );
            for _ in 0..8 {
                let (mut flags, etag, exists) = self.read().await?;
                flags.insert(name.to_string(), percent);
                let body = serde_json::to_vec_pretty(&flags)?;
                let only_if = if exists {
                    // A store that gives no ETag cannot do a conditional update; write plainly.
                    etag.as_deref().map(Some)
                } else {
                    Some(None)
                };
                match self
                    .loc
                    .put(&self.key, body, "application/json", only_if)
                    .await?
                {
                    Written::Done => return Ok(()),
                    Written::Conflict => continue,
                }
            }
            anyhow::bail!(
                "setting {name} to {percent}% in {}: the object kept changing under us (8 conflicting writes)",
                self.loc.url(&self.key)
            )
        })
    }

    fn all(&self) -> FlagFuture<'_, BTreeMap<String, u8>> {
        Box::pin(async move { Ok(self.read().await?.0) })
    }

    fn describe(&self) -> String {
        self.loc.url(&self.key)
    }
}
