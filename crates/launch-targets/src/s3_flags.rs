//! Flags as one JSON object in S3 (`{"STATUS_BOARD_V2_ENABLED": 10, ...}`), for static sites
//! that read their flags from the bucket. Every change is a conditional write (`If-Match` the
//! ETag read, or `If-None-Match: *` for the first), retried on conflict, so two writers never
//! lose each other's flags.
//!
//! Fencing: the object's metadata (`x-amz-meta-launch-fences`) records, per flag, the run and
//! lease generation that last wrote it. A fenced write of an older generation of the same run
//! is refused — with the same `If-Match`, so no newer write can slip between the check and the
//! write. The object's content stays the plain map a site reads.

use std::collections::BTreeMap;

use anyhow::Context;

use super::flags::{Fence, Fenced, FlagFuture, FlagStore};
use super::s3::S3Location;

/// The metadata entry holding each flag's last fenced writer.
const FENCES: &str = "launch-fences";

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

    async fn read(&self) -> anyhow::Result<Read> {
        match self.loc.get_object(&self.key).await? {
            None => Ok(Read::default()),
            Some(o) => {
                let flags = serde_json::from_slice(&o.bytes).with_context(|| {
                    format!(
                        "{} is not a JSON object of percentages",
                        self.loc.url(&self.key)
                    )
                })?;
                // A garbled fence entry is no fence: a write is never blocked by noise.
                let fences = o
                    .metadata
                    .get(FENCES)
                    .and_then(|f| serde_json::from_str(f).ok())
                    .unwrap_or_default();
                Ok(Read {
                    flags,
                    etag: o.etag,
                    exists: true,
                    fences,
                })
            }
        }
    }

    /// Sets `name` to `percent`, conditionally; with `fence`, refused when a newer generation
    /// of the same run wrote it last.
    async fn write(&self, name: &str, percent: u8, fence: Option<&Fence>) -> anyhow::Result<()> {
        anyhow::ensure!(
            percent <= 100,
            "flag {name}: {percent}% is not a percentage"
        );
        for _ in 0..8 {
            let mut read = self.read().await?;
            if let (Some(ours), Some(last)) = (fence, read.fences.get(name))
                && last.run_id == ours.run_id
                && last.generation > ours.generation
            {
                return Err(Fenced {
                    flag: name.to_string(),
                    run_id: ours.run_id.clone(),
                    ours: ours.generation,
                    newer: last.generation,
                }
                .into());
            }
            read.flags.insert(name.to_string(), percent);
            if let Some(f) = fence {
                read.fences.insert(name.to_string(), f.clone());
            }
            let body = serde_json::to_vec_pretty(&read.flags)?;
            let only_if = if read.exists {
                // A store that gives no ETag cannot do a conditional update; write plainly.
                read.etag.as_deref().map(Some)
            } else {
                Some(None)
            };
            let meta = [(FENCES, serde_json::to_string(&read.fences)?)];
            let meta: &[(&str, String)] = if read.fences.is_empty() { &[] } else { &meta };
            if self
                .loc
                .put_with(&self.key, body, "application/json", only_if, meta)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        anyhow::bail!(
            "setting {name} to {percent}% in {}: the object kept changing under us (8 conflicting writes)",
            self.loc.url(&self.key)
        )
    }
}

/// The flags object as read.
#[derive(Default)]
struct Read {
    flags: BTreeMap<String, u8>,
    etag: Option<String>,
    exists: bool,
    /// Flag → the fenced writer that last set it.
    fences: BTreeMap<String, Fence>,
}

impl FlagStore for S3Flags {
    fn get<'a>(&'a self, name: &'a str) -> FlagFuture<'a, u8> {
        Box::pin(async move { Ok(self.read().await?.flags.get(name).copied().unwrap_or(0)) })
    }

    fn set<'a>(&'a self, name: &'a str, percent: u8) -> FlagFuture<'a, ()> {
        Box::pin(self.write(name, percent, None))
    }

    fn set_fenced<'a>(
        &'a self,
        name: &'a str,
        percent: u8,
        fence: &'a Fence,
    ) -> FlagFuture<'a, ()> {
        Box::pin(self.write(name, percent, Some(fence)))
    }

    fn fences(&self) -> bool {
        true
    }

    fn all(&self) -> FlagFuture<'_, BTreeMap<String, u8>> {
        Box::pin(async move { Ok(self.read().await?.flags) })
    }

    fn describe(&self) -> String {
        self.loc.url(&self.key)
    }
}
