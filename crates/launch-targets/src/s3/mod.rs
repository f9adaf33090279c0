//! Releases in S3 (or any S3-compatible store: the standard `AWS_ENDPOINT_URL` override is
//! honoured, with path-style addressing). Layout under `s3://BUCKET/PREFIX`:
//! `releases/<id>/...` every release as uploaded, `manifests/<id>.json` its manifest, the site
//! itself at the prefix root (what CloudFront serves), and `current` naming the live release.

mod location;

use anyhow::Context;
use aws_sdk_s3::primitives::ByteStream;
use futures::StreamExt;

use super::store::{ArtifactStore, Manifest, OnUploaded, StoreFuture, read_build};
pub(crate) use location::err;
pub use location::{MAX_OBJECT_BYTES, Object, S3Location, Written, bytes_sent, requests};

pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    loc: S3Location,
}

/// Keys under the prefix that belong to launch-host, not to the site.
const CONTROL: [&str; 4] = ["releases/", "manifests/", "current", "launch/"];

impl S3Store {
    pub async fn connect(url: &str) -> anyhow::Result<S3Store> {
        let loc = S3Location::connect(url).await?;
        Ok(S3Store {
            client: loc.client.clone(),
            bucket: loc.bucket.clone(),
            prefix: loc.prefix.clone(),
            loc,
        })
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    async fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        self.loc.list(prefix).await
    }

    /// Where this store keeps launch-host's own objects (locks, runs).
    pub fn location(&self) -> &S3Location {
        &self.loc
    }

    async fn copy(&self, from: &str, to: &str) -> anyhow::Result<()> {
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .copy_source(format!("{}/{from}", self.bucket))
            .key(to)
            .send()
            .await
            .map_err(err)
            .with_context(|| format!("copying s3://{}/{from} to {to}", self.bucket))?;
        Ok(())
    }
}

impl ArtifactStore for S3Store {
    fn publish<'a>(
        &'a self,
        id: &'a str,
        build_dir: &'a std::path::Path,
        on_uploaded: OnUploaded<'a>,
    ) -> StoreFuture<'a, Manifest> {
        Box::pin(async move {
            let (manifest, files) = read_build(id, build_dir)?;
            let uploads = files.into_iter().map(|(file, bytes)| async move {
                let key = self.key(&format!("releases/{id}/{}", file.path));
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .content_type(&file.content_type)
                    .cache_control(&file.cache_control)
                    .body(ByteStream::from(bytes))
                    .send()
                    .await
                    .map_err(err)
                    .with_context(|| format!("uploading s3://{}/{key}", self.bucket))?;
                on_uploaded(&file);
                anyhow::Ok(())
            });
            let results: Vec<anyhow::Result<_>> = futures::stream::iter(uploads)
                .buffer_unordered(8)
                .collect()
                .await;
            for r in results {
                r?;
            }
            let key = self.key(&format!("manifests/{id}.json"));
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .content_type("application/json")
                .body(ByteStream::from(serde_json::to_vec_pretty(&manifest)?))
                .send()
                .await
                .map_err(err)
                .with_context(|| format!("writing the manifest s3://{}/{key}", self.bucket))?;
            Ok(manifest)
        })
    }

    /// Copies the release to the site root (assets first, entry points last, so no visitor
    /// gets a page whose assets are missing), moves `current`, then removes files the new
    /// release does not have.
    fn set_current<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let release_prefix = self.key(&format!("releases/{id}/"));
            let mut keys = self.list(&release_prefix).await?;
            anyhow::ensure!(
                !keys.is_empty(),
                "release {id} does not exist in {}",
                self.describe()
            );
            keys.sort_by_key(|k| super::store::cache_control(k) == "no-cache");
            let mut live = std::collections::HashSet::new();
            for key in &keys {
                let rel = &key[release_prefix.len()..];
                self.copy(key, &self.key(rel)).await?;
                live.insert(self.key(rel));
            }
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(self.key("current"))
                .body(ByteStream::from(id.as_bytes().to_vec()))
                .send()
                .await
                .map_err(err)
                .context("moving the current pointer")?;
            for key in self.list(&self.prefix).await? {
                let rel = &key[self.prefix.len()..];
                if !live.contains(&key) && !CONTROL.iter().any(|c| rel.starts_with(c)) {
                    self.client
                        .delete_object()
                        .bucket(&self.bucket)
                        .key(&key)
                        .send()
                        .await
                        .map_err(err)?;
                }
            }
            Ok(())
        })
    }

    fn current(&self) -> StoreFuture<'_, Option<String>> {
        Box::pin(async move {
            match self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(self.key("current"))
                .send()
                .await
            {
                Ok(o) => {
                    let bytes = o
                        .body
                        .collect()
                        .await
                        .context("reading the current pointer")?
                        .into_bytes();
                    Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string()))
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                Err(e) => Err(err(e)).with_context(|| {
                    format!("reading s3://{}/{}current", self.bucket, self.prefix)
                }),
            }
        })
    }

    fn releases(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let prefix = self.key("manifests/");
            let mut ids: Vec<String> = self
                .list(&prefix)
                .await?
                .into_iter()
                .filter_map(|k| k[prefix.len()..].strip_suffix(".json").map(String::from))
                .collect();
            ids.sort();
            Ok(ids)
        })
    }

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}
