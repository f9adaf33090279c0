//! Shared test fixtures: where the built plugins are, a runtime sharing the test artifact cache,
//! and small real HTTP servers on 127.0.0.1 that count their hits.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use launch_host::capabilities::{AllowList, Grants};
use launch_host::runtime::{Limits, Plugin, Runtime, Sandbox};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

pub fn stock_plugin(name: &str) -> PathBuf {
    built(
        repo().join("plugins").join(format!("{name}.wasm")),
        "just build-plugins",
    )
}

pub fn test_plugin(name: &str) -> PathBuf {
    built(
        repo()
            .join("tests/plugins/out")
            .join(format!("{name}.wasm")),
        "just build-test-plugins",
    )
}

fn built(path: PathBuf, how: &str) -> PathBuf {
    assert!(
        path.is_file(),
        "{} is missing: run `{how}` first (or `just test`, which does)",
        path.display()
    );
    path
}

/// The test-run artifact cache: each plugin compiles once per machine, not once per test.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("LAUNCH_HOST_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("launch-host-test-compiled"))
}

pub fn runtime() -> Runtime {
    Runtime::new(Some(cache_dir())).expect("runtime starts")
}

pub async fn load(rt: &Runtime, path: PathBuf) -> Plugin {
    rt.load(&path)
        .await
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

pub fn sandbox(hosts: &[String]) -> Sandbox {
    Sandbox {
        limits: Limits::default(),
        grants: Arc::new(
            Grants::default().with_hosts(AllowList::parse(hosts).expect("valid host patterns")),
        ),
    }
}

/// A real HTTP server on an ephemeral loopback port, counting every request it receives.
pub struct Server {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Server {
    pub async fn start(app: Router) -> Server {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = app.layer(axum::middleware::from_fn(
            move |req, next: axum::middleware::Next| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { next.run(req).await }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Server { addr, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `127.0.0.1:PORT`, as an allow-list entry.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A server answering `ok` on every path.
pub async fn plain_server() -> Server {
    Server::start(Router::new().fallback(|| async { "ok" })).await
}
