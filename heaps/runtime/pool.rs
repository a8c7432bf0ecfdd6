// SPDX-License-Identifier: GPL-2.0

//! Pools of pre-allocated, pre-zeroed buffers for a region's hot sizes
//! (`strategy = { kind = "pool", sizes = [...], depth = N }`).
//!
//! Each size class keeps up to `depth` buffers, allocated from the heap's own CMA area and laid
//! out by the region's policy (alignment, guards with their canaries), with the payload already
//! zeroed (and, for a write-combined heap, written back from the CPU caches). A request whose
//! payload size (the request rounded up to the granule) equals a class is served from the pool
//! without zeroing (a *hit*); an empty class is a *miss*, served from CMA as usual. A work item on
//! the kernel's default unbound workqueue does everything slow in the background: it refills each class
//! to `depth` after hits and misses and zeroes released buffers before they can be handed out
//! again.
//!
//! Released buffers go back to the pool only when their class is below `depth`, they came from
//! the heap's own area and their guard canaries are intact; they wait on a *dirty* list, which
//! is never handed out, until the work item has zeroed them. Everything else goes back to CMA.
//!
//! The pool never makes an allocation fail that would succeed without it: when an area is
//! exhausted, the allocating task (of any heap over the area, the pool's own, its write-combined
//! twin or a heap falling back on it) returns the pools' buffers over that area to CMA one at a
//! time, trying again after each, and those pools take no more memory from CMA until an
//! allocation succeeds from the area again without their help (`region::Area::alloc`). A shrinker returns pooled buffers to CMA under memory
//! pressure; the pool refills at its next use.

use crate::{
    cast::{u64_from, usize_from},
    cma::{Cma, CmaPages},
    debugfs::Dir,
    device::Maintenance,
    policy::{Layout, Policy},
    prelude::*,
    shrinker::Shrink,
    workqueue::{DelayedWork, Run},
};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use kernel::{
    c_str, new_mutex,
    sync::{Arc, Mutex},
};

/// A region's pool as the board file describes it.
#[derive(Clone, Copy)]
pub struct Config {
    /// Payload sizes of the classes in bytes: ascending granule multiples, at most `max-alloc`.
    pub sizes: &'static [u64],
    /// Buffers kept per class.
    pub depth: usize,
}

/// One size class.
struct Class {
    /// Where a buffer of the class sits in its CMA allocation.
    layout: Layout,
    /// Buffers ready to hand out: zeroed payload, intact guards.
    clean: KVec<CmaPages>,
    /// Released buffers waiting to be zeroed; never handed out.
    dirty: KVec<CmaPages>,
    /// Buffers the work item is preparing (at most one).
    in_flight: usize,
}

impl Class {
    fn held(&self) -> usize {
        self.clean.len() + self.dirty.len() + self.in_flight
    }
}

/// The pool of one heap.
#[pin_data]
pub struct Pool {
    cma: Cma,
    maintenance: Maintenance,
    depth: usize,
    /// The layout of each class (also in `classes`, read here without the lock).
    layouts: KVec<Layout>,
    /// The classes. Never held across an allocation that may reclaim (the shrinker takes it):
    /// the lists are allocated with room for `depth` buffers up front. Lock order: `fill`
    /// before `classes`; nothing is taken under `classes`.
    #[pin]
    classes: Mutex<KVec<Class>>,
    /// Held by the work item while it prepares a buffer, and by an allocation that found the
    /// area exhausted while it empties the pool. Lock order: taken before `classes`, with no
    /// other runtime lock held (CMA's own lock is taken under it).
    #[pin]
    fill: Mutex<()>,
    /// Set when an allocation found the area exhausted: no new memory is taken from CMA until an
    /// allocation from CMA succeeds again.
    starved: AtomicBool,
    /// The work item, on the kernel's default unbound workqueue.
    later: DelayedWork<Pool>,
    /// Allocations served from the pool.
    pub hits: AtomicU64,
    /// Allocations of a class size that found the class empty.
    pub misses: AtomicU64,
    /// Buffers the work item put into the pool (fresh from CMA, or released ones zeroed again).
    pub refills: AtomicU64,
    /// CMA pages held by the pool (ready, waiting to be zeroed, or being prepared).
    pub pages: AtomicU64,
    /// Runs of the work item queued or running; 0 when the pool is idle.
    pub pending: AtomicU64,
    /// Buffers returned to CMA by the shrinker or because the area was exhausted.
    pub drained: AtomicU64,
}

/// Zeroes a buffer's payload, writes it back from the CPU caches for a write-combined or
/// protected heap and writes the guard canaries (back to memory too): what every buffer goes
/// through before it is handed out. `zeroed` says the pages are zeroed and written back already
/// (carved out of a headroom): only the canaries are left to write.
pub(crate) fn prepare(
    pages: &mut CmaPages,
    layout: &Layout,
    maintenance: &Maintenance,
    zeroed: bool,
) -> Result {
    let first = usize_from(layout.payload_page_offset());
    let count = usize_from(layout.payload_pages());
    // `--cfg heapgen_fault_no_zero` builds a heap that hands out dirty memory; only the test
    // harness sets it (through `RUSTFLAGS_MODULE`), to prove its suite catches such a heap.
    if !zeroed && !cfg!(heapgen_fault_no_zero) {
        pages.zero(first, count)?;
    }
    // An uncached buffer is mapped write-combined, and a protected one goes to a secure device:
    // write back the zeroes still in the CPU caches now, so that no dirty line is evicted over
    // later writes through that mapping, or into secure memory.
    if let (false, Some(dev)) = (zeroed, &maintenance.payload) {
        dev.clean(pages, first, count)?;
    }
    if layout.has_guards() {
        let after = usize_from(layout.payload_offset + layout.payload_len);
        pages.fill(
            0,
            usize_from(layout.payload_offset),
            crate::policy::GUARD_CANARY,
        )?;
        pages.fill(
            after,
            usize_from(layout.guard_after),
            crate::policy::GUARD_CANARY,
        )?;
        // The canaries go to memory now, where a device overrunning the buffer writes.
        if let Some(dev) = &maintenance.guards {
            for (first, count) in guard_pages(layout)? {
                dev.clean(pages, first, count)?;
            }
        }
    }
    Ok(())
}

/// The page ranges (first, count) of a layout's guards: everything before the payload, and the
/// guard after it. Empty ranges are left out.
pub(crate) fn guard_pages(layout: &Layout) -> Result<impl Iterator<Item = (usize, usize)>> {
    let front = usize_from(layout.payload_page_offset());
    let back_first = front
        .checked_add(usize_from(layout.payload_pages()))
        .ok_or(EINVAL)?;
    let back = usize_from(layout.guard_after) / kernel::page::PAGE_SIZE;
    Ok([(0, front), (back_first, back)]
        .into_iter()
        .filter(|(_, count)| *count > 0))
}

impl Pool {
    /// Creates an empty pool over `cma` with `policy`'s layouts; [`Pool::kick`] fills it.
    pub fn new(
        config: &Config,
        policy: &Policy,
        cma: Cma,
        maintenance: Maintenance,
    ) -> Result<Arc<Self>> {
        let mut classes = KVec::with_capacity(config.sizes.len(), GFP_KERNEL)?;
        let mut layouts = KVec::with_capacity(config.sizes.len(), GFP_KERNEL)?;
        for size in config.sizes {
            let layout = policy.layout(*size).map_err(|_| EINVAL)?;
            layouts.push(layout, GFP_KERNEL)?;
            classes.push(
                Class {
                    layout,
                    clean: KVec::with_capacity(config.depth, GFP_KERNEL)?,
                    dirty: KVec::with_capacity(config.depth, GFP_KERNEL)?,
                    in_flight: 0,
                },
                GFP_KERNEL,
            )?;
        }
        let later = DelayedWork::new()?;
        Arc::pin_init(
            pin_init!(Self {
                cma,
                maintenance,
                depth: config.depth,
                layouts,
                classes <- new_mutex!(classes),
                fill <- new_mutex!(()),
                starved: AtomicBool::new(false),
                later,
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                refills: AtomicU64::new(0),
                pages: AtomicU64::new(0),
                pending: AtomicU64::new(0),
                drained: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// The class serving buffers laid out as `layout`, if any: the one whose payload size
    /// equals the request's padded size.
    pub fn class_of(&self, layout: &Layout) -> Option<usize> {
        self.layouts.iter().position(|l| l == layout)
    }

    /// Points the work item at the pool once it has its final address (the heap's state is
    /// leaked at registration); [`Pool::kick`] does nothing useful before.
    pub fn arm(&'static self) {
        self.later.arm(self);
    }

    /// Queues the work item (refill and zeroing), unless it is queued already.
    pub fn kick(&self) {
        self.pending.fetch_add(1, Relaxed);
        if !self.later.schedule(0) {
            // Already queued: that run will see this request's state.
            self.pending.fetch_sub(1, Relaxed);
        }
    }

    /// Takes a ready buffer of class `class`, counting a hit or a miss, and queues a refill.
    pub fn take(self: &Arc<Self>, class: usize) -> Option<CmaPages> {
        let pages = self
            .classes
            .lock()
            .get_mut(class)
            .and_then(|c| c.clean.pop());
        match &pages {
            Some(p) => {
                self.pages.fetch_sub(u64_from(p.count()), Relaxed);
                self.hits.fetch_add(1, Relaxed);
            }
            None => {
                self.misses.fetch_add(1, Relaxed);
            }
        }
        self.kick();
        pages
    }

    /// Offers the pages of a released buffer of class `class` back to the pool; they are
    /// dropped (returned to CMA) when the class is full or the area is under pressure.
    pub fn recycle(self: &Arc<Self>, class: usize, pages: CmaPages) {
        if self.starved.load(Relaxed) {
            return;
        }
        let count = u64_from(pages.count());
        let rejected = {
            let mut classes = self.classes.lock();
            match classes.get_mut(class) {
                Some(c) if c.held() < self.depth => {
                    self.pages.fetch_add(count, Relaxed);
                    // Cannot fail: `held() < depth` and the list has room for `depth`.
                    c.dirty.push_or_return(pages).err().inspect(|_| {
                        self.pages.fetch_sub(count, Relaxed);
                    })
                }
                _ => Some(pages),
            }
        };
        match rejected {
            None => self.kick(),
            // Back to CMA, outside the lock.
            Some(pages) => drop(pages),
        }
    }

    /// Records that an allocation from CMA succeeded: the pool may take memory again.
    pub fn fed(&self) {
        self.starved.store(false, Relaxed);
    }

    /// The area is exhausted: stops refilling until [`Pool::fed`], waits for the buffer the work
    /// item is preparing, and returns one pooled buffer to CMA. Returns the pages freed (0 when
    /// the pool is empty).
    pub fn starve_one(&self) -> usize {
        self.starved.store(true, Relaxed);
        let _fill = self.fill.lock();
        self.drain(1)
    }

    /// Returns pooled buffers (dirty ones first) to CMA until at least `nr` pages are freed or
    /// the pool is empty. Returns the pages freed.
    fn drain(&self, nr: usize) -> usize {
        let mut freed = 0;
        while freed < nr {
            let pages = {
                let mut classes = self.classes.lock();
                classes
                    .iter_mut()
                    .find_map(|c| c.dirty.pop())
                    .or_else(|| classes.iter_mut().find_map(|c| c.clean.pop()))
            };
            let Some(pages) = pages else { break };
            freed += pages.count();
            self.pages.fetch_sub(u64_from(pages.count()), Relaxed);
            self.drained.fetch_add(1, Relaxed);
            drop(pages);
        }
        freed
    }

    /// The work item: zeroes released buffers, then fills every class up to `depth`.
    fn refill(&self) {
        let depth = self.depth;
        let count = self.classes.lock().len();
        for class in 0..count {
            loop {
                let _fill = self.fill.lock();
                // A released buffer to zero, or room for a fresh one.
                let (pages, layout) = {
                    let mut classes = self.classes.lock();
                    let Some(c) = classes.get_mut(class) else {
                        break;
                    };
                    let layout = c.layout;
                    // Fresh buffers first, then the released ones: the most recently released
                    // buffer (warm in the caches) is the next one handed out.
                    if c.held() < depth && !self.starved.load(Relaxed) {
                        c.in_flight += 1;
                        (None, layout)
                    } else if let Some(pages) = c.dirty.pop() {
                        c.in_flight += 1;
                        (Some(pages), layout)
                    } else {
                        break;
                    }
                };
                let pages = match pages {
                    Some(pages) => Some(pages),
                    None => {
                        let pages = self
                            .cma
                            .alloc(usize_from(layout.total_pages()), layout.align_order);
                        if let Some(p) = &pages {
                            self.pages.fetch_add(u64_from(p.count()), Relaxed);
                        }
                        pages
                    }
                };
                let ready = pages.and_then(|mut p| {
                    if prepare(&mut p, &layout, &self.maintenance, false).is_ok() {
                        Some(p)
                    } else {
                        self.pages.fetch_sub(u64_from(p.count()), Relaxed);
                        None
                    }
                });
                let mut classes = self.classes.lock();
                let Some(c) = classes.get_mut(class) else {
                    break;
                };
                c.in_flight -= 1;
                let Some(p) = ready else {
                    // The area is full (or zeroing failed): try again at the next use.
                    break;
                };
                // Cannot fail: `in_flight` reserved the room.
                if let Err(e) = c.clean.push_or_return(p) {
                    self.pages.fetch_sub(u64_from(e.count()), Relaxed);
                    drop(classes);
                    drop(e);
                    break;
                }
                self.refills.fetch_add(1, Relaxed);
            }
        }
    }

    /// Publishes the pool's counters as read-only files of `dir` (documented in
    /// Documentation/ABI/testing/debugfs-heapgen).
    pub fn publish(&'static self, dir: Dir) {
        let files = [
            (c_str!("pool_hits"), &self.hits),
            (c_str!("pool_misses"), &self.misses),
            (c_str!("pool_refills"), &self.refills),
            (c_str!("pool_pages"), &self.pages),
            (c_str!("pool_pending"), &self.pending),
            (c_str!("pool_drained"), &self.drained),
        ];
        for (name, counter) in files {
            dir.add_u64(name, counter);
        }
    }
}

impl Run for Pool {
    fn run(&'static self) {
        self.refill();
        self.pending.fetch_sub(1, Relaxed);
    }
}

impl Shrink for Pool {
    fn count(&self) -> usize {
        usize_from(self.pages.load(Relaxed))
    }

    fn scan(&self, nr: usize) -> usize {
        self.drain(nr)
    }
}
