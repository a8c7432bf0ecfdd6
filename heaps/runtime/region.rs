// SPDX-License-Identifier: GPL-2.0

//! The board's regions: one heap, and optionally a write-combined twin, per region.

use crate::prelude::*;
use crate::{
    buffer::Buffer,
    cma::{Cma, CmaPages},
    debugfs::Dir,
    device::{DmaDevice, Maintenance},
    dma_buf::DmaBuf,
    dma_heap::{self, Heap, HeapOps},
    dmem,
    headroom::{self, Headroom},
    hooks::{self, HookBuffer, Quarantined},
    policy::{Layout, Policy},
    pool::{self, Pool},
    shrinker::Shrinker,
    stats::Stats,
    workqueue::{DelayedWork, Run},
};
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use kernel::{
    c_str, new_mutex,
    sync::{Arc, Mutex},
};

/// The first background retry of a quarantine comes this long after a buffer enters it; each
/// retry that leaves buffers behind doubles the wait, up to [`RETRY_MAX_MS`].
const RETRY_FIRST_MS: u32 = 100;
/// The longest wait between background retries of a quarantine.
const RETRY_MAX_MS: u32 = 10_000;

/// One region of the generated table.
pub struct Region {
    /// The region's name in the board file.
    pub name: &'static CStr,
    /// The kernel name of the CMA area it allocates from.
    pub cma: &'static CStr,
    /// The cached heap's name, if the region has one.
    pub heap: Option<&'static CStr>,
    /// The write-combined twin's name, if the region has one.
    pub uncached_heap: Option<&'static CStr>,
    /// How buffers are laid out.
    pub policy: Policy,
    /// The CMA areas tried in order when `cma` cannot satisfy a request (the board file's
    /// `fallback` regions). Buffers taken from them still follow this region's policy.
    pub fallback: &'static [&'static CStr],
    /// The region's strategy hooks (the board file's `hooks`), if any.
    pub hooks: Option<&'static hooks::Ops>,
    /// The region's pool of pre-zeroed buffers (`strategy = { kind = "pool", ... }`); `None`
    /// allocates every buffer directly from CMA.
    pub pool: Option<pool::Config>,
    /// The region's headroom (`strategy = { kind = "headroom", ... }`): part of its area kept
    /// allocated and zeroed ahead of demand.
    pub headroom: Option<headroom::Config>,
    /// `Some(capacity)` when the region's buffers are charged to the allocating task's dmem
    /// cgroup (the board file's `accounting`), under the dmem region `heapgen/<name>` whose
    /// `dmem.capacity` is `capacity` bytes.
    pub accounting: Option<u64>,
}

/// A CMA area a heap allocates from, with what shares it: the pools of every heap that
/// allocates from it, the headrooms held in it, and the dmem cgroup region its pages are charged
/// to (the region whose area it is, when that region is accounted).
pub struct Area {
    /// The area.
    pub cma: Cma,
    /// The headroom the heap serves requests from: its region's, over its own area only.
    pub serves: Option<Arc<Headroom>>,
    /// The pools of every heap of the board over this area.
    pub pools: KVec<Arc<Pool>>,
    /// The headrooms of every region of the board over this area.
    pub headrooms: KVec<Arc<Headroom>>,
    /// The dmem cgroup region its pages are charged to.
    pub dmem: Option<Arc<dmem::Region>>,
}

impl Area {
    fn new(cma: Cma, dmem: Option<Arc<dmem::Region>>) -> Self {
        Self {
            cma,
            serves: None,
            pools: KVec::new(),
            headrooms: KVec::new(),
            dmem,
        }
    }

    /// Allocates `count` pages aligned to `PAGE_SIZE << align_order` from the area: carved out
    /// of the heap's headroom when it can, else from CMA. Returns them and whether they are
    /// zeroed already (the headroom's are).
    ///
    /// When the area is exhausted, buffers of the pools over it, then extents of the headrooms
    /// held in it, go back to CMA one at a time, the allocation retried after each, so that
    /// neither makes an allocation fail that would succeed without it, and both give back only
    /// what a request needs. (A request that does not fit even then empties them; requests are
    /// bounded by the region's `max-alloc`, and they refill once allocations succeed again.)
    pub fn alloc(&self, count: usize, align_order: u32) -> Option<(CmaPages, bool)> {
        if let Some(pages) = self
            .serves
            .as_ref()
            .and_then(|h| h.take(count, align_order))
        {
            return Some((pages, true));
        }
        if let Some(pages) = self.cma.alloc(count, align_order) {
            for pool in self.pools.iter() {
                pool.fed();
            }
            for headroom in self.headrooms.iter() {
                headroom.fed();
            }
            return Some((pages, false));
        }
        for pool in self.pools.iter() {
            while pool.starve_one() > 0 {
                if let Some(pages) = self.cma.alloc(count, align_order) {
                    return Some((pages, false));
                }
            }
        }
        for headroom in self.headrooms.iter() {
            while headroom.starve_one() > 0 {
                if let Some(pages) = self.cma.alloc(count, align_order) {
                    return Some((pages, false));
                }
            }
        }
        None
    }
}

/// One registered heap: a region, its CMA area and the heap's counters.
pub struct HeapData {
    /// The region the heap serves.
    pub region: &'static Region,
    /// The heap's name.
    pub name: &'static CStr,
    /// The region's CMA area.
    pub area: Area,
    /// The areas of the region's fallback regions, in order.
    pub fallback: KVec<Area>,
    /// Whether CPU mappings are write-combined.
    pub uncached: bool,
    /// Whether the region's buffers are protected (its hooks say so): never mapped by the kernel,
    /// no CPU cache maintenance once handed out.
    pub protected: bool,
    /// The cache maintenance its buffers get (payload write-back, guard canaries).
    pub maintenance: Maintenance,
    /// Counters.
    pub stats: Stats,
    /// The heap's pool, when its region has one (see [`pool`]).
    pub pool: Option<Arc<Pool>>,
    /// Pages of released buffers whose release hook failed (see [`hooks`]). Lock order: taken
    /// with no other runtime lock held; the retries run the release hook under it (so a hook
    /// must not allocate from its own heap), and dropping the retried pages releases them to
    /// CMA under it.
    quarantine: Arc<Mutex<KVec<Quarantined>>>,
    /// Retries the quarantine in the background while it holds buffers; only regions with hooks
    /// can quarantine, so only their heaps have one.
    retry: Option<DelayedWork<HeapData>>,
    /// The wait before the next background retry, in milliseconds.
    retry_delay_ms: AtomicU32,
}

impl HeapData {
    /// Runs the release hook of a buffer's pages; on failure keeps them in quarantine instead of
    /// returning them to CMA. Called with the last reference to the buffer gone. Returns the
    /// pages when they may be reused (no hook, or the hook succeeded).
    pub(crate) fn release(&self, mut pages: CmaPages, layout: Layout) -> Option<CmaPages> {
        let Some(hooks) = self.region.hooks else {
            return Some(pages);
        };
        if hooks
            .before_release(&HookBuffer::new(&pages, &layout))
            .is_ok()
        {
            return Some(pages);
        }
        let mut list = self.quarantine.lock();
        // Counted as quarantined only once it is in the list, which the retries empty: a
        // buffer that cannot be kept there must not leave `quarantined` above zero for ever.
        let kept = list.reserve(1, GFP_KERNEL).is_ok();
        self.stats.on_release_hook_failure(kept);
        if !kept {
            // Returning possibly protected pages to CMA is worse than losing them: keep them out
            // of circulation for good, loudly.
            pr_err!(
                "{:?}: {:?} release hook failed and the quarantine is full: {} pages leaked\n",
                self.name,
                hooks.name,
                pages.count()
            );
            core::mem::forget(pages.take());
            return None;
        }
        // Cannot fail: one slot was reserved above.
        let _ = list.push_or_return(Quarantined { pages, layout });
        drop(list);
        if let Some(retry) = &self.retry {
            retry.schedule(self.retry_delay_ms.load(Relaxed));
        }
        None
    }

    /// Retries the release hook of every quarantined buffer; those that succeed go back to CMA.
    pub(crate) fn retry_quarantine(&self) {
        if self.stats.quarantined.load(Relaxed) == 0 {
            return;
        }
        let Some(hooks) = self.region.hooks else {
            return;
        };
        let stats = &self.stats;
        self.quarantine.lock().retain(|q| {
            if hooks
                .before_release(&HookBuffer::new(&q.pages, &q.layout))
                .is_ok()
            {
                stats.on_quarantine_released();
                false
            } else {
                stats.on_release_hook_failure(false);
                true
            }
        });
    }
}

/// The background retry: besides every allocation and release of the heap, a quarantine is
/// retried from the unbound workqueue, after [`RETRY_FIRST_MS`] and then ever more rarely, until
/// it is empty, so that an idle heap gets its pages back too.
impl Run for HeapData {
    fn run(&'static self) {
        self.retry_quarantine();
        if self.stats.quarantined.load(Relaxed) == 0 {
            self.retry_delay_ms.store(RETRY_FIRST_MS, Relaxed);
            return;
        }
        let delay = self
            .retry_delay_ms
            .load(Relaxed)
            .saturating_mul(2)
            .min(RETRY_MAX_MS);
        self.retry_delay_ms.store(delay, Relaxed);
        if let Some(retry) = &self.retry {
            retry.schedule(delay);
        }
    }
}

impl HeapOps for HeapData {
    fn allocate(&'static self, len: usize, fd_flags: u32, _heap_flags: u64) -> Result<DmaBuf> {
        Buffer::allocate(self, len, fd_flags)
    }
}

/// What one heap brings to the areas it allocates from: its own area, its pool over that area
/// and the area's dmem region (shared with every heap that falls back on the area).
struct AreaShare {
    cma: Cma,
    pool: Option<Arc<Pool>>,
    headroom: Option<Arc<Headroom>>,
    dmem: Option<Arc<dmem::Region>>,
}

/// Every heap of the board, registered for good.
pub struct Registration {
    heaps: KVec<Heap<HeapData>>,
}

impl Registration {
    /// Registers one heap per region and variant, then pins the module. Each heap's counters
    /// appear under `/sys/kernel/debug/heapgen/<heap>/`.
    ///
    /// Everything that can fail without side effects (finding every CMA area, allocating every
    /// heap's state) happens first, so a board whose areas do not match the kernel registers
    /// nothing and the module fails to load with a message that names the region and the area.
    /// Heaps cannot be unregistered: once the first one is registered the module pins itself, and
    /// a later registration failure (a name taken by another driver) is reported and skipped.
    pub fn new(regions: &'static [Region]) -> Result<Self> {
        // Fault builds for the test harness's self-tests (never set otherwise): a kernel warning,
        // a lockdep report and a kCFI failure the harness must catch.
        #[cfg(heapgen_fault_warn)]
        kernel::warn_on!(true);
        #[cfg(heapgen_fault_lockdep)]
        fault_lock_inversion()?;
        #[cfg(heapgen_fault_cfi)]
        crate::workqueue::fault_cfi()?;
        let mut pending = KVec::new();
        let protected = |r: &Region| r.hooks.is_some_and(|h| h.protected);
        let guarded = |r: &Region| r.policy.guard_before > 0 || r.policy.guard_after > 0;
        let cache_device = if regions
            .iter()
            .any(|r| r.uncached_heap.is_some() || protected(r) || guarded(r))
        {
            Some(DmaDevice::create(c_str!("heapgen-cache")).inspect_err(|e| {
                pr_err!(
                    "cannot register the device for cache maintenance: {:?}\n",
                    e
                )
            })?)
        } else {
            None
        };
        for region in regions {
            let Some(cma) = Cma::find(region.cma) else {
                pr_err!(
                    "region {}: no CMA area named {:?}; the kernel has:\n",
                    region.name.to_str().unwrap_or("?"),
                    region.cma
                );
                for area in Cma::areas() {
                    pr_err!("  {:?}\n", area.name());
                }
                return Err(ENODEV);
            };
            let mut fallback = KVec::with_capacity(region.fallback.len(), GFP_KERNEL)?;
            for area in region.fallback {
                let Some(found) = Cma::find(area) else {
                    pr_err!(
                        "region {}: no CMA area named {:?} for its fallback\n",
                        region.name.to_str().unwrap_or("?"),
                        area
                    );
                    return Err(ENODEV);
                };
                fallback.push(found, GFP_KERNEL)?;
            }
            // One dmem region per board region: both heaps of a region hand out the same memory.
            let dmem = match region.accounting {
                Some(capacity) => {
                    let dmem = dmem::Region::register(region.name, capacity).inspect_err(|e| {
                        pr_err!(
                            "region {}: cannot register its dmem cgroup region: {:?}\n",
                            region.name.to_str().unwrap_or("?"),
                            e
                        )
                    })?;
                    Some(Arc::new(dmem, GFP_KERNEL)?)
                }
                None => None,
            };
            // One headroom per region, shared by its heaps. Its zeroes are written back for a
            // region with a write-combined or protected heap, as the pool's are.
            let headroom = match &region.headroom {
                Some(config) => Some(Headroom::new(
                    config,
                    cma,
                    region.policy.align_order(region.policy.max_alloc),
                    Maintenance {
                        payload: cache_device
                            .clone()
                            .filter(|_| region.uncached_heap.is_some() || protected(region)),
                        guards: None,
                    },
                )?),
                None => None,
            };
            for (name, uncached) in [(region.heap, false), (region.uncached_heap, true)] {
                let Some(name) = name else { continue };
                // Their pools and dmem regions are filled in below, once every heap exists.
                let mut areas = KVec::with_capacity(fallback.len(), GFP_KERNEL)?;
                for cma in fallback.iter() {
                    areas.push(Area::new(*cma, None), GFP_KERNEL)?;
                }
                let quarantine = Arc::pin_init(new_mutex!(KVec::new()), GFP_KERNEL)?;
                let maintenance = Maintenance {
                    payload: cache_device
                        .clone()
                        .filter(|_| uncached || protected(region)),
                    guards: cache_device.clone().filter(|_| guarded(region)),
                };
                let pool = match &region.pool {
                    Some(config) => {
                        Some(Pool::new(config, &region.policy, cma, maintenance.clone())?)
                    }
                    None => None,
                };
                let mut area = Area::new(cma, dmem.clone());
                area.serves = headroom.clone();
                let data = HeapData {
                    region,
                    name,
                    area,
                    fallback: areas,
                    quarantine,
                    uncached,
                    protected: protected(region),
                    maintenance,
                    pool,
                    stats: Stats::default(),
                    retry: match region.hooks {
                        Some(_) => Some(DelayedWork::new()?),
                        None => None,
                    },
                    retry_delay_ms: AtomicU32::new(RETRY_FIRST_MS),
                };
                pending.push(KBox::new(data, GFP_KERNEL)?, GFP_KERNEL)?;
            }
        }
        // Every area's pools, from the heaps over it; a fallback area's dmem region is that of
        // the first region (in board-file order) over it.
        let mut shared: KVec<AreaShare> = KVec::with_capacity(pending.len(), GFP_KERNEL)?;
        for data in pending.iter() {
            shared.push(
                AreaShare {
                    cma: data.area.cma,
                    pool: data.pool.clone(),
                    headroom: data.area.serves.clone(),
                    dmem: data.area.dmem.clone(),
                },
                GFP_KERNEL,
            )?;
        }
        for data in pending.iter_mut() {
            let data = &mut **data;
            for (own, area) in Iterator::chain(
                core::iter::once((true, &mut data.area)),
                data.fallback.iter_mut().map(|a| (false, a)),
            ) {
                let mut first = true;
                for AreaShare {
                    cma,
                    pool,
                    headroom,
                    dmem,
                } in shared.iter()
                {
                    if *cma != area.cma {
                        continue;
                    }
                    if let Some(pool) = pool {
                        area.pools.push(pool.clone(), GFP_KERNEL)?;
                    }
                    // Both heaps of a region share its headroom: listed once.
                    if let Some(headroom) = headroom {
                        if !area.headrooms.iter().any(|h| Arc::ptr_eq(h, headroom)) {
                            area.headrooms.push(headroom.clone(), GFP_KERNEL)?;
                        }
                    }
                    if !own && first {
                        area.dmem = dmem.clone();
                    }
                    first = false;
                }
            }
        }
        let mut heaps = KVec::with_capacity(pending.len(), GFP_KERNEL)?;
        let mut hook_files = KVec::with_capacity(pending.len(), GFP_KERNEL)?;
        for data in pending.drain_all() {
            let name = data.name;
            match Heap::register(name, data) {
                Ok(heap) => {
                    if heaps.is_empty() {
                        dma_heap::pin_module();
                    }
                    // The heap's state has its final address now.
                    if let Some(retry) = &heap.data().retry {
                        retry.arm(heap.data());
                    }
                    if let Some(pool) = heap.data().pool.as_deref() {
                        pool.arm();
                    }
                    if let Some(headroom) = heap.data().area.serves.as_deref() {
                        headroom.arm();
                    }
                    if let Some(dir) = Dir::create(c_str!("heapgen"), None)
                        .and_then(|root| Dir::create(name, Some(root)))
                    {
                        let data = heap.data();
                        data.stats.publish(dir);
                        if let Some(hooks) = data.region.hooks {
                            publish_hook_counters(hooks, dir, &mut hook_files);
                        }
                        if let Some(pool) = data.pool.as_deref() {
                            pool.publish(dir);
                        }
                        if let Some(headroom) = data.area.serves.as_deref() {
                            headroom.publish(dir);
                        }
                    }
                    if let Some(pool) = heap.data().pool.as_ref() {
                        // Without a shrinker the pool still works; it only keeps its buffers
                        // under memory pressure (at most `depth` per class).
                        if Shrinker::register::<Pool>(name, pool).is_err() {
                            pr_warn!("heap {:?}: no shrinker for the pool\n", name);
                        }
                        // The first fill, in the background.
                        pool.kick();
                    }
                    // The region's first heap registers the shrinker of its headroom (shared by
                    // both heaps) and fills it, in the background.
                    let first_of_region =
                        !heap.data().uncached || heap.data().region.heap.is_none();
                    if let (true, Some(headroom)) =
                        (first_of_region, heap.data().area.serves.as_ref())
                    {
                        if Shrinker::register::<Headroom>(name, headroom).is_err() {
                            pr_warn!("heap {:?}: no shrinker for the headroom\n", name);
                        }
                        headroom.kick();
                    }
                    // Cannot fail: the capacity was reserved above.
                    let _ = heaps.push_or_return(heap);
                }
                Err(e) if heaps.is_empty() => {
                    pr_err!("heap {:?}: registration failed: {:?}\n", name, e);
                    return Err(e);
                }
                Err(e) => pr_err!(
                    "heap {:?}: registration failed: {:?}; the other heaps stay registered\n",
                    name,
                    e
                ),
            }
        }
        Ok(Self { heaps })
    }

    /// The registered heaps.
    pub fn heaps(&self) -> &[Heap<HeapData>] {
        &self.heaps
    }
}

/// Takes two locks in one order, then in the other: lockdep reports a possible deadlock.
#[cfg(heapgen_fault_lockdep)]
fn fault_lock_inversion() -> Result {
    let a = KBox::pin_init(new_mutex!(()), GFP_KERNEL)?;
    let b = KBox::pin_init(new_mutex!(()), GFP_KERNEL)?;
    {
        let _a = a.lock();
        let _b = b.lock();
    }
    let _b = b.lock();
    let _a = a.lock();
    Ok(())
}

/// Where a hook file's counters live: `/sys/kernel/debug/heapgen-hooks/<NAME>/`, beside the heaps'
/// directories (no heap name can clash with it).
const HOOKS_ROOT: &CStr = c_str!("heapgen-hooks");

/// Publishes a hook file's own counters, once, under `/sys/kernel/debug/heapgen-hooks/<NAME>/`,
/// and links `<heap>/hooks/<NAME>` to them. The counters are statics of the hook file: every
/// heap whose region uses the file (a region's cached and uncached heaps, or several regions
/// with one file) shares them, and the link says so. `published` holds the hook files whose
/// counters exist; it never grows past the capacity its caller reserved (one per heap).
fn publish_hook_counters(
    hooks: &'static hooks::Ops,
    heap_dir: Dir,
    published: &mut KVec<&'static hooks::Ops>,
) {
    let (Ok(name), Ok(root)) = (hooks.name.to_str(), HOOKS_ROOT.to_str()) else {
        return;
    };
    match published.iter().find(|p| p.name.to_str() == Ok(name)) {
        Some(p) if core::ptr::eq(*p, hooks) => {}
        Some(_) => {
            pr_warn!(
                "two hook files are named {:?}: only the first one's counters are published\n",
                name
            );
            return;
        }
        None => {
            // Reserved by the caller: the push cannot allocate, so a file is never published
            // twice (its counters' names would clash).
            if published.len() == published.capacity() {
                return;
            }
            let Some(dir) =
                Dir::create(HOOKS_ROOT, None).and_then(|root| Dir::create(hooks.name, Some(root)))
            else {
                return;
            };
            for counter in hooks.counters() {
                dir.add_u64_mode(counter.name, counter.value, counter.writable);
            }
            let _ = published.push(hooks, GFP_KERNEL);
        }
    }
    // `<heap>/hooks/<NAME>` -> `../../../heapgen-hooks/<NAME>`, NUL-terminated.
    let mut target = [0u8; 128];
    let parts = [
        b"../../../".as_slice(),
        root.as_bytes(),
        b"/",
        name.as_bytes(),
    ];
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len >= target.len() {
        return;
    }
    let mut at = 0;
    for part in parts {
        target[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    let (Some(dir), Ok(target)) = (
        Dir::create(c_str!("hooks"), Some(heap_dir)),
        CStr::from_bytes_with_nul(&target[..=len]),
    ) else {
        return;
    };
    dir.link(hooks.name, target);
}
