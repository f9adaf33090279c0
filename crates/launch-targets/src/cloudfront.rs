//! CloudFront invalidations: after a release becomes current, cached copies of its entry points
//! must go, and the deploy waits until CloudFront says the invalidation completed.

use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_cloudfront::error::DisplayErrorContext;
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};

pub struct CloudFront {
    client: aws_sdk_cloudfront::Client,
    distribution: String,
}

fn err<E: std::error::Error>(e: E) -> anyhow::Error {
    anyhow::anyhow!("{}", DisplayErrorContext(e))
}

impl CloudFront {
    /// Credentials and region come from the standard AWS chain; `AWS_ENDPOINT_URL` overrides
    /// the endpoint (S3-compatible stacks, moto).
    pub async fn connect(distribution: &str) -> CloudFront {
        let shared = aws_config::load_from_env().await;
        // As for S3: the SDK sets no operation timeout of its own.
        let timeouts = aws_sdk_cloudfront::config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(60))
            .build();
        let conf = aws_sdk_cloudfront::config::Builder::from(&shared).timeout_config(timeouts);
        CloudFront {
            client: aws_sdk_cloudfront::Client::from_conf(conf.build()),
            distribution: distribution.to_string(),
        }
    }

    pub fn describe(&self) -> String {
        format!("cloudfront:{}", self.distribution)
    }

    /// Invalidates `paths` and waits until the invalidation completes or `timeout` passes.
    /// `reference` makes the request idempotent: a retry with the same reference (a resumed
    /// deploy) does not create a second invalidation. Returns the invalidation id.
    pub async fn invalidate(
        &self,
        paths: &[&str],
        reference: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let batch = InvalidationBatch::builder()
            .paths(
                Paths::builder()
                    .quantity(paths.len() as i32)
                    .set_items(Some(paths.iter().map(|p| p.to_string()).collect()))
                    .build()?,
            )
            .caller_reference(reference)
            .build()?;
        let created = self
            .client
            .create_invalidation()
            .distribution_id(&self.distribution)
            .invalidation_batch(batch)
            .send()
            .await
            .map_err(err)
            .with_context(|| {
                format!(
                    "creating an invalidation of {} on distribution {}",
                    paths.join(" "),
                    self.distribution
                )
            })?;
        let id = created
            .invalidation()
            .map(|i| i.id().to_string())
            .context("CloudFront returned no invalidation id")?;
        let started = Instant::now();
        loop {
            let status = created_status(&self.client, &self.distribution, &id).await?;
            // Real CloudFront says "Completed", moto "COMPLETED".
            if status.eq_ignore_ascii_case("completed") {
                return Ok(id);
            }
            anyhow::ensure!(
                started.elapsed() < timeout,
                "invalidation {id} on distribution {} still `{status}` after {} s",
                self.distribution,
                timeout.as_secs()
            );
            tokio::time::sleep(Duration::from_secs(2).min(timeout / 10)).await;
        }
    }
}

async fn created_status(
    client: &aws_sdk_cloudfront::Client,
    distribution: &str,
    id: &str,
) -> anyhow::Result<String> {
    let got = client
        .get_invalidation()
        .distribution_id(distribution)
        .id(id)
        .send()
        .await
        .map_err(err)
        .with_context(|| format!("reading invalidation {id} of distribution {distribution}"))?;
    Ok(got
        .invalidation()
        .map(|i| i.status().to_string())
        .unwrap_or_default())
}
