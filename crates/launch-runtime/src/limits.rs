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
