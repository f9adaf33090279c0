//! Real deploys against the AWS SDK and moto on 127.0.0.1: what lands in S3, with which headers,
//! the manifest, a full rollback, and a bucket that does not exist.

mod support;

use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};
use support::*;

fn launch_host(moto: &Moto) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_launch-host"));
    c.env("LAUNCH_HOST_CACHE_DIR", cache_dir())
        .stdin(Stdio::null());
    for (k, v) in moto.env() {
        c.env(k, v);
    }
    c
}

fn run(moto: &Moto, dir: &std::path::Path, runbook: &str) -> Output {
    let book = dir.join("launch.toml");
    std::fs::write(&book, runbook).unwrap();
    stock_plugin("canary-steps");
    launch_host(moto)
        .args([
            "run",
            "--yes",
            "--plugins",
            repo().join("plugins").to_str().unwrap(),
            "--runbook",
            book.to_str().unwrap(),
        ])
        .args(["--runs-dir", dir.join("runs").to_str().unwrap()])
        .output()
        .unwrap()
}

fn runbook(moto: &Moto, bucket: &str, stages: &str) -> String {
    format!(
        "[launch]\nname = \"x\"\nflag = \"STATUS_BOARD_V2_ENABLED\"\n\
         [environments.production]\nurl = \"{e}/{bucket}\"\napi-url = \"{e}/{bucket}\"\nstore = \"s3://{bucket}\"\n{stages}",
        e = moto.endpoint
    )
}

const DEPLOY: &str = "[[stage]]\nname = \"deploy\"\naction = \"deploy\"\nenvironment = \"production\"\nsite = \"statusboard-v2\"\n";

/// A bucket whose objects anyone may read, as a static site's origin (the deploy stage checks
/// that the site serves the new release).
async fn site_bucket(s3: &aws_sdk_s3::Client, bucket: &str) {
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    );
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .unwrap();
}

async fn body(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    s3_object(s3, bucket, key)
        .await
        .unwrap_or_else(|| panic!("s3://{bucket}/{key} exists"))
}

#[tokio::test]
async fn deploy_uploads_every_file_with_its_headers_and_a_correct_manifest() {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    site_bucket(&s3, "site").await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(&moto, dir.path(), &runbook(&moto, "site", DEPLOY));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let current = String::from_utf8(body(&s3, "site", "current").await).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&body(&s3, "site", &format!("manifests/{current}.json")).await)
            .unwrap();
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(
        files.len(),
        3,
        "index.html, a script and a stylesheet: {manifest:#}"
    );
    for f in files {
        let path = f["path"].as_str().unwrap();
        for key in [path.to_string(), format!("releases/{current}/{path}")] {
            let head = s3
                .head_object()
                .bucket("site")
                .key(&key)
                .send()
                .await
                .unwrap();
            let (ct, cc) = (
                head.content_type().unwrap_or(""),
                head.cache_control().unwrap_or(""),
            );
            assert_eq!(ct, f["content_type"].as_str().unwrap(), "{key}");
            if path == "index.html" {
                assert_eq!((ct, cc), ("text/html; charset=utf-8", "no-cache"), "{key}");
            } else {
                assert_eq!(cc, "public, max-age=31536000, immutable", "{key}");
            }
            let bytes = body(&s3, "site", &key).await;
            assert_eq!(
                f["sha256"],
                hex::encode(Sha256::digest(&bytes)),
                "{key}: manifest digest"
            );
            assert_eq!(f["size"], bytes.len());
        }
    }
}

#[tokio::test]
async fn full_rollback_restores_the_previous_release_bytes() {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    site_bucket(&s3, "site").await;
    let dir = tempfile::tempdir().unwrap();
    let stages = format!(
        "{DEPLOY}[[stage]]\nname = \"deploy-again\"\naction = \"deploy\"\nenvironment = \"production\"\nsite = \"statusboard-v2\"\n\
         [[stage]]\nname = \"undo\"\naction = \"rollback\"\nenvironment = \"production\"\nfull = true\n"
    );
    let out = run(&moto, dir.path(), &runbook(&moto, "site", &stages));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let current = String::from_utf8(body(&s3, "site", "current").await).unwrap();
    assert!(
        current.ends_with("-deploy"),
        "the first release is current again: {current}"
    );
    let live = body(&s3, "site", "index.html").await;
    assert_eq!(
        live,
        body(&s3, "site", &format!("releases/{current}/index.html")).await,
        "the site root has the first release's bytes"
    );
    let second = current.replace("-deploy", "-deploy-again");
    assert_ne!(
        live,
        body(&s3, "site", &format!("releases/{second}/index.html")).await
    );
}

#[tokio::test]
async fn a_missing_bucket_is_refused_before_anything_runs() {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(&moto, dir.path(), &runbook(&moto, "no-such-bucket", DEPLOY));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing bucket is a configuration error: {stderr}"
    );
    assert!(
        stderr.contains("s3://no-such-bucket/launch/lock")
            && stderr.contains("NoSuchBucket")
            && stderr.contains("check the store URL"),
        "{stderr}"
    );
    assert!(
        support::local_runs(&dir.path().join("runs")).is_empty(),
        "no run was started"
    );
    assert!(s3.list_buckets().send().await.unwrap().buckets().is_empty());
}

/// A CloudFront distribution in moto, in front of `bucket`; returns a client and its id.
async fn distribution(moto: &Moto, bucket: &str) -> (aws_sdk_cloudfront::Client, String) {
    use aws_sdk_cloudfront::types::*;
    let creds =
        aws_sdk_cloudfront::config::Credentials::new("testing", "testing", None, None, "moto");
    let conf = aws_sdk_cloudfront::config::Builder::new()
        .behavior_version(aws_sdk_cloudfront::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudfront::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(&moto.endpoint)
        .build();
    let cf = aws_sdk_cloudfront::Client::from_conf(conf);
    let origin = Origin::builder()
        .id("site")
        .domain_name(format!("{bucket}.s3.amazonaws.com"))
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .unwrap();
    let config = DistributionConfig::builder()
        .caller_reference("test")
        .comment("launch-host test")
        .enabled(true)
        .origins(
            Origins::builder()
                .quantity(1)
                .items(origin)
                .build()
                .unwrap(),
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("site")
                .viewer_protocol_policy(ViewerProtocolPolicy::AllowAll)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let created = cf
        .create_distribution()
        .distribution_config(config)
        .send()
        .await
        .unwrap();
    let id = created.distribution().unwrap().id().to_string();
    (cf, id)
}

#[tokio::test]
async fn deploy_invalidates_cloudfront_and_waits_for_it() {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    site_bucket(&s3, "site").await;
    let (cf, dist) = distribution(&moto, "site").await;
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(&moto, "site", DEPLOY).replace(
        "store = \"s3://site\"\n",
        &format!("store = \"s3://site\"\ncloudfront = \"{dist}\"\n"),
    );
    let out = run(&moto, dir.path(), &book);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("report.json").exists())
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    let deploy = &report["stages"][0];
    let cdn = deploy["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "cdn-invalidated")
        .expect("a CDN check");
    assert_eq!(cdn["verdict"]["kind"], "pass");
    assert!(
        deploy["effects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap() == format!("invalidate /* on cloudfront:{dist}")),
        "{deploy:#}"
    );
    // Read back through the SDK: exactly one invalidation, of `/*`.
    let list = cf
        .list_invalidations()
        .distribution_id(&dist)
        .send()
        .await
        .unwrap();
    let items = list.invalidation_list().unwrap().items();
    assert_eq!(items.len(), 1, "{items:?}");
    let inv = cf
        .get_invalidation()
        .distribution_id(&dist)
        .id(items[0].id())
        .send()
        .await
        .unwrap();
    let paths = inv
        .invalidation()
        .unwrap()
        .invalidation_batch()
        .unwrap()
        .paths()
        .unwrap()
        .items()
        .to_vec();
    assert_eq!(paths, vec!["/*".to_string()]);
}
