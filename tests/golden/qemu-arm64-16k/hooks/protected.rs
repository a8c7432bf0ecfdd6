// SPDX-License-Identifier: GPL-2.0

//! Example strategy hooks: a protected region.
//!
//! Buffers of a protected region are meant for a secure device only (a TEE, a secure video
//! pipeline): the CPU must never map them, neither userspace (`mmap`, refused here) nor the kernel
//! (`PROTECTED`: the buffers are exported without a `vmap` operation), and they are scrubbed
//! before their pages go back to CMA. On real hardware `after_alloc` would
//! hand the range to the secure world (an SMC, a hypervisor call) and `before_release` would
//! take it back before scrubbing; here both are bookkeeping, which the counters under
//! `/sys/kernel/debug/heapgen/<heap>/hooks/protected/` show.

use crate::hooks::{Counter, HookBuffer, StrategyHooks};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{c_str, prelude::*};

/// Buffers protected now.
static PROTECTED_BUFFERS: AtomicU64 = AtomicU64::new(0);
/// Buffers scrubbed and unprotected on release.
static SCRUBBED: AtomicU64 = AtomicU64::new(0);

static COUNTERS: [Counter; 2] = [
    Counter {
        name: c_str!("protected"),
        value: &PROTECTED_BUFFERS,
        writable: false,
    },
    Counter {
        name: c_str!("scrubbed"),
        value: &SCRUBBED,
        writable: false,
    },
];

/// The hooks of a protected region.
pub struct RegionHooks;

#[vtable]
impl StrategyHooks for RegionHooks {
    const NAME: &'static CStr = c_str!("protected");
    const PROTECTED: bool = true;

    fn after_alloc(_buffer: &HookBuffer<'_>) -> Result {
        PROTECTED_BUFFERS.fetch_add(1, Relaxed);
        Ok(())
    }

    fn before_release(buffer: &HookBuffer<'_>) -> Result {
        // Scrub first: if that fails (a fatal signal while zeroing), the buffer stays protected
        // and quarantined, and the release is retried later.
        buffer.zero()?;
        SCRUBBED.fetch_add(1, Relaxed);
        PROTECTED_BUFFERS.fetch_sub(1, Relaxed);
        Ok(())
    }

    fn may_mmap(_buffer: &HookBuffer<'_>) -> bool {
        false
    }

    fn counters() -> &'static [Counter] {
        &COUNTERS
    }
}
