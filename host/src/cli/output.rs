//! Shared printing helpers: tables (comfy-table: alignment, wrapping to the terminal width) and
//! human sizes and durations.

use std::time::Duration;

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

pub fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} KiB", b as f64 / (1 << 10) as f64),
        b => format!("{b} B"),
    }
}

pub fn millis(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.0} µs", ms * 1000.0)
    }
}

pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `println!` with every secret masked (`launch_engine::redact`): a name, a note or a reason
/// an operator typed with a secret in it is never printed back.
macro_rules! say {
    () => {
        println!()
    };
    ($($arg:tt)*) => {
        println!("{}", launch_engine::redact::text(&format!($($arg)*)))
    };
}
pub(crate) use say;

/// `eprintln!` with every secret masked.
macro_rules! esay {
    ($($arg:tt)*) => {
        eprintln!("{}", launch_engine::redact::text(&format!($($arg)*)))
    };
}
pub(crate) use esay;
