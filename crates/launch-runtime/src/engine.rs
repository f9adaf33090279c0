//! One wasmtime `Engine` per process: component model, async host calls, epoch interruption for
//! deadlines, and the pooling allocator so a fresh instance per call costs microseconds.

use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; deadlines are rounded up to it.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The largest linear memory any plugin may be granted. Per-call limits sit below this.
pub const MAX_MEMORY_BYTES: usize = 1 << 30;

/// Memory and table bytes per slot kept resident between instances (reset, not unmapped).
const KEEP_RESIDENT: usize = 2 << 20;

pub fn new_engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);

    // Sized for componentize-py's CPython (a dozen core instances, ~20k table entries) next to
    // small Rust plugins, with room for concurrent calls.
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(256)
        .total_core_instances(2048)
        .total_memories(512)
        .total_tables(1024)
        .total_stacks(256)
        .max_core_instances_per_component(64)
        .max_memories_per_component(16)
        .max_tables_per_component(64)
        .max_tables_per_module(8)
        .max_memories_per_module(2)
        .table_elements(200_000)
        .max_core_instance_size(16 << 20)
        .max_component_instance_size(4 << 20)
        .max_memory_size(MAX_MEMORY_BYTES)
        .max_unused_warm_slots(64)
        // A call's instance is torn down right after it answers, and the next call of the
        // same plugin reuses its slot: reset the pages it dirtied with memset (found by the
        // PAGEMAP_SCAN ioctl on Linux ≥ 6.7) instead of unmapping them, so the next instance
        // takes no page faults. This is most of a call's cost for small plugins.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // 4 GiB of address space per memory slot, as wasmtime's default: a 32-bit index can then
    // never reach past the reservation plus guard, so Cranelift drops the bounds check from
    // every guest load and store and the guard pages trap instead. With 1 GiB (what the largest
    // grant can use) every access was checked, and a canary decision took 8-12 % longer. It is
    // address space, not memory: 512 slots take 2 TiB of the 128 TiB a process has.
    config.memory_reservation(4 << 30);
    config.memory_guard_size(32 << 20);
    Ok(Engine::new(&config)?)
}

/// Advances the engine's epoch every `EPOCH_TICK` until the engine is dropped.
pub fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("launch-host-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}

/// Epoch ticks covering `deadline`, at most the longest deadline's: wasmtime adds them to the
/// current epoch, which must not overflow.
pub fn deadline_ticks(deadline: Duration) -> u64 {
    let deadline = deadline.min(*crate::limits::DEADLINE.end());
    u64::try_from(deadline.as_micros().div_ceil(EPOCH_TICK.as_micros()))
        .unwrap_or(u64::MAX)
        .max(1)
}
