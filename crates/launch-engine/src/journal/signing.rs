//! Signed checkpoints: the journal's hash chain proves it is self-consistent, not who wrote
//! it — anyone who can write the run folder can edit a line and rewrite every later hash. So
//! the runner signs the chain's head with an ed25519 key the folder's writers do not hold: a
//! `signed` record (an OpenSSH SSHSIG, as for plugins) after every stage's verdict, after a
//! resume, and as the run's very last record. `verify` checks each against the keys it trusts;
//! a forger without the key can neither re-sign an edited history nor sign a fabricated end.
//!
//! The runner's key is `LAUNCH_HOST_RUNNER_KEY` (an unencrypted OpenSSH ed25519 private key,
//! e.g. a CI secret), else `~/.config/launch-host/runner_ed25519`, made on first use (0600,
//! with its `.pub` beside it).
//!
//! The signed message, in namespace `launch-host-journal`, is
//! `launch-host journal\nrun: <run id>\nline: <n>\nhead: <sha256 of line n>\n`.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

/// The SSHSIG namespace: a signature made for anything else does not verify here.
pub const NAMESPACE: &str = "launch-host-journal";
/// Where the runner's key is named.
pub const KEY_VAR: &str = "LAUNCH_HOST_RUNNER_KEY";

/// What the signature covers.
pub fn message(run_id: &str, line: u64, head: &str) -> Vec<u8> {
    format!("launch-host journal\nrun: {run_id}\nline: {line}\nhead: {head}\n").into_bytes()
}

/// The runner's key file: `LAUNCH_HOST_RUNNER_KEY`, else the user's config folder.
pub fn key_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(KEY_VAR).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("launch-host").join("runner_ed25519"))
}

/// Signs a run's checkpoints.
pub struct Signer {
    key: PrivateKey,
    fingerprint: String,
    run_id: String,
}

impl Signer {
    /// The runner's signer for `run_id`: its key read, or made on first use when it is the
    /// default one.
    pub fn runner(run_id: &str) -> anyhow::Result<Signer> {
        let path = key_path().context(
            "no place for the runner's signing key: set LAUNCH_HOST_RUNNER_KEY to an OpenSSH ed25519 key",
        )?;
        let named = std::env::var_os(KEY_VAR).is_some_and(|p| !p.is_empty());
        if !named && !path.exists() {
            make_key(&path).with_context(|| {
                format!(
                    "making the runner's signing key {} (or set {KEY_VAR} to an OpenSSH ed25519 key)",
                    path.display()
                )
            })?;
        }
        let key = crate::trust::read_private_key(&path)
            .with_context(|| format!("the runner's signing key ({KEY_VAR})"))?;
        anyhow::ensure!(
            key.algorithm() == ssh_key::Algorithm::Ed25519,
            "the runner's signing key {} is not an ed25519 key",
            path.display()
        );
        Ok(Signer {
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            key,
            run_id: run_id.to_string(),
        })
    }

    /// The `signed` record over line `line` whose hash is `head`.
    pub fn sign(&self, line: u64, head: &str) -> anyhow::Result<super::Event> {
        let sig = self
            .key
            .sign(
                NAMESPACE,
                HashAlg::Sha512,
                &message(&self.run_id, line, head),
            )
            .map_err(|e| anyhow::anyhow!("signing the journal: {e}"))?;
        Ok(super::Event::Signed {
            line,
            head: head.to_string(),
            key: self.fingerprint.clone(),
            signature: sig
                .to_pem(LineEnding::LF)
                .map_err(|e| anyhow::anyhow!("signing the journal: {e}"))?,
        })
    }
}

/// Makes an ed25519 key at `path` (0600) and its `.pub`, unless another process just did.
fn make_key(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let key = PrivateKey::new(
        ssh_key::private::KeypairData::Ed25519(pair),
        format!("launch-host runner on {}", crate::owner::hostname()),
    )?;
    let text = key.to_openssh(LineEnding::LF)?;
    // Written aside, then linked into place: a second process making it at the same moment
    // keeps the first one's key, never half of one.
    let tmp = dir.join(format!(".runner_ed25519.{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            let public = key.public_key().to_openssh()?;
            std::fs::write(pub_path(path), format!("{public}\n"))?;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn pub_path(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// This machine's runner key, as `verify` trusts it without being told: the public half of
/// the key runs here sign with (never made by `verify`).
pub fn runner_public_key() -> Option<PublicKey> {
    let path = key_path()?;
    if let Ok(key) = crate::trust::read_public_key(&pub_path(&path)) {
        return Some(key);
    }
    crate::trust::read_private_key(&path)
        .ok()
        .map(|k| k.public_key().clone())
}

/// Checks a `signed` record: the signature over (`run_id`, `line`, `head`) verifies with the
/// key it carries, which is the one it names. The signer's fingerprint, or why not.
pub fn check(run_id: &str, line: u64, head: &str, key: &str, pem: &str) -> Result<String, String> {
    let sig = SshSig::from_pem(pem.trim()).map_err(|e| format!("not an SSH signature ({e})"))?;
    let public = PublicKey::from(sig.public_key().clone());
    let fingerprint = public.fingerprint(HashAlg::Sha256).to_string();
    if fingerprint != key {
        return Err(format!("signed by {fingerprint}, though it names {key}"));
    }
    public
        .verify(NAMESPACE, &message(run_id, line, head), &sig)
        .map_err(|_| "the signature does not match the lines it covers".to_string())?;
    Ok(fingerprint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_for_its_head_only_and_names_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        make_key(&path).unwrap();
        make_key(&path).unwrap(); // a second maker keeps the first key
        let key = crate::trust::read_private_key(&path).unwrap();
        let signer = Signer {
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            key,
            run_id: "r1".into(),
        };
        let super::super::Event::Signed {
            line,
            head,
            key,
            signature,
        } = signer.sign(7, "abc").unwrap()
        else {
            panic!("a signed record")
        };
        assert_eq!(check("r1", line, &head, &key, &signature), Ok(key.clone()));
        assert!(
            check("r1", 7, "abd", &key, &signature).is_err(),
            "another head"
        );
        assert!(
            check("r2", 7, "abc", &key, &signature).is_err(),
            "another run"
        );
        assert!(
            check("r1", 8, "abc", &key, &signature).is_err(),
            "another line"
        );
        let public = crate::trust::read_public_key(&pub_path(&path)).unwrap();
        assert_eq!(public.fingerprint(HashAlg::Sha256).to_string(), key);
    }
}
