//! Objects under an `s3://bucket/prefix` location: reads capped in size, writes conditional on
//! the version seen (`If-None-Match` / `If-Match` on the ETag) — what locks, leases, journals
//! and flags build on — listings with ETags, and every request counted.

use anyhow::Context;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;

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
        SENT.fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
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

/// Bytes of object bodies this process has written through `S3Location`, for the benchmarks.
static SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many bytes of object bodies this process has written so far.
pub fn bytes_sent() -> u64 {
    SENT.load(std::sync::atomic::Ordering::Relaxed)
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
