// SPDX-License-Identifier: GPL-2.0

//! Example strategy hooks: count every hook call.
//!
//! Changes nothing about the buffers; counts each callback under
//! `/sys/kernel/debug/heapgen/<heap>/hooks/tracing/`, checks that every `before_release`
//! follows an `after_alloc` (`order_errors`), and can make the next `before_release` calls
//! fail with `EBUSY` (write a count to `fail_releases`), to exercise the quarantine.

use crate::hooks::{Counter, HookBuffer, StrategyHooks};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{c_str, prelude::*};

static AFTER_ALLOC: AtomicU64 = AtomicU64::new(0);
static BEFORE_RELEASE: AtomicU64 = AtomicU64::new(0);
static MAY_MMAP: AtomicU64 = AtomicU64::new(0);
static MAY_VMAP: AtomicU64 = AtomicU64::new(0);
/// Buffers between a successful `after_alloc` and a successful `before_release`.
static LIVE: AtomicU64 = AtomicU64::new(0);
/// `before_release` calls with no live buffer (a release without an allocation).
static ORDER_ERRORS: AtomicU64 = AtomicU64::new(0);
/// How many upcoming `before_release` calls fail (root writes it).
static FAIL_RELEASES: AtomicU64 = AtomicU64::new(0);

static COUNTERS: [Counter; 7] = [
    Counter {
        name: c_str!("after_alloc"),
        value: &AFTER_ALLOC,
        writable: false,
    },
    Counter {
        name: c_str!("before_release"),
        value: &BEFORE_RELEASE,
        writable: false,
    },
    Counter {
        name: c_str!("may_mmap"),
        value: &MAY_MMAP,
        writable: false,
    },
    Counter {
        name: c_str!("may_vmap"),
        value: &MAY_VMAP,
        writable: false,
    },
    Counter {
        name: c_str!("live"),
        value: &LIVE,
        writable: false,
    },
    Counter {
        name: c_str!("order_errors"),
        value: &ORDER_ERRORS,
        writable: false,
    },
    Counter {
        name: c_str!("fail_releases"),
        value: &FAIL_RELEASES,
        writable: true,
    },
];

/// Hooks that count their calls.
pub struct RegionHooks;

#[vtable]
impl StrategyHooks for RegionHooks {
    const NAME: &'static CStr = c_str!("tracing");

    fn after_alloc(_buffer: &HookBuffer<'_>) -> Result {
        AFTER_ALLOC.fetch_add(1, Relaxed);
        LIVE.fetch_add(1, Relaxed);
        Ok(())
    }

    fn before_release(_buffer: &HookBuffer<'_>) -> Result {
        BEFORE_RELEASE.fetch_add(1, Relaxed);
        if LIVE.load(Relaxed) == 0 {
            ORDER_ERRORS.fetch_add(1, Relaxed);
        }
        if FAIL_RELEASES
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(EBUSY);
        }
        LIVE.fetch_sub(1, Relaxed);
        Ok(())
    }

    fn may_mmap(_buffer: &HookBuffer<'_>) -> bool {
        MAY_MMAP.fetch_add(1, Relaxed);
        true
    }

    fn may_vmap(_buffer: &HookBuffer<'_>) -> bool {
        MAY_VMAP.fetch_add(1, Relaxed);
        true
    }

    fn counters() -> &'static [Counter] {
        &COUNTERS
    }
}
