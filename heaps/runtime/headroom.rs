// SPDX-License-Identifier: GPL-2.0

//! Headroom: part of a busy CMA area kept allocated, evacuated and zeroed ahead of demand
//! (`strategy = { kind = "headroom", size = "..." }`).
//!
//! A CMA area is lent to movable memory (page cache, anonymous pages) while no device needs it,
//! so `cma_alloc` must first migrate those pages out: slow, and failing outright on pages that
//! are pinned while it tries. The headroom does that work in the background. A work item on the
//! kernel's default unbound workqueue allocates `size` bytes of the area from CMA (as one range
//! when it can, in smaller ranges when it cannot), zeroes them and, for a write-combined or
//! protected heap, writes the zeroes back from the CPU caches. A request whose CMA footprint
//! fits in one of the held ranges (*extents*) at the request's alignment is carved out of it
//! (a *hit*): no migration and no zeroing on the allocating path. Each request queues a refill,
//! shortly after it.
//!
//! A refill that CMA cannot serve is retried in the background after [`RETRY_FIRST_MS`],
//! doubling up to [`RETRY_MAX_MS`]. The headroom never makes an allocation fail that would
//! succeed without it: when a request finds the area exhausted, the extents go back to CMA one
//! at a time, the request retried after each (`region::Area::alloc`), and no refill takes memory
//! from CMA until an allocation from the area succeeds again. A shrinker gives extents back
//! under memory pressure; the headroom refills at its next use.
//!
//! Carving relies on CMA releasing any run of pages of a range it handed out on its own (see
//! [`CmaPages::split_off`]): a buffer carved from an extent is released like any other.

use crate::{
    cast::{u64_from, usize_from},
    cma::{Cma, CmaPages},
    debugfs::Dir,
    device::Maintenance,
    prelude::*,
    shrinker::Shrink,
    workqueue::{DelayedWork, Run},
};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use kernel::{
    c_str, new_mutex,
    page::PAGE_SIZE,
    sync::{Arc, Mutex},
};

/// A refill after a request runs this long after it, in milliseconds: once the requesting task
/// has gone on with its buffer, rather than on its way back to userspace (on a single CPU the
/// woken worker would run first and the request would wait for the refill it started).
const REFILL_DELAY_MS: u32 = 10;
/// The first background retry of a refill CMA could not serve comes this long after it.
const RETRY_FIRST_MS: u32 = 100;
/// The longest wait between background retries of a refill.
const RETRY_MAX_MS: u32 = 10_000;
/// Extents held at most. Carving a request out of the middle of an extent leaves two; a leftover
/// that finds no slot goes back to CMA.
const MAX_EXTENTS: usize = 32;

/// A region's headroom as the board file describes it.
#[derive(Clone, Copy)]
pub struct Config {
    /// Bytes kept ready: a multiple of the page size and of the region's granule.
    pub bytes: u64,
}

/// The headroom of one region, shared by its heaps.
#[pin_data]
pub struct Headroom {
    cma: Cma,
    /// Pages kept ready.
    target: usize,
    /// Alignment of the ranges taken from CMA, as a page order (the region's alignment).
    align_order: u32,
    /// Write-back of the zeroes, for a region with a write-combined or protected heap.
    maintenance: Maintenance,
    /// The extents: zeroed, written back, owned by nobody else. Never held across an allocation
    /// that may reclaim (the shrinker takes it): the list has room for [`MAX_EXTENTS`] from the
    /// start. Lock order: `fill` before `extents`; nothing is taken under `extents`.
    #[pin]
    extents: Mutex<KVec<CmaPages>>,
    /// Held by the work item while it refills and by an allocation that found the area exhausted
    /// while it gives extents back. Lock order: taken with no other runtime lock held (CMA's
    /// own locks are taken under it).
    #[pin]
    fill: Mutex<()>,
    /// Set when an allocation found the area exhausted: no refill until
    /// [`Headroom::fed`].
    starved: AtomicBool,
    /// The work item.
    later: DelayedWork<Headroom>,
    /// The wait before the next background retry of a refill, in milliseconds.
    retry_ms: AtomicU32,
    /// Allocations carved out of the headroom.
    pub hits: AtomicU64,
    /// Allocations that found no extent to carve them from (served from CMA directly).
    pub misses: AtomicU64,
    /// Pages held now: ready, or being zeroed by the work item.
    pub pages: AtomicU64,
    /// Runs of the work item queued or running (a retry waiting counts); 0 when idle.
    pub pending: AtomicU64,
    /// Ranges the work item took from CMA.
    pub refills: AtomicU64,
    /// Refill attempts CMA could not serve (retried in the background).
    pub refill_failures: AtomicU64,
    /// Pages given back to CMA by the shrinker or because the area was exhausted.
    pub drained: AtomicU64,
}

impl Headroom {
    /// Creates an empty headroom of `config.bytes` over `cma`, whose ranges are aligned to
    /// `PAGE_SIZE << align_order`; [`Headroom::kick`] fills it.
    pub fn new(
        config: &Config,
        cma: Cma,
        align_order: u32,
        maintenance: Maintenance,
    ) -> Result<Arc<Self>> {
        let target = usize_from(config.bytes) / PAGE_SIZE;
        if target == 0 {
            return Err(EINVAL);
        }
        let extents = KVec::with_capacity(MAX_EXTENTS, GFP_KERNEL)?;
        let later = DelayedWork::new()?;
        Arc::pin_init(
            pin_init!(Self {
                cma,
                target,
                align_order,
                maintenance,
                extents <- new_mutex!(extents),
                fill <- new_mutex!(()),
                starved: AtomicBool::new(false),
                later,
                retry_ms: AtomicU32::new(RETRY_FIRST_MS),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                pages: AtomicU64::new(0),
                pending: AtomicU64::new(0),
                refills: AtomicU64::new(0),
                refill_failures: AtomicU64::new(0),
                drained: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// The area the headroom holds pages of.
    pub fn cma(&self) -> Cma {
        self.cma
    }

    /// Points the work item at the headroom once it has its final address.
    pub fn arm(&'static self) {
        self.later.arm(self);
    }

    /// Queues a refill now, unless one is queued already.
    pub fn kick(&self) {
        self.schedule(0);
    }

    /// Queues a run in `delay_ms`, unless one is queued already, counting it in `pending`.
    fn schedule(&self, delay_ms: u32) {
        self.pending.fetch_add(1, Relaxed);
        if !self.later.schedule(delay_ms) {
            // Already queued: that run will see this request's state.
            self.pending.fetch_sub(1, Relaxed);
        }
    }

    /// Carves `count` pages aligned to `PAGE_SIZE << align_order` out of an extent, counting a
    /// hit or a miss, and queues a refill (in [`REFILL_DELAY_MS`]). The pages are zeroed and
    /// written back.
    pub fn take(&self, count: usize, align_order: u32) -> Option<CmaPages> {
        let (taken, leftover) = {
            let mut extents = self.extents.lock();
            match carve(&mut extents, count, align_order) {
                Some((taken, leftover)) => {
                    self.pages.fetch_sub(u64_from(taken.count()), Relaxed);
                    if let Some(l) = &leftover {
                        self.pages.fetch_sub(u64_from(l.count()), Relaxed);
                    }
                    (Some(taken), leftover)
                }
                None => (None, None),
            }
        };
        // A leftover that found no slot goes back to CMA, outside the lock.
        if let Some(leftover) = leftover {
            self.drained.fetch_add(u64_from(leftover.count()), Relaxed);
            drop(leftover);
        }
        match &taken {
            Some(_) => self.hits.fetch_add(1, Relaxed),
            None => self.misses.fetch_add(1, Relaxed),
        };
        self.schedule(REFILL_DELAY_MS);
        taken
    }

    /// Records that an allocation from CMA succeeded: refills may take memory again.
    pub fn fed(&self) {
        if self.starved.swap(false, Relaxed) {
            self.kick();
        }
    }

    /// The area is exhausted: stops refilling until [`Headroom::fed`], waits for a refill in
    /// progress, and gives one extent back to CMA. Returns the pages freed (0 when empty).
    pub fn starve_one(&self) -> usize {
        self.starved.store(true, Relaxed);
        let _fill = self.fill.lock();
        let Some(extent) = self.extents.lock().pop() else {
            return 0;
        };
        let count = extent.count();
        self.pages.fetch_sub(u64_from(count), Relaxed);
        self.drained.fetch_add(u64_from(count), Relaxed);
        drop(extent);
        count
    }

    /// Gives at least `nr` pages back to CMA, or everything held: whole extents, and the tail
    /// of the last one when only part of it is needed. Returns the pages freed.
    fn drain(&self, nr: usize) -> usize {
        let mut freed = 0;
        while freed < nr {
            let part = {
                let mut extents = self.extents.lock();
                let Some(last) = extents.last_mut() else {
                    break;
                };
                let want = nr - freed;
                if last.count() > want {
                    // The tail of the extent; the head stays.
                    Some(last.split_off(last.count() - want))
                } else {
                    extents.pop()
                }
            };
            let Some(part) = part else { break };
            freed += part.count();
            self.pages.fetch_sub(u64_from(part.count()), Relaxed);
            self.drained.fetch_add(u64_from(part.count()), Relaxed);
            drop(part);
        }
        freed
    }

    /// The work item: takes ranges from CMA until `target` pages are held, zeroing them; a range
    /// CMA cannot give is asked for in halves, down to one page, then retried in the background.
    fn refill(&self) {
        loop {
            let _fill = self.fill.lock();
            if self.starved.load(Relaxed) {
                return;
            }
            let held = usize_from(self.pages.load(Relaxed));
            if held >= self.target || self.extents.lock().len() >= MAX_EXTENTS {
                self.retry_ms.store(RETRY_FIRST_MS, Relaxed);
                return;
            }
            let mut want = self.target - held;
            let pages = loop {
                if let Some(pages) = self.cma.alloc(want, self.align_order) {
                    break Some(pages);
                }
                self.refill_failures.fetch_add(1, Relaxed);
                if want == 1 {
                    break None;
                }
                want = want.div_ceil(2);
            };
            let Some(pages) = pages else {
                // The area has nothing to give now: later, ever more rarely.
                let delay = self.retry_ms.load(Relaxed);
                self.retry_ms
                    .store(delay.saturating_mul(2).min(RETRY_MAX_MS), Relaxed);
                self.schedule(delay);
                return;
            };
            self.refills.fetch_add(1, Relaxed);
            let count = pages.count();
            // Counted from now on, so that the area's pages in use minus the headroom's are the
            // live buffers' at every moment.
            self.pages.fetch_add(u64_from(count), Relaxed);
            // `--cfg heapgen_fault_no_zero` (the harness's self-test) hands out dirty memory.
            let zeroed = cfg!(heapgen_fault_no_zero) || pages.zero(0, count).is_ok();
            let clean = match &self.maintenance.payload {
                Some(dev) => zeroed && dev.clean(&pages, 0, count).is_ok(),
                None => zeroed,
            };
            let rejected = if clean {
                // Cannot fail but in a race with `take` (the length was checked above).
                self.extents.lock().push_or_return(pages).err()
            } else {
                Some(pages)
            };
            if let Some(pages) = rejected {
                // Back to CMA, outside the lock.
                self.pages.fetch_sub(u64_from(count), Relaxed);
                drop(pages);
                return;
            }
        }
    }

    /// Publishes the headroom's counters as read-only files of `dir` (documented in
    /// Documentation/ABI/testing/debugfs-heapgen).
    pub fn publish(&'static self, dir: Dir) {
        let files = [
            (c_str!("headroom_hits"), &self.hits),
            (c_str!("headroom_misses"), &self.misses),
            (c_str!("headroom_pages"), &self.pages),
            (c_str!("headroom_pending"), &self.pending),
            (c_str!("headroom_refills"), &self.refills),
            (c_str!("headroom_refill_failures"), &self.refill_failures),
            (c_str!("headroom_drained"), &self.drained),
        ];
        for (name, counter) in files {
            dir.add_u64(name, counter);
        }
    }
}

/// Carves `count` pages aligned to `1 << align_order` pages out of the first extent that holds
/// them. What is left of the extent before and after the carved range stays in `extents`; when
/// both are left and the list is full, the part after it finds no slot and is returned to be
/// released. Returns the carved pages and that leftover.
fn carve(
    extents: &mut KVec<CmaPages>,
    count: usize,
    align_order: u32,
) -> Option<(CmaPages, Option<CmaPages>)> {
    let align = 1usize.checked_shl(align_order)?;
    let (index, head) = extents.iter().enumerate().find_map(|(i, e)| {
        let pfn = e.pfn();
        let head = pfn.checked_next_multiple_of(align)? - pfn;
        (head.checked_add(count)? <= e.count()).then_some((i, head))
    })?;
    let last = extents.len() - 1;
    extents.swap(index, last);
    let mut extent = extents.pop()?;
    // `extent` keeps the head, `taken` the rest, then `tail` what follows the carved pages.
    let mut taken = extent.split_off(head);
    let tail = taken.split_off(count);
    let mut leftover = None;
    for part in [extent, tail] {
        if part.count() == 0 {
            continue;
        }
        if let Err(part) = extents.push_or_return(part) {
            leftover = Some(part);
        }
    }
    Some((taken, leftover))
}

impl Run for Headroom {
    fn run(&'static self) {
        self.refill();
        self.pending.fetch_sub(1, Relaxed);
    }
}

impl Shrink for Headroom {
    fn count(&self) -> usize {
        usize_from(self.pages.load(Relaxed))
    }

    fn scan(&self, nr: usize) -> usize {
        self.drain(nr)
    }
}
