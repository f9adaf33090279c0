//! A real OCI registry: Debian's `docker-registry` (distribution 2.8, installed by
//! scripts/setup.sh --tests) on an ephemeral loopback port, with its storage in a temporary folder
//! (so a test can play someone who can write it), optionally behind htpasswd basic auth.

use std::path::{Path, PathBuf};

pub struct Registry {
    /// `127.0.0.1:PORT`, as an `oci://` reference names it.
    pub host: String,
    pub storage: PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts one; with `user`, only that user and password may push or pull.
    pub fn start(user: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        let port = super::free_port();
        let auth = match user {
            None => String::new(),
            Some((name, password)) => {
                let file = dir.path().join("htpasswd");
                let out = std::process::Command::new("htpasswd")
                    .args(["-Bbn", name, password])
                    .output()
                    .expect(
                        "htpasswd is installed (scripts/setup.sh --tests installs apache2-utils)",
                    );
                assert!(out.status.success());
                std::fs::write(&file, out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: launch-test\n    path: {}\n",
                    file.display()
                )
            }
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: launch-host-tests\n{auth}",
                storage.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry is installed (scripts/setup.sh --tests installs it)");
        let started = std::time::Instant::now();
        let ready = || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").ok()?;
            let mut answer = String::new();
            s.read_to_string(&mut answer).ok()?;
            answer.starts_with("HTTP/1.0 ").then_some(())
        };
        while ready().is_none() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "docker-registry did not start on port {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Registry {
            host: format!("127.0.0.1:{port}"),
            storage,
            child,
            _dir: dir,
        }
    }

    /// `oci://HOST/REPO_AND_TAG`.
    pub fn oci(&self, repo_and_tag: &str) -> String {
        format!("oci://{}/{repo_and_tag}", self.host)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host)
    }

    /// Where the registry keeps the blob `sha256:HEX` on disk.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        blob_path(&self.storage, hex)
    }

    /// Stops it: nothing answers on its port any more.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn blob_path(storage: &Path, hex: &str) -> PathBuf {
    storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
