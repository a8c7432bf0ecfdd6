// SPDX-License-Identifier: GPL-2.0

//! Buffers: one physically contiguous CMA allocation each, laid out by the region's policy.
//!
//! Contiguity is used everywhere upstream's CMA heap ignores it: no per-page pointer array,
//! scatterlists of one entry per 2 GiB, `mmap` maps the whole window at once instead of faulting
//! page by page, and `vmap` of a cached lowmem buffer is its linear-map address.

use crate::prelude::*;
use crate::{
    cast::{u64_from, usize_from},
    cma::CmaPages,
    dma_buf::{
        AttachedTable, Device, Direction, DmaBuf, DmaBufOps, Exportable, KernelMapping,
        MappedTable, SgTable, VAddr, Vma,
    },
    dmem,
    hooks::HookBuffer,
    policy::{Layout, PolicyError, GUARD_CANARY},
    pool::{guard_pages, prepare},
    region::HeapData,
    stats::Failure,
};
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    new_mutex,
    sync::{Arc, Mutex},
};

/// An importer's handle on a buffer: the dma-buf core keeps it for the attachment and hands it
/// back at map, unmap and detach. What it names (the importer's table and whether it is
/// mapped) lives in the buffer's lock, with the CPU-access syncs that read it.
pub struct Attachment;

/// A buffer's state that changes after export. Lock order: a buffer's `inner` is the innermost
/// lock of the runtime (nothing is locked while it is held); the dma-buf core may hold the
/// buffer's reservation lock around it (map, unmap).
struct Inner {
    /// Every attachment, with its table and DMA mapping.
    attachments: KVec<(Arc<Attachment>, AttachedTable)>,
    vmap_count: usize,
    kmap: Option<KernelMapping>,
}

/// A buffer handed to userspace as a dma-buf.
#[pin_data(PinnedDrop)]
pub struct Buffer {
    heap: &'static HeapData,
    pages: CmaPages,
    layout: Layout,
    /// Whether `pages` came from a fallback area rather than the heap's own.
    fell_back: bool,
    /// The buffer's charge to its allocating task's dmem cgroup (accounted regions), uncharged
    /// when the buffer is dropped.
    _charge: Option<dmem::Charge>,
    /// Whether the `after_alloc` hook succeeded (or there is none): only then is the buffer
    /// counted, and its release hook run when it is dropped.
    hooked: AtomicBool,
    /// Whether `inner.kmap` holds a kernel mapping, readable without the lock (set and cleared
    /// under it): the release path checks it instead of taking the lock for every buffer.
    vmapped: AtomicBool,
    #[pin]
    inner: Mutex<Inner>,
}

/// Charges a buffer's footprint to `region`, when the memory is accounted. A cgroup over its
/// limit fails with `ENOMEM` (the allocation fails as if the memory were not there).
fn charge_area(
    region: Option<&dmem::Region>,
    layout: &Layout,
) -> Result<Option<dmem::Charge>, (Failure, Error)> {
    let Some(region) = region else {
        return Ok(None);
    };
    region.try_charge(layout.total_len).map(Some).map_err(|e| {
        if e == EAGAIN {
            (Failure::CgroupLimit, ENOMEM)
        } else {
            (Failure::Other, e)
        }
    })
}

/// Pages for a buffer, and where they came from.
struct Taken {
    pages: CmaPages,
    /// Whether they came from a fallback area.
    fell_back: bool,
    /// Whether they are ready (a pooled buffer: zeroed and guarded already).
    ready: bool,
    /// Whether they are zeroed and written back already (carved out of a headroom).
    zeroed: bool,
    /// The charge that pays for them, if the memory is accounted.
    charge: Option<dmem::Charge>,
}

impl Buffer {
    /// The table of attachment `att`, found by identity in the buffer's locked state.
    fn table_of<'a>(inner: &'a mut Inner, att: &Attachment) -> Option<&'a mut AttachedTable> {
        inner
            .attachments
            .iter_mut()
            .find(|(a, _)| core::ptr::eq(&**a, att))
            .map(|(_, table)| table)
    }

    /// Allocates, zeroes and exports a buffer of at least `len` bytes from `heap`.
    pub fn allocate(heap: &'static HeapData, len: usize, fd_flags: u32) -> Result<DmaBuf> {
        let stats = &heap.stats;
        let layout = heap.region.policy.layout(u64_from(len)).map_err(|e| {
            let (why, err) = match e {
                PolicyError::TooLarge => (Failure::TooLarge, E2BIG),
                _ => (Failure::Invalid, EINVAL),
            };
            stats.on_failure(why);
            err
        })?;
        heap.retry_quarantine();
        // Charged before any page is taken from the heap's own area, for the whole footprint
        // (padding and guards too): that is what the buffer removes from the area.
        let charge = charge_area(heap.area.dmem.as_deref(), &layout).map_err(|(why, err)| {
            stats.on_failure(why);
            err
        })?;
        let buffer = Self::new(heap, layout, charge).map_err(|(why, err)| {
            stats.on_failure(why);
            err
        })?;
        stats.on_alloc(layout.payload_len);
        let fell_back = buffer.fell_back;
        let size = usize_from(layout.payload_len);
        DmaBuf::export(buffer, heap.name, size, fd_flags, !heap.protected)
            .inspect(|_| {
                stats.on_exported();
                if fell_back {
                    stats.on_fallback();
                }
            })
            .inspect_err(|_| stats.on_failure(Failure::Other))
    }

    /// Allocates, zeroes and guards the pages, then runs the `after_alloc` hook. On error, says
    /// why for the statistics.
    fn new(
        heap: &'static HeapData,
        layout: Layout,
        charge: Option<dmem::Charge>,
    ) -> Result<Pin<KBox<Exportable<Self>>>, (Failure, Error)> {
        let classify = |e: Error| {
            let why = if e == ENOMEM {
                Failure::NoMemory
            } else if e == EINTR {
                Failure::Interrupted
            } else {
                Failure::Other
            };
            (why, e)
        };
        let Taken {
            mut pages,
            fell_back,
            ready,
            zeroed,
            charge,
        } = Self::new_pages(heap, &layout, charge)?;
        if !ready {
            prepare(&mut pages, &layout, &heap.maintenance, zeroed).map_err(classify)?;
        }
        let buffer = Exportable::new(try_pin_init!(Self {
            heap,
            pages,
            layout,
            fell_back,
            _charge: charge,
            hooked: AtomicBool::new(false),
            vmapped: AtomicBool::new(false),
            inner <- new_mutex!(Inner {
                attachments: KVec::new(),
                vmap_count: 0,
                kmap: None,
            }),
        }))
        .map_err(classify)?;
        // On failure the buffer is dropped with `hooked` false: its pages go back to CMA as they
        // are (the hook did not protect them, so there is nothing to release), uncounted.
        if let Some(hooks) = heap.region.hooks {
            hooks
                .after_alloc(&buffer.hook_buffer())
                .map_err(|e| (Failure::Hook, e))?;
        }
        buffer.hooked.store(true, Ordering::Relaxed);
        Ok(buffer)
    }

    /// Takes the pages: from the heap's pool, its own area (its headroom first) or a fallback
    /// area. Pooled pages are ready; others must be prepared (zeroed unless they came from the
    /// headroom, guarded). Returns them, whether they came from a
    /// fallback area, and the charge that pays for them: `charge`, taken for the heap's own
    /// area, or, when the pages come from a fallback area, one to that area's dmem region (a
    /// region's memory is charged to that region, whoever falls back on it). A fallback area
    /// whose charge fails is skipped.
    fn new_pages(
        heap: &'static HeapData,
        layout: &Layout,
        charge: Option<dmem::Charge>,
    ) -> Result<Taken, (Failure, Error)> {
        // A pooled buffer is ready: zeroed and guarded in the background (see `pool`).
        let pool = heap
            .pool
            .as_ref()
            .and_then(|pool| pool.class_of(layout).map(|class| (pool, class)));
        if let Some((pool, class)) = pool {
            if let Some(pages) = pool.take(class) {
                return Ok(Taken {
                    pages,
                    fell_back: false,
                    ready: true,
                    zeroed: true,
                    charge,
                });
            }
        }
        // The heap's own area first, then the fallback regions' areas in board-file order. The
        // layout (alignment, padding, guards) is this heap's wherever the pages come from.
        let count = usize_from(layout.total_pages());
        if let Some((pages, zeroed)) = heap.area.alloc(count, layout.align_order) {
            return Ok(Taken {
                pages,
                fell_back: false,
                ready: false,
                zeroed,
                charge,
            });
        }
        drop(charge);
        let mut limited = false;
        for area in heap.fallback.iter() {
            let charge = match charge_area(area.dmem.as_deref(), layout) {
                Ok(c) => c,
                Err((Failure::CgroupLimit, _)) => {
                    limited = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some((pages, zeroed)) = area.alloc(count, layout.align_order) {
                return Ok(Taken {
                    pages,
                    fell_back: true,
                    ready: false,
                    zeroed,
                    charge,
                });
            }
        }
        if limited {
            return Err((Failure::CgroupLimit, ENOMEM));
        }
        // Why the heap's own area refused, for the integrator: full, or a free page left but no
        // range of the request's size it could empty. One page, at once given back, tells.
        let why = match heap.area.cma.alloc(1, 0) {
            Some(_) => Failure::Busy,
            None => Failure::NoSpace,
        };
        Err((why, ENOMEM))
    }

    /// Whether the CPU's caches are left alone when the buffer is handed between the CPU and
    /// devices: write-combined buffers have no cached alias to maintain, and the CPU never
    /// accesses protected ones (maintenance there could write into secure memory).
    fn skip_cpu_sync(&self) -> bool {
        self.heap.uncached || self.heap.protected
    }

    /// The buffer as its region's hooks see it.
    fn hook_buffer(&self) -> HookBuffer<'_> {
        HookBuffer::new(&self.pages, &self.layout)
    }

    /// Asks the region's hooks whether a CPU mapping is allowed (`EPERM` if not).
    fn check_map(
        &self,
        allowed: impl FnOnce(&crate::hooks::Ops, &HookBuffer<'_>) -> bool,
    ) -> Result {
        match self.heap.region.hooks {
            Some(hooks) if !allowed(hooks, &self.hook_buffer()) => {
                self.heap.stats.on_map_refused();
                Err(EPERM)
            }
            _ => Ok(()),
        }
    }

    fn payload_first_page(&self) -> usize {
        usize_from(self.layout.payload_page_offset())
    }

    fn payload_pages(&self) -> usize {
        usize_from(self.layout.payload_pages())
    }

    fn payload_len(&self) -> usize {
        usize_from(self.layout.payload_len)
    }

    /// Returns the offset of the first damaged guard word, if any.
    fn damaged_guard(&self) -> Option<usize> {
        if !self.layout.has_guards() {
            return None;
        }
        // Read what is in memory, where a device's overrun went, not lines the CPU still has.
        if let (Some(dev), Ok(ranges)) = (&self.heap.maintenance.guards, guard_pages(&self.layout))
        {
            for (first, count) in ranges {
                // A failed invalidation leaves the check to the cached view.
                let _ = dev.invalidate(&self.pages, first, count);
            }
        }
        let front = usize_from(self.layout.payload_offset);
        let after = front + self.payload_len();
        let back = usize_from(self.layout.guard_after);
        let front = self.pages.find_mismatch(0, front, GUARD_CANARY);
        let back = self.pages.find_mismatch(after, back, GUARD_CANARY);
        front.ok().flatten().or(back.ok().flatten())
    }
}

#[pinned_drop]
impl PinnedDrop for Buffer {
    fn drop(self: Pin<&mut Self>) {
        let heap = self.heap;
        if !self.hooked.load(Ordering::Relaxed) {
            // Never handed out: the pages go back to CMA with the field.
            return;
        }
        // The dma-buf core refuses to release a vmapped buffer, so this is a last line of
        // defence (as in upstream's heap), kept off the common path.
        if self.vmapped.load(Ordering::Relaxed) {
            if self.inner.lock().kmap.take().is_some() {
                pr_warn!("{:?}: buffer released while still vmapped\n", heap.name);
            }
        }
        let damaged = self.damaged_guard();
        if let Some(offset) = damaged {
            if heap.stats.on_guard_overrun() {
                pr_warn!(
                    "{:?}: guard damaged at offset {:#x} of a {:#x}-byte allocation (device overrun?)\n",
                    heap.name,
                    offset,
                    self.layout.total_len
                );
            }
        }
        heap.stats.on_release(self.layout.payload_len);
        let layout = self.layout;
        let fell_back = self.fell_back;
        // SAFETY: `pages` is not structurally pinned (no `#[pin]`), so taking it through a plain
        // mutable reference moves no pinned data; `self` is not used as pinned afterwards.
        // (Not `project()`: `#[pin_data]` has no projections on every kernel.)
        let pages = unsafe { self.get_unchecked_mut() }.pages.take();
        // Earlier quarantined buffers first, then this one (whose hook is tried once now).
        heap.retry_quarantine();
        let Some(pages) = heap.release(pages, layout) else {
            return;
        };
        // Back to the pool (to be zeroed before reuse) when it is of a class, from the heap's
        // own area and its guards are intact; otherwise back to CMA as `pages` drops.
        if let Some(pool) = heap.pool.as_ref() {
            if let (false, None, Some(class)) = (fell_back, damaged, pool.class_of(&layout)) {
                pool.recycle(class, pages);
            }
        }
    }
}

impl DmaBufOps for Buffer {
    type Attachment = Attachment;

    fn released(&self) {
        self.heap.stats.on_dma_buf_released();
    }

    fn attach(&self, dev: Device) -> Result<Arc<Attachment>> {
        // SAFETY: The buffer's pages outlive its attachments: the dma-buf core detaches every
        // importer (dropping the table) before it releases the buffer.
        let table = unsafe {
            SgTable::new_contiguous(
                dev,
                &self.pages,
                usize_from(self.layout.payload_offset),
                self.payload_len(),
            )
        }?;
        let att = Arc::new(Attachment, GFP_KERNEL)?;
        self.inner
            .lock()
            .attachments
            .push((att.clone(), AttachedTable::new(dev, table)), GFP_KERNEL)?;
        Ok(att)
    }

    fn detach(&self, att: Arc<Attachment>) {
        // Dropping the table unmaps it if the importer did not.
        self.inner
            .lock()
            .attachments
            .retain(|(a, _)| !Arc::ptr_eq(a, &att));
    }

    fn map(&self, att: &Attachment, dir: Direction) -> Result<MappedTable> {
        // Under the buffer's lock, which the CPU-access syncs hold while they walk the mapped
        // attachments: the dma-buf core serialises map and unmap of one attachment (the
        // reservation lock), not them against DMA_BUF_IOCTL_SYNC.
        let skip_cpu_sync = self.skip_cpu_sync();
        let mut inner = self.inner.lock();
        let table = Self::table_of(&mut inner, att).ok_or(EINVAL)?;
        table.map(dir, skip_cpu_sync).map_err(|_| ENOMEM)
    }

    fn unmap(&self, att: &Attachment, _dir: Direction) {
        // See `map`: no sync may use the table's DMA addresses while they go away. The table
        // unmaps with the direction it was mapped with.
        let mut inner = self.inner.lock();
        if let Some(table) = Self::table_of(&mut inner, att) {
            table.unmap();
        }
    }

    fn begin_cpu_access(&self, _dir: Direction) -> Result {
        if self.skip_cpu_sync() {
            return Ok(());
        }
        let inner = self.inner.lock();
        if let Some(kmap) = &inner.kmap {
            kmap.invalidate();
        }
        // Each mapped attachment in the direction it was mapped with (the DMA API's rule; a
        // device-to-CPU mapping synced `DMA_BIDIRECTIONAL` for a read-write CPU access is what
        // CONFIG_DMA_API_DEBUG reports).
        for (_, table) in inner.attachments.iter() {
            table.sync_for_cpu();
        }
        Ok(())
    }

    fn end_cpu_access(&self, _dir: Direction) -> Result {
        if self.skip_cpu_sync() {
            return Ok(());
        }
        let inner = self.inner.lock();
        if let Some(kmap) = &inner.kmap {
            kmap.flush();
        }
        for (_, table) in inner.attachments.iter() {
            table.sync_for_device();
        }
        Ok(())
    }

    fn mmap(&self, vma: &Vma) -> Result {
        self.check_map(|hooks, buffer| hooks.may_mmap(buffer))?;
        if !vma.is_shared() {
            return Err(EINVAL);
        }
        let end = vma.pgoff().checked_add(vma.pages()).ok_or(EINVAL)?;
        if end > self.payload_pages() {
            return Err(EINVAL);
        }
        if self.heap.uncached {
            vma.set_writecombine();
        }
        vma.map_all(&self.pages, self.payload_first_page() + vma.pgoff())
    }

    fn vmap(&self) -> Result<VAddr> {
        self.check_map(|hooks, buffer| hooks.may_vmap(buffer))?;
        let mut inner = self.inner.lock();
        if let Some(addr) = inner.kmap.as_ref().map(KernelMapping::addr) {
            inner.vmap_count += 1;
            return Ok(addr);
        }
        // SAFETY: The mapping lives in `inner`, a field of the buffer whose `pages` it maps, and
        // is unmapped before the pages go (the last `vunmap`, or the buffer's drop).
        let kmap = unsafe {
            KernelMapping::new(
                &self.pages,
                self.payload_first_page(),
                self.payload_pages(),
                self.heap.uncached,
            )
        }?;
        let addr = kmap.addr();
        inner.kmap = Some(kmap);
        self.vmapped.store(true, Ordering::Relaxed);
        inner.vmap_count = 1;
        Ok(addr)
    }

    fn vunmap(&self) {
        let mut inner = self.inner.lock();
        if inner.vmap_count == 0 {
            return;
        }
        inner.vmap_count -= 1;
        if inner.vmap_count == 0 {
            self.vmapped.store(false, Ordering::Relaxed);
            // Dropping the mapping unmaps it.
            inner.kmap = None;
        }
    }
}
