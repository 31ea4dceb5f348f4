//! The allocator of seethink's programs (the `seethink` binary, the examples, the benchmarks):
//! mimalloc, keeping the memory it frees for reuse.
//!
//! glibc's malloc maps and unmaps every large activation buffer, and the page faults and
//! address-space locking of that serialise the host threads; mimalloc keeps freed memory for
//! reuse. By default it still hands memory unused for a second back to the system, and the
//! kernel then zeroes every page again when it is reused: that clearing took about 15% of a
//! real-shape GRPO update's time on ndarray (`docs/benchmarks.md`). Here it keeps it
//! while the program runs, as PyTorch's caching allocator does on a GPU: the update is 5–16%
//! faster, and its peak resident size 13% higher (18.3 GB instead of 16.3 GB, where PyTorch's
//! is 20.8 GB). `MIMALLOC_PURGE_DELAY=1000` in the environment restores mimalloc's default.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Once;

use libmimalloc_sys::mi_option_t;
use mimalloc::MiMalloc;

/// mimalloc v3's `mi_option_purge_delay` (its place in `mi_option_e`, which libmimalloc-sys
/// does not name): milliseconds before freed memory goes back to the system, −1 for never.
const PURGE_DELAY: mi_option_t = 15;

/// mimalloc with [`PURGE_DELAY`] −1 unless the environment sets it. A program declares it
/// with `#[global_allocator] static ALLOCATOR: Allocator = Allocator;`.
pub struct Allocator;

/// Sets the option before the first allocation, while the program has one thread.
fn configure() {
    static SETTINGS: Once = Once::new();
    // SAFETY: `mi_option_set_default` writes one of mimalloc's option slots (the environment
    // still wins) and allocates nothing; `Once` runs it once.
    SETTINGS.call_once(|| unsafe { libmimalloc_sys::mi_option_set_default(PURGE_DELAY, -1) });
}

// SAFETY: every call is mimalloc's own, which upholds `GlobalAlloc`'s contract.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        configure();
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        configure();
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_is_mimallocs_purge_delay() {
        // this test binary keeps the system allocator, so mimalloc's options hold their
        // defaults: purge_delay 1000 ms, and use_numa_nodes (0), which libmimalloc-sys names,
        // one place on
        if std::env::vars_os().any(|(name, _)| name.to_string_lossy().starts_with("MIMALLOC_")) {
            return;
        }
        assert_eq!(libmimalloc_sys::mi_option_use_numa_nodes, PURGE_DELAY + 1);
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, 1000);
    }
}
