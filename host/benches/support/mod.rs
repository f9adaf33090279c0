//! What the benchmarks share.

use std::path::{Path, PathBuf};

/// `--plugins DIR`, else the repository's `plugins/`.
pub fn plugins_dir() -> PathBuf {
    let dir = std::env::args()
        .skip_while(|a| a != "--plugins")
        .nth(1)
        .map(PathBuf::from);
    dir.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins"))
}
