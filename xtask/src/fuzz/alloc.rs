// SPDX-License-Identifier: GPL-2.0

//! A counting global allocator: the fuzzer's memory bound, and the host tests' work and memory
//! bounds (`tests/host/resources.rs` includes this file).
//!
//! Per thread it keeps the bytes allocated and not yet freed, their peak and the total ever
//! allocated since the last [`measure`], so that each worker (or test) measures its own input.
//! The total is a proxy for work that needs no clock. A thread that goes over its hard limit
//! ([`set_limit`]) is parked inside the allocator and [`OVER_LIMIT`] is set: the watchdog then
//! reports the input as a memory failure instead of the machine running out.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// The allocator: the system's, counted.
#[derive(Debug)]
pub struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
    static LIMIT: Cell<i64> = const { Cell::new(i64::MAX) };
    static TOTAL: Cell<u64> = const { Cell::new(0) };
}

/// Set when a thread went over its hard limit (and was parked).
pub static OVER_LIMIT: AtomicBool = AtomicBool::new(false);

fn grew(bytes: usize) {
    let over = LIVE
        .try_with(|l| {
            let now = l.get() + bytes as i64;
            l.set(now);
            let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
            LIMIT.try_with(|m| now > m.get()).unwrap_or(false)
        })
        .unwrap_or(false);
    let _ = TOTAL.try_with(|t| t.set(t.get() + bytes as u64));
    if over {
        OVER_LIMIT.store(true, Ordering::SeqCst);
        // Park the thread for the watchdog; sleeping allocates nothing.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

fn shrank(bytes: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get() - bytes as i64));
}

// SAFETY: every call goes to the system allocator with the same arguments; the counters are
// thread-local cells, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        shrank(layout.size());
        grew(new_size);
        // SAFETY: as for `dealloc`, and `new_size` follows `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// What a closure allocated on this thread.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// The most bytes live at once, above what was live before.
    pub peak: u64,
    /// Every byte allocated, freed or not (the host tests' bound on work).
    #[allow(dead_code)]
    pub total: u64,
}

/// Runs `f` and reports what it allocated on this thread.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Usage) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    TOTAL.with(|t| t.set(0));
    let value = f();
    let usage = Usage {
        peak: (PEAK.with(Cell::get) - base).max(0) as u64,
        total: TOTAL.with(Cell::get),
    };
    (value, usage)
}

/// Parks this thread when it holds more than `bytes` above what it holds now.
pub fn set_limit(bytes: u64) {
    let now = LIVE.with(Cell::get);
    LIMIT.with(|m| m.set(now.saturating_add(bytes as i64)));
}
