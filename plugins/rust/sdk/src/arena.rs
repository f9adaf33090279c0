//! The allocator of a plugin that lives for one call.
//!
//! The host makes a fresh instance for every call and drops it right after, so nothing a call
//! allocates outlives the call. Here an allocation is a pointer bump in a static arena and a
//! free gives nothing back, except the newest block: freeing it rolls the arena back, and it
//! grows in place (a `String` or `Vec` being built). A general-purpose allocator pays for
//! reuse that never comes: with the host lowering a gate's 10 windows through 52
//! `cabi_realloc` calls, plus the plugin's own strings, `slo-gate.evaluate` took 2 µs longer
//! (19.6–19.9 vs 17.5–17.9 µs, `cargo bench --bench plugins`). talc, a faster general-purpose
//! allocator, gained 0.3 µs.
//!
//! A call that needs more than the arena falls through to the system allocator (std's dlmalloc
//! without WASI, wasi-libc's malloc with it) for the rest, as if the arena were not there: the
//! arena's bytes are all a call can lose to not freeing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, UnsafeCell};

/// Bytes in the arena. It sits in zeroed static memory, so only the pages a call uses are ever
/// touched (and reset by the host's pooling allocator after the call).
pub const ARENA_BYTES: usize = 256 << 10;

#[repr(C, align(16))]
struct Bytes([u8; ARENA_BYTES]);

pub struct CallArena {
    bytes: UnsafeCell<Bytes>,
    /// Offset of the first free byte.
    next: Cell<usize>,
    /// Offset of the newest block: the one that can grow in place or be given back.
    newest: Cell<usize>,
}

// SAFETY: the arena is only the global allocator of single-threaded wasm (`lib.rs`); there is
// no other thread to race with.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
unsafe impl Sync for CallArena {}

impl CallArena {
    pub const fn new() -> CallArena {
        // All zeros, so the arena lands in `.bss` and adds nothing to the component's size.
        // (`newest` starts at 0 as nothing can be freed before the first block is allocated.)
        CallArena { bytes: UnsafeCell::new(Bytes([0; ARENA_BYTES])), next: Cell::new(0), newest: Cell::new(0) }
    }

    fn base(&self) -> usize {
        self.bytes.get() as usize
    }

    /// The block's offset in the arena, or None for a block of the system allocator.
    fn offset_of(&self, ptr: *mut u8) -> Option<usize> {
        (ptr as usize).checked_sub(self.base()).filter(|&o| o < ARENA_BYTES)
    }

    /// The offset a block of `layout` would take, if the arena has room for it.
    fn fit(&self, layout: Layout) -> Option<usize> {
        let base = self.base();
        // `align` is a power of two: round the next free address up to it.
        let start = (base + self.next.get()).checked_add(layout.align() - 1)? & !(layout.align() - 1);
        let end = start.checked_add(layout.size())?;
        (end <= base + ARENA_BYTES).then_some(start - base)
    }
}

impl Default for CallArena {
    fn default() -> CallArena {
        CallArena::new()
    }
}

unsafe impl GlobalAlloc for CallArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.fit(layout) {
            Some(offset) => {
                self.newest.set(offset);
                self.next.set(offset + layout.size());
                (self.base() + offset) as *mut u8
            }
            // SAFETY: the caller's contract for `layout` is the system allocator's too.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match self.offset_of(ptr) {
            Some(offset) if offset == self.newest.get() => {
                self.next.set(offset);
                self.newest.set(usize::MAX);
            }
            Some(_) => {} // given back with the instance
            // SAFETY: a block outside the arena came from `System.alloc` with this layout.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(offset) = self.offset_of(ptr) else {
            // SAFETY: as in `dealloc`; the caller's contract for `new_size` is the system's.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        if offset == self.newest.get() && new_size <= ARENA_BYTES - offset {
            self.next.set(offset + new_size);
            return ptr;
        }
        // SAFETY: `new_size` with the block's alignment is a valid layout (the caller's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: the new block is distinct from the old and both hold the bytes copied.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ARENA_BYTES, CallArena};
    use std::alloc::{GlobalAlloc, Layout};

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    fn arena() -> Box<CallArena> {
        // Zeroed on the heap (a test thread's stack is smaller than the arena): an empty arena.
        // SAFETY: all zeros is a valid `CallArena`, the one `new` makes.
        unsafe { Box::<CallArena>::new_zeroed().assume_init() }
    }

    #[test]
    fn blocks_are_aligned_distinct_and_the_newest_grows_in_place() {
        let a = arena();
        unsafe {
            let x = a.alloc(layout(3, 1));
            let y = a.alloc(layout(8, 8));
            assert_eq!(y as usize % 8, 0);
            assert!(y as usize >= x as usize + 3);
            y.write_bytes(7, 8);
            // The newest block grows where it is and keeps its bytes.
            let y2 = a.realloc(y, layout(8, 8), 4096);
            assert_eq!(y2, y);
            assert_eq!(*y2.add(7), 7);
            // An older block moves, with its bytes.
            x.write_bytes(5, 3);
            let x2 = a.realloc(x, layout(3, 1), 64);
            assert!(x2 as usize >= y as usize + 4096);
            assert_eq!(std::slice::from_raw_parts(x2, 3), &[5, 5, 5]);
        }
    }

    #[test]
    fn freeing_the_newest_block_gives_its_bytes_back() {
        let a = arena();
        unsafe {
            let x = a.alloc(layout(100, 4));
            a.dealloc(x, layout(100, 4));
            assert_eq!(a.alloc(layout(100, 4)), x);
            // An older block's bytes stay taken.
            let y = a.alloc(layout(10, 1));
            a.dealloc(x, layout(100, 4));
            assert!(a.alloc(layout(1, 1)) as usize > y as usize);
        }
    }

    #[test]
    fn a_call_that_needs_more_than_the_arena_gets_it_from_the_system() {
        let a = arena();
        unsafe {
            a.alloc(layout(16, 16));
            let most = a.alloc(layout(ARENA_BYTES - 64, 16));
            assert_eq!(a.offset_of(most), Some(16));
            let big = a.alloc(layout(1 << 20, 16));
            assert!(!big.is_null() && a.offset_of(big).is_none(), "a block past the arena comes from the system");
            big.write_bytes(1, 1 << 20);
            // Growing the newest arena block past the end moves it to the system, bytes and all.
            most.write_bytes(9, 16);
            let moved = a.realloc(most, layout(ARENA_BYTES - 64, 16), ARENA_BYTES);
            assert!(a.offset_of(moved).is_none());
            assert_eq!(*moved.add(15), 9);
            a.dealloc(moved, layout(ARENA_BYTES, 16));
            let grown = a.realloc(big, layout(1 << 20, 16), 2 << 20);
            assert_eq!(*grown.add((1 << 20) - 1), 1);
            a.dealloc(grown, layout(2 << 20, 16));
        }
    }
}
