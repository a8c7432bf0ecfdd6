// SPDX-License-Identifier: GPL-2.0

//! Per-heap statistics: lock-free counters updated on the allocation and release paths.

use crate::debugfs::Dir;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::c_str;

/// Why an allocation failed.
#[derive(Clone, Copy)]
pub enum Failure {
    /// The CMA area had no suitable free range (`ENOMEM`).
    NoMemory,
    /// As `NoMemory`, and the area could not give even one page: it is full.
    NoSpace,
    /// As `NoMemory`, though the area had a free page: no range of the request's size could be
    /// emptied (pages of other allocations in the way, or pages that cannot be migrated out
    /// now, pinned ones above all).
    Busy,
    /// The padded request exceeds the region's `max-alloc` (`E2BIG`).
    TooLarge,
    /// Zero-length or overflowing request (`EINVAL`).
    Invalid,
    /// The task got a fatal signal while the buffer was zeroed (`EINTR`).
    Interrupted,
    /// The region's `after_alloc` hook refused the buffer.
    Hook,
    /// Charging the buffer would exceed the `dmem.max` of the task's cgroup (`ENOMEM`).
    CgroupLimit,
    /// Any other error: bookkeeping allocation or export failure.
    Other,
}

/// Counters of one heap. All sizes are payload bytes (what userspace sees).
#[derive(Default)]
pub struct Stats {
    /// Buffers handed out.
    pub allocations: AtomicU64,
    /// Buffers released.
    pub releases: AtomicU64,
    /// Buffers currently allocated.
    pub buffers_in_use: AtomicU64,
    /// Payload bytes currently allocated.
    pub bytes_in_use: AtomicU64,
    /// Highest `bytes_in_use` seen.
    pub peak_bytes: AtomicU64,
    /// Failures because the area was exhausted.
    pub fail_no_memory: AtomicU64,
    /// Of those, failures with the area full.
    pub fail_no_space: AtomicU64,
    /// Of those, failures with a free page left in the area.
    pub fail_busy: AtomicU64,
    /// Failures because of `max-alloc`.
    pub fail_too_large: AtomicU64,
    /// Failures because of a malformed request.
    pub fail_invalid: AtomicU64,
    /// Failures because of a fatal signal.
    pub fail_interrupted: AtomicU64,
    /// Failures because the region's `after_alloc` hook failed.
    pub fail_hook: AtomicU64,
    /// Failures because of the `dmem.max` of the allocating task's cgroup (accounted regions).
    pub fail_cgroup_limit: AtomicU64,
    /// Other failures.
    pub fail_other: AtomicU64,
    /// Buffers released with a damaged guard canary (a device wrote outside its buffer).
    pub guard_overruns: AtomicU64,
    /// Buffers handed out from a fallback region's area because the heap's own was exhausted.
    pub fallbacks: AtomicU64,
    /// `before_release` hook calls that failed (first attempts and retries).
    pub release_hook_failures: AtomicU64,
    /// Buffers whose pages are in quarantine now (their release hook has not succeeded yet).
    pub quarantined: AtomicU64,
    /// Quarantined buffers whose release hook later succeeded; their pages went back to CMA.
    pub quarantine_released: AtomicU64,
    /// CPU mappings (`mmap`, `vmap`) the region's hooks refused.
    pub map_refused: AtomicU64,
}

impl Stats {
    /// Records a buffer of `bytes` taken (allocated, not yet exported).
    pub fn on_alloc(&self, bytes: u64) {
        self.buffers_in_use.fetch_add(1, Relaxed);
        let now = self.bytes_in_use.fetch_add(bytes, Relaxed) + bytes;
        self.peak_bytes.fetch_max(now, Relaxed);
    }

    /// Records that the buffer just handed out came from a fallback area.
    pub fn on_fallback(&self) {
        self.fallbacks.fetch_add(1, Relaxed);
    }

    /// Records a failed `before_release` call; `first` when it quarantines a buffer.
    pub fn on_release_hook_failure(&self, first: bool) {
        self.release_hook_failures.fetch_add(1, Relaxed);
        if first {
            self.quarantined.fetch_add(1, Relaxed);
        }
    }

    /// Records a quarantined buffer whose pages went back to CMA.
    pub fn on_quarantine_released(&self) {
        self.quarantined.fetch_sub(1, Relaxed);
        self.quarantine_released.fetch_add(1, Relaxed);
    }

    /// Records a CPU mapping refused by the hooks.
    pub fn on_map_refused(&self) {
        self.map_refused.fetch_add(1, Relaxed);
    }

    /// Records a buffer handed out: exported as a dma-buf. (A buffer whose export fails is
    /// neither an allocation nor a release.)
    pub fn on_exported(&self) {
        self.allocations.fetch_add(1, Relaxed);
    }

    /// Records a dma-buf released (its last reference dropped).
    pub fn on_dma_buf_released(&self) {
        self.releases.fetch_add(1, Relaxed);
    }

    /// Records a buffer of `bytes` dropped.
    pub fn on_release(&self, bytes: u64) {
        self.buffers_in_use.fetch_sub(1, Relaxed);
        self.bytes_in_use.fetch_sub(bytes, Relaxed);
    }

    /// Records a failed allocation.
    pub fn on_failure(&self, why: Failure) {
        let counter = match why {
            Failure::NoMemory => &self.fail_no_memory,
            Failure::NoSpace => {
                self.fail_no_memory.fetch_add(1, Relaxed);
                &self.fail_no_space
            }
            Failure::Busy => {
                self.fail_no_memory.fetch_add(1, Relaxed);
                &self.fail_busy
            }
            Failure::TooLarge => &self.fail_too_large,
            Failure::Invalid => &self.fail_invalid,
            Failure::Interrupted => &self.fail_interrupted,
            Failure::Hook => &self.fail_hook,
            Failure::CgroupLimit => &self.fail_cgroup_limit,
            Failure::Other => &self.fail_other,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// Records a damaged guard; returns `true` the first time, so that it is reported once.
    pub fn on_guard_overrun(&self) -> bool {
        self.guard_overruns.fetch_add(1, Relaxed) == 0
    }
}

impl Stats {
    /// Publishes every counter as a read-only file of `dir` (the ABI is documented in
    /// Documentation/ABI/testing/debugfs-heapgen).
    pub fn publish(&'static self, dir: Dir) {
        let files = [
            (c_str!("allocations"), &self.allocations),
            (c_str!("releases"), &self.releases),
            (c_str!("buffers_in_use"), &self.buffers_in_use),
            (c_str!("bytes_in_use"), &self.bytes_in_use),
            (c_str!("peak_bytes"), &self.peak_bytes),
            (c_str!("fail_no_memory"), &self.fail_no_memory),
            (c_str!("fail_no_space"), &self.fail_no_space),
            (c_str!("fail_busy"), &self.fail_busy),
            (c_str!("fail_too_large"), &self.fail_too_large),
            (c_str!("fail_invalid"), &self.fail_invalid),
            (c_str!("fail_interrupted"), &self.fail_interrupted),
            (c_str!("fail_hook"), &self.fail_hook),
            (c_str!("fail_cgroup_limit"), &self.fail_cgroup_limit),
            (c_str!("fail_other"), &self.fail_other),
            (c_str!("guard_overruns"), &self.guard_overruns),
            (c_str!("fallbacks"), &self.fallbacks),
            (c_str!("release_hook_failures"), &self.release_hook_failures),
            (c_str!("quarantined"), &self.quarantined),
            (c_str!("quarantine_released"), &self.quarantine_released),
            (c_str!("map_refused"), &self.map_refused),
        ];
        for (name, counter) in files {
            dir.add_u64(name, counter);
        }
    }
}
