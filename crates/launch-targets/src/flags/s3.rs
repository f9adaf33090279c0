//! Flags in one S3 object: the JSON object of percentages (`{"STATUS_BOARD_V2_ENABLED": 10}`)
//! that static sites read from the bucket, or a flagd definition that flagd syncs (its S3 or
//! HTTP sync). Every change is a conditional write (`If-Match` the
//! ETag read, or `If-None-Match: *` for the first), retried on conflict, so two writers never
//! lose each other's flags.
//!
//! Fencing: the object's metadata (`x-amz-meta-launch-fences`) records, per flag, the run and
//! lease generation that last wrote it. A fenced write of an older generation of the same run
//! is refused — with the same `If-Match`, so no newer write can slip between the check and the
//! write. The object's content stays what its readers expect: the plain map, or the flagd
//! definition.

use std::collections::BTreeMap;

use super::document::Document;
use super::{Fence, Fenced, FlagFuture, FlagStore};
use crate::s3::S3Location;

/// The metadata entry holding each flag's last fenced writer.
const FENCES: &str = "launch-fences";

pub struct S3Flags {
    loc: S3Location,
    key: String,
    document: Document,
}

impl S3Flags {
    /// `url` is `s3://bucket/path/flags.json`, holding `document`.
    pub async fn connect(url: &str, document: Document) -> anyhow::Result<S3Flags> {
        let loc = S3Location::connect(url).await?;
        let key = loc.prefix.trim_end_matches('/').to_string();
        anyhow::ensure!(
            !key.is_empty(),
            "`{url}`: name the flags object, e.g. s3://bucket/config/flags.json"
        );
        Ok(S3Flags { loc, key, document })
    }

    async fn read(&self) -> anyhow::Result<Read> {
        match self.loc.get_object(&self.key).await? {
            None => Ok(Read::default()),
            Some(o) => {
                // A garbled fence entry is no fence: a write is never blocked by noise.
                let fences = o
                    .metadata
                    .get(FENCES)
                    .and_then(|f| serde_json::from_str(f).ok())
                    .unwrap_or_default();
                Ok(Read {
                    bytes: Some(o.bytes),
                    etag: o.etag,
                    fences,
                })
            }
        }
    }

    /// Sets `name` to `percent`, conditionally; with `fence`, refused when a newer generation
    /// of the same run wrote it last.
    async fn write(&self, name: &str, percent: u8, fence: Option<&Fence>) -> anyhow::Result<()> {
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
            let source = self.loc.url(&self.key);
            let body = self
                .document
                .with_percent(read.bytes.as_deref(), name, percent, &source)?;
            if let Some(f) = fence {
                read.fences.insert(name.to_string(), f.clone());
            }
            let only_if = if read.bytes.is_some() {
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
    /// `None`: no object yet.
    bytes: Option<Vec<u8>>,
    etag: Option<String>,
    /// Flag → the fenced writer that last set it.
    fences: BTreeMap<String, Fence>,
}

impl FlagStore for S3Flags {
    fn get<'a>(&'a self, name: &'a str) -> FlagFuture<'a, u8> {
        Box::pin(async move {
            let read = self.read().await?;
            let source = self.loc.url(&self.key);
            self.document.percent(read.bytes.as_deref(), name, &source)
        })
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

    fn describe(&self) -> String {
        match self.document {
            Document::Percentages => self.loc.url(&self.key),
            Document::Flagd => format!("flagd:{}", self.loc.url(&self.key)),
        }
    }
}
