// SPDX-License-Identifier: GPL-2.0

//! Work and memory bounds on hostile board files, measured by counting allocations: no timing.
//!
//! A counting global allocator keeps, per thread, the bytes currently allocated, their peak and
//! the total ever allocated, so that tests running in parallel do not see each other. The total
//! is a proxy for work that needs no clock: an algorithm that touches the whole file once per
//! diagnostic also allocates in proportion to it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static CURRENT: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
    static TOTAL: Cell<u64> = const { Cell::new(0) };
}

fn grew(bytes: usize) {
    let _ = CURRENT.try_with(|c| {
        let now = c.get() + bytes as i64;
        c.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
    let _ = TOTAL.try_with(|t| t.set(t.get() + bytes as u64));
}

fn shrank(bytes: usize) {
    let _ = CURRENT.try_with(|c| c.set(c.get() - bytes as i64));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are
// thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        shrank(layout.size());
        grew(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What a closure allocated on this thread.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// The most bytes live at once, above what was live before.
    pub peak: u64,
    /// Every byte allocated, freed or not.
    pub total: u64,
}

/// Runs `f` and reports what it allocated on this thread.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Usage) {
    let base = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(base));
    TOTAL.with(|t| t.set(0));
    let value = f();
    let usage = Usage {
        peak: (PEAK.with(Cell::get) - base).max(0) as u64,
        total: TOTAL.with(Cell::get),
    };
    (value, usage)
}

const MB: u64 = 1 << 20;

#[test]
fn did_you_mean_on_a_huge_key_allocates_almost_nothing() {
    let key = "x".repeat(20 << 20);
    let (suggestion, usage) =
        measure(|| heapgen::diag::did_you_mean(&key, heapgen::model::REGION_KEYS));
    assert_eq!(suggestion, None);
    assert!(usage.peak < MB && usage.total < MB, "{usage:?}");
    // Close keys are still found, with little memory.
    let (suggestion, usage) =
        measure(|| heapgen::diag::did_you_mean("alignmnet", heapgen::model::REGION_KEYS));
    assert_eq!(suggestion, Some("alignment"));
    assert!(usage.peak < 64 << 10, "{usage:?}");
}
