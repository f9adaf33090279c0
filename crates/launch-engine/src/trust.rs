//! Signed plugins: a detached OpenSSH signature (SSHSIG, ed25519 keys an operator already has)
//! beside each component, `NAME.wasm.sig`, over the file's sha256. A runbook's `[trust]` names
//! the public keys it trusts and may require every plugin it uses to be signed by one; an
//! unsigned, badly signed or untrusted plugin is then refused by name before the first effect.
//!
//! The signed message is `launch-host plugin sha256:<hex>`, not the file: the digest is computed
//! (and remembered) on every load anyway, so verifying costs one ed25519 check, not another
//! pass over an 18 MB component. (The WebAssembly signatures format's wasmsign2 verifies by
//! hashing sections of the whole file, and its component support — wasmsign2 PR #5 — is called
//! untested and rudimentary by its author; a detached signature over the digest we already
//! hold is simpler to trust and costs nothing at load.)

use std::path::{Path, PathBuf};

use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use crate::runbook::Runbook;
use launch_runtime::Catalog;

/// The SSHSIG namespace: a signature made for anything else does not verify here.
pub const NAMESPACE: &str = "launch-host-plugin";

fn message(sha256: &str) -> Vec<u8> {
    format!("launch-host plugin sha256:{sha256}").into_bytes()
}

/// An OpenSSH public key file (`.pub`), read with a bound.
pub fn read_public_key(path: &Path) -> anyhow::Result<PublicKey> {
    let text = crate::files::read_to_string(path, crate::files::KEY, "the public key")?;
    PublicKey::from_openssh(text.trim())
        .map_err(|e| anyhow::anyhow!("{} is not an OpenSSH public key ({e})", path.display()))
}

/// An OpenSSH private key file, read with a bound; a passphrase-protected one is refused.
pub fn read_private_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let text = crate::files::read_to_string(path, crate::files::KEY, "the private key")?;
    let key = PrivateKey::from_openssh(text.trim())
        .map_err(|e| anyhow::anyhow!("{} is not an OpenSSH private key ({e})", path.display()))?;
    anyhow::ensure!(
        !key.is_encrypted(),
        "{} is protected by a passphrase; sign with an unencrypted copy (e.g. in a CI secret)",
        path.display()
    );
    Ok(key)
}

/// Where a component's signature lives.
pub fn sig_path(wasm: &Path) -> PathBuf {
    let mut name = wasm.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

fn digest_of(wasm: &Path) -> anyhow::Result<String> {
    Ok(launch_runtime::digest::of_file(wasm, None)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", wasm.display()))?
        .sha256)
}

/// Signs `wasm` with the OpenSSH private key at `key`; returns the signature's path and the
/// key's fingerprint.
pub fn sign(wasm: &Path, key: &Path) -> anyhow::Result<(PathBuf, String)> {
    let key = read_private_key(key)?;
    let sig = key
        .sign(NAMESPACE, HashAlg::Sha512, &message(&digest_of(wasm)?))
        .map_err(|e| anyhow::anyhow!("signing with this key: {e} (an ed25519 key signs)"))?;
    let path = sig_path(wasm);
    std::fs::write(&path, sig.to_pem(LineEnding::LF)?)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok((path, key.fingerprint(HashAlg::Sha256).to_string()))
}

/// What a component's signature says.
#[derive(Debug, Clone, PartialEq)]
pub enum Signed {
    Unsigned,
    /// Valid for this file, by the key with this fingerprint.
    By(String),
    /// There, but not a signature of this file (or not a signature at all).
    Bad(String),
}

/// The signature beside `wasm` (whose sha256 is `digest`), checked against the key it names.
pub fn signature(wasm: &Path, digest: &str) -> Signed {
    let pem =
        match crate::files::read_to_string(&sig_path(wasm), crate::files::KEY, "the signature") {
            Ok(pem) => pem,
            Err(_) if !sig_path(wasm).exists() => return Signed::Unsigned,
            Err(e) => return Signed::Bad(format!("{e:#}")),
        };
    match SshSig::from_pem(pem.trim()) {
        Ok(sig) => checked(&sig, digest),
        Err(e) => Signed::Bad(format!(
            "{} is not an SSH signature ({e})",
            sig_path(wasm).display()
        )),
    }
}

/// An SSHSIG PEM checked as the signature of the component whose sha256 is `digest`: a
/// pulled plugin's referrer, before it is put beside the file.
pub fn signature_of(pem: &str, digest: &str) -> Signed {
    match SshSig::from_pem(pem.trim()) {
        Ok(sig) => checked(&sig, digest),
        Err(e) => Signed::Bad(format!("not an SSH signature ({e})")),
    }
}

fn checked(sig: &SshSig, digest: &str) -> Signed {
    let key = PublicKey::from(sig.public_key().clone());
    match key.verify(NAMESPACE, &message(digest), sig) {
        Ok(()) => Signed::By(key.fingerprint(HashAlg::Sha256).to_string()),
        Err(_) => {
            Signed::Bad("the signature does not match this file (changed after signing?)".into())
        }
    }
}

/// Verifies `wasm` against the public key at `key`: the signer's fingerprint, or why not.
pub fn verify(wasm: &Path, key: &Path) -> anyhow::Result<String> {
    let trusted = read_public_key(key)?;
    let wanted = trusted.fingerprint(HashAlg::Sha256).to_string();
    match signature(wasm, &digest_of(wasm)?) {
        Signed::By(fp) if fp == wanted => Ok(fp),
        Signed::By(fp) => anyhow::bail!("{} is signed by {fp}, not by {wanted}", wasm.display()),
        Signed::Bad(why) => anyhow::bail!("{}: {why}", wasm.display()),
        Signed::Unsigned => anyhow::bail!(
            "{} is not signed (no {})",
            wasm.display(),
            sig_path(wasm).display()
        ),
    }
}

/// Every plugin the runbook uses that its `[trust]` refuses, each a problem naming it.
pub fn check(runbook: &Runbook, catalog: &Catalog) -> Vec<String> {
    let Some(trust) = &runbook.trust else {
        return Vec::new();
    };
    let base = runbook.folder();
    let mut problems = Vec::new();
    let mut trusted = Vec::new();
    for key in &trust.keys {
        let path = base.join(key.get_ref());
        match read_public_key(&path) {
            Ok(k) => trusted.push(k.fingerprint(HashAlg::Sha256).to_string()),
            Err(e) => problems.push(
                runbook
                    .error_at(key.span().start, format!("trust.keys: {e:#}"))
                    .to_string(),
            ),
        }
    }
    for name in crate::pins::used(runbook) {
        let Some(p) = catalog.get(name) else { continue };
        let fix = format!("`launch-host plugins sign {} --key KEY`", p.path.display());
        match signature(&p.path, &p.digest) {
            Signed::By(fp) if trusted.contains(&fp) => {}
            Signed::By(fp) => problems.push(format!(
                "plugin `{name}` ({}) is signed by {fp}, which [trust] keys does not trust",
                p.path.display()
            )),
            Signed::Bad(why) => problems.push(format!("plugin `{name}` ({}): {why}; sign it again with {fix}", p.path.display())),
            Signed::Unsigned if trust.require_signatures => problems.push(format!(
                "plugin `{name}` ({}) is not signed, and the runbook requires signatures: sign it with {fix}",
                p.path.display()
            )),
            Signed::Unsigned => {}
        }
    }
    problems
}
