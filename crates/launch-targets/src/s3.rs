//! Releases in S3 (or any S3-compatible store: the standard `AWS_ENDPOINT_URL` override is
//! honoured, with path-style addressing). Layout under `s3://BUCKET/PREFIX`:
//! `releases/<id>/...` every release as uploaded, `manifests/<id>.json` its manifest, the site
//! itself at the prefix root (what CloudFront serves), and `current` naming the live release.

use anyhow::Context;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use futures::StreamExt;

use super::store::{ArtifactStore, Manifest, OnUploaded, StoreFuture, read_build};

pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    loc: S3Location,
}

/// Keys under the prefix that belong to launch-host, not to the site.
const CONTROL: [&str; 4] = ["releases/", "manifests/", "current", "launch/"];

/// An SDK error as an operator reads it: the service's code and message when S3 answered,
/// the cause chain when it did not, and what to do about the common ones.
pub(crate) fn err<E>(
    e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> anyhow::Error
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    use aws_sdk_s3::error::SdkError;
    let (text, hint) = match &e {
        SdkError::ServiceError(se) => {
            let inner = se.err();
            let code = inner.code().unwrap_or("error");
            let status = se.raw().status().as_u16();
            let text = format!(
                "S3 answered {status} {code}: {}",
                inner.message().unwrap_or("(no message)")
            );
            let hint = match code {
                "NoSuchBucket" => "the bucket does not exist: check the store URL (S3_BUCKET)",
                "AccessDenied" | "AllAccessDisabled" => {
                    "access denied: the credentials lack permission on this bucket"
                }
                "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" => {
                    "the credentials were rejected: check AWS_PROFILE or AWS_ACCESS_KEY_ID"
                }
                _ if status >= 500 => "S3 kept failing after retries: try again later",
                _ => "",
            };
            (text, hint)
        }
        other => {
            let text = DisplayErrorContext(other).to_string();
            let hint = if text.contains("credentials") {
                "no AWS credentials were found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            } else if matches!(
                other,
                SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
            ) {
                "the S3 endpoint did not answer: check the network, AWS_REGION, and AWS_ENDPOINT_URL if set"
            } else {
                ""
            };
            (text, hint)
        }
    };
    if hint.is_empty() {
        anyhow::anyhow!("{text}")
    } else {
        anyhow::anyhow!("{text}; {hint}")
    }
}

/// An `s3://bucket/prefix` location, with a client from the standard AWS chain.
#[derive(Clone)]
pub struct S3Location {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    /// Empty, or ends with `/`.
    pub prefix: String,
}

/// The largest object `get` reads: a journal's bound, with room to spare.
pub const MAX_OBJECT_BYTES: u64 = 2 << 30;

/// What a conditional write found.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Done,
    /// The precondition failed: another writer got there first.
    Conflict,
}

impl S3Location {
    /// `url` is `s3://bucket` or `s3://bucket/prefix`. Credentials and region come from the
    /// standard AWS chain (`AWS_PROFILE`, environment, SSO, instance role); `AWS_ENDPOINT_URL`
    /// points it at an S3-compatible store.
    pub async fn connect(url: &str) -> anyhow::Result<S3Location> {
        let rest = url
            .strip_prefix("s3://")
            .with_context(|| format!("`{url}` is not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        anyhow::ensure!(!bucket.is_empty(), "`{url}` names no bucket");
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        Ok(S3Location {
            client: client().await,
            bucket: bucket.to_string(),
            prefix,
        })
    }

    pub fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The object's bytes and ETag, or `None` when it does not exist.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<(Vec<u8>, Option<String>)>> {
        Ok(self.get_object(key).await?.map(|o| (o.bytes, o.etag)))
    }

    /// The object — bytes, ETag and user metadata — or `None` when it does not exist.
    pub async fn get_object(&self, key: &str) -> anyhow::Result<Option<Object>> {
        counted();
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => {
                // An object is read whole: one larger than any run's file is refused, not
                // read until memory runs out.
                if o.content_length()
                    .is_some_and(|n| n as u64 > MAX_OBJECT_BYTES)
                {
                    anyhow::bail!(
                        "{} is {} bytes, more than the {MAX_OBJECT_BYTES} an object of a launch can be",
                        self.url(key),
                        o.content_length().unwrap_or_default()
                    );
                }
                let etag = o.e_tag().map(String::from);
                let metadata = o.metadata().cloned().unwrap_or_default();
                let bytes = o
                    .body
                    .collect()
                    .await
                    .with_context(|| format!("reading {}", self.url(key)))?
                    .into_bytes()
                    .to_vec();
                Ok(Some(Object {
                    bytes,
                    etag,
                    metadata,
                }))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(err(e)).with_context(|| format!("reading {}", self.url(key))),
        }
    }

    /// The object's ETag without its bytes, or `None` when it does not exist.
    pub async fn head(&self, key: &str) -> anyhow::Result<Option<String>> {
        counted();
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => Ok(Some(o.e_tag().unwrap_or_default().to_string())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(err(e)).with_context(|| format!("reading {}", self.url(key))),
        }
    }

    /// Writes `key`. `only_if`: `Some(None)` writes only if the key does not exist
    /// (`If-None-Match: *`), `Some(Some(etag))` only if it is unchanged (`If-Match`).
    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        only_if: Option<Option<&str>>,
    ) -> anyhow::Result<Written> {
        Ok(
            match self.put_tagged(key, body, content_type, only_if).await? {
                Some(_) => Written::Done,
                None => Written::Conflict,
            },
        )
    }

    /// `put`, returning the new version's ETag (what the next `If-Match` names), or `None`
    /// when the precondition failed.
    pub async fn put_tagged(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        only_if: Option<Option<&str>>,
    ) -> anyhow::Result<Option<String>> {
        self.put_with(key, body, content_type, only_if, &[]).await
    }

    /// `put_tagged` with user metadata (`x-amz-meta-NAME`) on the new version.
    pub async fn put_with(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        only_if: Option<Option<&str>>,
        metadata: &[(&str, String)],
    ) -> anyhow::Result<Option<String>> {
        counted();
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            // Control objects (flags a static site reads, locks, journals) must never be
            // served stale.
            .cache_control("no-cache")
            .body(ByteStream::from(body));
        req = match only_if {
            Some(None) => req.if_none_match("*"),
            Some(Some(etag)) => req.if_match(etag),
            None => req,
        };
        for (name, value) in metadata {
            req = req.metadata(*name, value);
        }
        match req.send().await {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_string())),
            Err(e) if is_conflict(e.raw_response().map(|r| r.status().as_u16())) => Ok(None),
            Err(e) => Err(err(e)).with_context(|| format!("writing {}", self.url(key))),
        }
    }

    /// Deletes `key`; with `etag`, only if the object is still that version.
    pub async fn delete(&self, key: &str, etag: Option<&str>) -> anyhow::Result<Written> {
        counted();
        let mut req = self.client.delete_object().bucket(&self.bucket).key(key);
        if let Some(etag) = etag {
            req = req.if_match(etag);
        }
        match req.send().await {
            Ok(_) => Ok(Written::Done),
            Err(e) if is_conflict(e.raw_response().map(|r| r.status().as_u16())) => {
                Ok(Written::Conflict)
            }
            Err(e) => Err(err(e)).with_context(|| format!("deleting {}", self.url(key))),
        }
    }

    /// Every key under `prefix` (a full key prefix, not relative to this location).
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .list_tagged(prefix)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// Every key under `prefix` with its ETag, as the listing gives it: what changed can be
    /// told without reading an object.
    pub async fn list_tagged(&self, prefix: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            counted();
            let page = page
                .map_err(err)
                .with_context(|| format!("listing {}", self.url(prefix)))?;
            keys.extend(page.contents().iter().filter_map(|o| {
                Some((
                    o.key()?.to_string(),
                    o.e_tag().unwrap_or_default().to_string(),
                ))
            }));
        }
        Ok(keys)
    }
}

/// An object as read: its bytes, its ETag and its user metadata.
pub struct Object {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
    pub metadata: std::collections::HashMap<String, String>,
}

/// S3 requests this process made through `S3Location` (reads, writes, deletes, list pages):
/// what a launch costs in requests, for the benchmarks.
static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn counted() {
    REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// How many S3 requests this process has made so far.
pub fn requests() -> u64 {
    REQUESTS.load(std::sync::atomic::Ordering::Relaxed)
}

/// 412 Precondition Failed, or 409 when a conditional write raced another.
fn is_conflict(status: Option<u16>) -> bool {
    matches!(status, Some(412 | 409))
}

/// One S3 client configuration for the whole process: the standard chain, plus path-style
/// addressing when an endpoint override is set (S3-compatible stores rarely resolve bucket
/// subdomains). Retries: the SDK's standard mode, 3 attempts with backoff, so a 5xx or a
/// dropped connection is retried before it becomes an error.
async fn client() -> aws_sdk_s3::Client {
    let shared = aws_config::load_from_env().await;
    // The SDK sets no operation timeout: an endpoint that accepts and never answers would
    // hang a launch forever.
    let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .operation_attempt_timeout(std::time::Duration::from_secs(60))
        .operation_timeout(std::time::Duration::from_secs(300))
        .build();
    let mut conf = aws_sdk_s3::config::Builder::from(&shared).timeout_config(timeouts);
    if std::env::var_os("AWS_ENDPOINT_URL").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
    {
        conf = conf.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(conf.build())
}

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
