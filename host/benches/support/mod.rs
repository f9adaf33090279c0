//! What the benchmarks share.

pub mod chunks;

use std::path::{Path, PathBuf};

/// `--plugins DIR`, else the repository's `plugins/`.
#[allow(dead_code)] // the web benchmark loads no plugin
pub fn plugins_dir() -> PathBuf {
    let dir = std::env::args()
        .skip_while(|a| a != "--plugins")
        .nth(1)
        .map(PathBuf::from);
    dir.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins"))
}

/// One line of a results table: what is measured, launch-host's number, the goal.
#[allow(dead_code)] // not every benchmark prints this table
pub fn row(measure: &str, ours: &str, goal: &str) {
    println!("{measure:<52} {ours:>12} {goal:>12}");
}
