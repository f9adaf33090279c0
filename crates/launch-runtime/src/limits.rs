//! Per-call limits: a wall-clock deadline (epoch interruption plus a host-side timeout for time
//! spent in host calls) and a memory ceiling summed over all of an instance's linear memories.

use std::ops::RangeInclusive;
use std::time::Duration;

use wasmtime::ResourceLimiter;

/// The deadlines a call may be given. Out-of-range limits are clamped here too, so no caller
/// can overflow the epoch arithmetic or the host timeout.
pub const DEADLINE: RangeInclusive<Duration> = Duration::from_millis(10)..=Duration::from_secs(600);
/// The memory ceilings a call may be given.
pub const MEMORY: RangeInclusive<usize> = (1 << 20)..=(4 << 30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole call, instantiation included, must finish within this.
    pub deadline: Duration,
    /// Linear memory of the instance, all memories together.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(5),
            memory_bytes: 64 << 20,
        }
    }
}

impl Limits {
    /// These limits brought into [`DEADLINE`] and [`MEMORY`].
    pub fn bounded(self) -> Limits {
        Limits {
            deadline: self.deadline.clamp(*DEADLINE.start(), *DEADLINE.end()),
            memory_bytes: self.memory_bytes.clamp(*MEMORY.start(), *MEMORY.end()),
        }
    }
}

/// Enforces `memory_bytes` and remembers a refusal, so the resulting trap can be explained.
#[derive(Debug)]
pub struct MemoryGuard {
    limit: usize,
    in_use: usize,
    /// The total the plugin tried to reach when it was refused.
    pub refused_at: Option<usize>,
}

impl MemoryGuard {
    pub fn new(limit: usize) -> Self {
        MemoryGuard {
            limit,
            in_use: 0,
            refused_at: None,
        }
    }
}

/// Error raised inside the store when a plugin grows past its limit; it becomes the trap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (tried to grow to {requested} bytes)")]
pub struct MemoryLimitExceeded {
    pub limit: usize,
    pub requested: usize,
}

impl ResourceLimiter for MemoryGuard {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = (self.in_use - current.min(self.in_use)).saturating_add(desired);
        if total > self.limit {
            self.refused_at = Some(total);
            // Trap rather than return -1 from memory.grow: a deterministic, explainable end.
            return Err(MemoryLimitExceeded {
                limit: self.limit,
                requested: total,
            }
            .into());
        }
        self.in_use = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The largest component file the host reads: an 18 MB Python plugin is the biggest stock
/// one; a file much larger is not a plugin (or not the right file).
pub const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// A component file's bytes, at most `MAX_COMPONENT_BYTES`; a device, a pipe or a larger file
/// is an error naming it, never read until memory runs out.
pub fn read_component(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_COMPONENT_BYTES) as usize);
    file.take(MAX_COMPONENT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_COMPONENT_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_COMPONENT_BYTES} bytes, the most a plugin can be"
        )));
    }
    Ok(bytes)
}
