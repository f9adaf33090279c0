//! Real deploys when the outside world misbehaves: an S3 endpoint that does not answer, one
//! that answers 5xx, no credentials, and a failure half-way through publishing. Each must end
//! with a clear error and a non-zero exit, and the live site must stay a complete release.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use sha2::{Digest, Sha256};
use support::*;

const DEPLOY: &str = "[[stage]]\nname = \"deploy\"\naction = \"deploy\"\nenvironment = \"production\"\nsite = \"statusboard-v2\"\n";

fn runbook(dir: &std::path::Path, site_url: &str) -> String {
    let text = format!(
        "[launch]\nname = \"x\"\nflag = \"STATUS_BOARD_V2_ENABLED\"\n\
         [environments.production]\nurl = \"{site_url}\"\napi-url = \"{site_url}\"\nstore = \"s3://site\"\n{DEPLOY}"
    );
    let path = dir.join("launch.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn deploy(env: &[(&str, String)], book: &str, runs: &std::path::Path) -> std::process::Output {
    let mut c = launch_host_with(env);
    c.args(["run", "--yes", "--runbook", book])
        .args(["--plugins", repo().join("plugins").to_str().unwrap()])
        .args(["--runs-dir", runs.to_str().unwrap()]);
    c.output().unwrap()
}

/// The moto environment with the endpoint replaced.
fn pointed_at(moto: &Moto, endpoint: &str) -> Vec<(&'static str, String)> {
    moto.env()
        .into_iter()
        .map(|(k, v)| {
            if k == "AWS_ENDPOINT_URL" {
                (k, endpoint.to_string())
            } else {
                (k, v)
            }
        })
        .collect()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_a_clear_error_before_anything_runs() {
    let moto = Moto::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path(), &moto.endpoint);
    let out = deploy(
        &pointed_at(&moto, &endpoint),
        &book,
        &dir.path().join("runs"),
    );
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(
        e.contains("s3://site/launch/lock") && e.contains("the S3 endpoint did not answer"),
        "{e}"
    );
    assert!(local_runs(&dir.path().join("runs")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundreds_are_retried_then_reported() {
    let moto = Moto::start();
    let server = Server::start(Router::new().fallback(|| async {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "<?xml version=\"1.0\"?><Error><Code>ServiceUnavailable</Code><Message>Please reduce your request rate.</Message></Error>",
        )
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path(), &moto.endpoint);
    let out = deploy(
        &pointed_at(&moto, &server.url("")),
        &book,
        &dir.path().join("runs"),
    );
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(
        e.contains("S3 answered 503 ServiceUnavailable: Please reduce your request rate")
            && e.contains("after retries"),
        "{e}"
    );
    // The SDK's standard retry mode: three attempts, then the error.
    assert_eq!(server.hits(), 3, "attempts before giving up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_are_named() {
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    let env: Vec<(&str, String)> = vec![
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("HOME", home.path().display().to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("none").display().to_string(),
        ),
        (
            "AWS_CONFIG_FILE",
            home.path().join("none").display().to_string(),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let book = runbook(dir.path(), &moto.endpoint);
    let mut c = launch_host_with(&env);
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ] {
        c.env_remove(k);
    }
    let out = c
        .args(["run", "--yes", "--runbook", &book])
        .args(["--plugins", repo().join("plugins").to_str().unwrap()])
        .args(["--runs-dir", dir.path().join("runs").to_str().unwrap()])
        .output()
        .unwrap();
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("no AWS credentials were found"), "{e}");
}

/// A proxy to moto that fails every copy of `index.html` (the last step of publishing a
/// release as current) with 503, and counts those failures.
async fn failing_proxy(moto: &Moto) -> (Server, Arc<AtomicUsize>) {
    let upstream = moto.endpoint.clone();
    let failed = Arc::new(AtomicUsize::new(0));
    let f2 = failed.clone();
    let client = reqwest::Client::new();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (upstream, failed, client) = (upstream.clone(), f2.clone(), client.clone());
            async move {
                if method == Method::PUT
                    && headers.contains_key("x-amz-copy-source")
                    && uri.path().ends_with("/index.html")
                {
                    failed.fetch_add(1, Ordering::SeqCst);
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        HeaderMap::new(),
                        Bytes::from_static(b"<Error><Code>ServiceUnavailable</Code><Message>down</Message></Error>"),
                    );
                }
                let url = format!(
                    "{upstream}{}",
                    uri.path_and_query().map_or("/", |p| p.as_str())
                );
                let mut req = client.request(method, url).body(body);
                for (k, v) in &headers {
                    if k != "host" {
                        req = req.header(k, v);
                    }
                }
                let resp = req.send().await.unwrap();
                let status = resp.status();
                let mut out = HeaderMap::new();
                for (k, v) in resp.headers() {
                    out.insert(k, v.clone());
                }
                (status, out, resp.bytes().await.unwrap())
            }
        },
    );
    (Server::start(app).await, failed)
}

async fn object(s3: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    s3_object(s3, "site", key)
        .await
        .unwrap_or_else(|| panic!("s3://site/{key} exists"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_half_way_leaves_the_previous_release_live_and_complete() {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    s3.create_bucket().bucket("site").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The site check of a deploy reads from this static server; it is not what is tested here.
    let site = plain_server().await;
    let book = runbook(dir.path(), &site.url(""));
    let first = deploy(&moto.env(), &book, &dir.path().join("runs"));
    // The plain server does not serve the release, so the deploy gate fails, but publishes.
    let before = String::from_utf8(object(&s3, "current").await).unwrap();
    assert!(before.ends_with("-deploy"), "{}", stderr(&first));

    let (proxy, failed) = failing_proxy(&moto).await;
    let out = deploy(
        &pointed_at(&moto, &proxy.url("")),
        &book,
        &dir.path().join("runs-2"),
    );
    let e = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed deploy fails its gate: {e}"
    );
    assert_eq!(failed.load(Ordering::SeqCst), 3, "the copy was retried");
    let report = std::fs::read_to_string(
        local_runs(&dir.path().join("runs-2"))
            .pop()
            .unwrap()
            .join("report.md"),
    )
    .unwrap();
    assert!(report.contains("ServiceUnavailable"), "{report}");

    assert_eq!(
        String::from_utf8(object(&s3, "current").await).unwrap(),
        before,
        "current still names the previous release"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&object(&s3, &format!("manifests/{before}.json")).await).unwrap();
    for f in manifest["files"].as_array().unwrap() {
        let bytes = object(&s3, f["path"].as_str().unwrap()).await;
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            f["sha256"].as_str().unwrap(),
            "{} at the site root is the previous release's",
            f["path"]
        );
    }
}
