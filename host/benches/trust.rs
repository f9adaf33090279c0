//! `just bench`: what signed plugins cost, next to the goal of issue [9/10] (signing and
//! verifying add < 5 ms per stock plugin to a warm start) and next to OpenSSH's own
//! `ssh-keygen -Y sign` / `-Y verify` of the same message (the reference tool).
//!
//! - sign: `plugins sign` per stock plugin (the file's sha256, then one ed25519 signature);
//! - verify at a warm start: the catalog loaded from the compile cache, then the runbook's
//!   `[trust]` checked with `require-signatures = true` — what a run adds before its first
//!   effect — per plugin;
//! - the capability manifest computed for that runbook (what every run journals).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use launch_runtime::Runtime;

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn ssh_keygen(args: &[&str], stdin: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = Command::new("ssh-keygen")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().expect("piped").write_all(stdin)?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let stock = support::plugins_dir();
    let work = tempfile::tempdir()?;
    let dir = work.path().join("plugins");
    std::fs::create_dir_all(&dir)?;
    let mut names = Vec::new();
    for file in launch_runtime::discovery::wasm_files(&stock)? {
        let name = file.file_name().expect("a file").to_owned();
        std::fs::copy(&file, dir.join(&name))?;
        names.push(name);
    }
    anyhow::ensure!(
        !names.is_empty(),
        "no plugins in {} (run `just build-plugins`)",
        stock.display()
    );
    // A key made here, never kept: what an operator's ed25519 key is.
    let key = work.path().join("release");
    ssh_keygen(
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "release",
            "-f",
            key.to_str().unwrap(),
        ],
        b"",
    )?;

    println!(
        "launch-host signature benchmark ({} stock plugins)\n",
        names.len()
    );
    println!("{:<20} {:>10} {:>12}", "plugin", "size", "sign");
    let mut sign_max = Duration::ZERO;
    for name in &names {
        let file = dir.join(name);
        let t = Instant::now();
        launch_engine::trust::sign(&file, &key)?;
        let took = t.elapsed();
        sign_max = sign_max.max(took);
        println!(
            "{:<20} {:>10} {:>12}",
            Path::new(name).file_stem().unwrap().to_string_lossy(),
            format!("{} KiB", std::fs::metadata(&file)?.len() >> 10),
            ms(took)
        );
    }

    // A runbook that uses every stock plugin and requires each to be signed by the key.
    let cache = tempfile::tempdir()?;
    let runtime = Runtime::new(Some(cache.path().to_path_buf()))?;
    let catalog = runtime.discover(&dir).await?; // compiles into the cache
    let mut text = String::from(
        "[launch]\nname = \"bench\"\nflag = \"F\"\n[environments.staging]\ntarget = \"embedded\"\n[trust]\nkeys = [\"release.pub\"]\nrequire-signatures = true\n",
    );
    for p in &catalog.plugins {
        text.push_str(&format!(
            "[[stage]]\nname = \"{0}\"\nplugin = \"{0}\"\nenvironment = \"staging\"\n",
            p.info.name
        ));
    }
    let book = work.path().join("launch.toml");
    std::fs::write(&book, &text)?;
    let runbook = launch_engine::Runbook::parse(&text, book.to_str().unwrap())?;
    let plugins = catalog.plugins.len();

    const ROUNDS: u32 = 20;
    let mut warm = Duration::MAX;
    let mut verify = Duration::MAX;
    let mut manifest = Duration::MAX;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let catalog = runtime.discover(&dir).await?;
        warm = warm.min(t.elapsed());
        let t = Instant::now();
        let problems = launch_engine::trust::check(&runbook, &catalog);
        verify = verify.min(t.elapsed());
        anyhow::ensure!(problems.is_empty(), "{problems:?}");
        let t = Instant::now();
        let m = launch_engine::manifest::Manifest::of_catalog(&runbook, &catalog);
        std::hint::black_box(m.digest());
        manifest = manifest.min(t.elapsed());
    }

    // The reference: OpenSSH verifying the same signature of one plugin, process and all.
    let allowed = work.path().join("allowed_signers");
    let public = std::fs::read_to_string(key.with_extension("pub"))?;
    std::fs::write(&allowed, format!("release {public}"))?;
    let first = &catalog.plugins[0];
    let message = format!("launch-host plugin sha256:{}", first.digest);
    let sig = launch_engine::trust::sig_path(&first.path);
    let mut reference = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        ssh_keygen(
            &[
                "-Y",
                "verify",
                "-f",
                allowed.to_str().unwrap(),
                "-I",
                "release",
                "-n",
                launch_engine::trust::NAMESPACE,
                "-s",
                sig.to_str().unwrap(),
            ],
            message.as_bytes(),
        )?;
        reference = reference.min(t.elapsed());
    }

    let per = |d: Duration| d / u32::try_from(plugins).unwrap_or(1);
    println!();
    println!(
        "{:<52} {:>12} {:>14} {:>10}",
        "measure", "launch-host", "ssh-keygen -Y", "goal"
    );
    println!(
        "{:<52} {:>12} {:>14} {:>10}",
        format!("warm start: {plugins} plugins from the cache, best of {ROUNDS}"),
        ms(warm),
        "",
        ""
    );
    println!(
        "{:<52} {:>12} {:>14} {:>10}",
        "  + [trust] check (require-signatures), per plugin",
        ms(per(verify)),
        ms(reference),
        "< 5 ms"
    );
    println!(
        "{:<52} {:>12} {:>14} {:>10}",
        "  + capability manifest and its digest, all plugins",
        ms(manifest),
        "",
        ""
    );
    println!(
        "{:<52} {:>12} {:>14} {:>10}",
        "sign, slowest plugin (its sha256 included)",
        ms(sign_max),
        "",
        ""
    );
    Ok(())
}
