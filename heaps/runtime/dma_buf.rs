// SPDX-License-Identifier: GPL-2.0

//! dma-buf export, attachments, scatterlists and CPU mappings of exported buffers.
//!
//! C headers: [`include/linux/dma-buf.h`](srctree/include/linux/dma-buf.h),
//! [`include/linux/scatterlist.h`](srctree/include/linux/scatterlist.h),
//! [`include/linux/dma-mapping.h`](srctree/include/linux/dma-mapping.h)

use crate::{bindings, cma::CmaPages};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{prelude::*, sync::Arc, types::Opaque, ThisModule};

/// dma-buf exporters import the `DMA_BUF` symbol namespace (`MODULE_IMPORT_NS`; `module!` has no
/// key for it on every kernel).
#[link_section = ".modinfo"]
#[used(compiler)]
static IMPORT_NS: [u8; 18] = *b"import_ns=DMA_BUF\0";

/// A DMA transfer direction (`enum dma_data_direction`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Direction(bindings::dma_data_direction);

/// The device an importer attached with.
///
/// # Invariants
///
/// `ptr` is the `struct device` of a live attachment; it is only used while the attachment exists
/// (the attachment's state, which holds it, is dropped at detach at the latest).
#[derive(Clone, Copy)]
pub struct Device {
    ptr: NonNull<bindings::device>,
}

// SAFETY: The device is reference-counted by the importer for the attachment's lifetime, and the
// DMA API may be called on it from any thread.
unsafe impl Send for Device {}
// SAFETY: See `Send`.
unsafe impl Sync for Device {}

/// A scatter-gather table over a physically contiguous range: one entry per 2 GiB.
///
/// # Invariants
///
/// `table` was set up by `sg_alloc_table` and describes pages of a [`CmaPages`] range that
/// outlives it; it is freed exactly once, on drop.
pub struct SgTable {
    table: Opaque<bindings::sg_table>,
}

// SAFETY: The table is plain memory owned by this value; the DMA API may use it from any thread.
unsafe impl Send for SgTable {}
// SAFETY: Mutation through `&self` (map, unmap, sync) is serialised by the dma-buf core and the
// owning buffer's lock, as for every C exporter.
unsafe impl Sync for SgTable {}

/// The longest scatterlist entry built (entries hold an `unsigned int` length).
const MAX_SEGMENT: usize = 1 << 31;

impl SgTable {
    /// Builds a table over bytes `offset..offset + len` of `pages` (both page-aligned).
    ///
    /// The caller keeps `pages` alive for as long as the table.
    pub fn new_contiguous(pages: &CmaPages, offset: usize, len: usize) -> Result<Self> {
        let page_size = 1usize << bindings::PAGE_SHIFT;
        if len == 0 || offset % page_size != 0 || len % page_size != 0 {
            return Err(EINVAL);
        }
        if offset.checked_add(len).ok_or(EINVAL)? > pages.count() << bindings::PAGE_SHIFT {
            return Err(EINVAL);
        }
        let nents = u32::try_from(len.div_ceil(MAX_SEGMENT)).map_err(|_| EINVAL)?;
        // `sg_alloc_table` clears the table before anything else (`Opaque::zeroed` is not on
        // every kernel).
        let table = Opaque::<bindings::sg_table>::uninit();
        // SAFETY: `table` is memory for an `sg_table`, which `sg_alloc_table` initialises.
        kernel::error::to_result(unsafe {
            bindings::sg_alloc_table(table.get(), nents, bindings::GFP_KERNEL)
        })?;
        // INVARIANT: The table is allocated; it is filled below before anyone sees it.
        let this = Self { table };
        // SAFETY: The table was allocated with `nents >= 1` entries.
        let mut sg = unsafe { (*this.table.get()).sgl };
        let mut done = 0;
        while done < len {
            let chunk = core::cmp::min(len - done, MAX_SEGMENT);
            let page = pages.page((offset + done) >> bindings::PAGE_SHIFT);
            // SAFETY: `sg` is one of the `nents` entries (one per `MAX_SEGMENT` bytes) and
            // `chunk <= MAX_SEGMENT` fits its `unsigned int` length.
            unsafe { bindings::heapgen_sg_set_page(sg, page, chunk as u32, 0) };
            done += chunk;
            if done < len {
                // SAFETY: More entries follow `sg` in the table.
                sg = unsafe { bindings::heapgen_sg_next(sg) };
            }
        }
        Ok(this)
    }

    /// The raw table, for handing to importers.
    pub fn as_raw(&self) -> *mut bindings::sg_table {
        self.table.get()
    }

    /// Maps the table for DMA by `dev`; `skip_cpu_sync` for write-combined buffers.
    pub fn map(&self, dev: Device, dir: Direction, skip_cpu_sync: bool) -> Result {
        // SAFETY: `dev` is a live device (its invariant) and the table is valid.
        kernel::error::to_result(unsafe {
            bindings::heapgen_dma_map_sgtable(dev.ptr.as_ptr(), self.as_raw(), dir.0, skip_cpu_sync)
        })
    }

    /// Undoes [`SgTable::map`] with the same arguments.
    pub fn unmap(&self, dev: Device, dir: Direction, skip_cpu_sync: bool) {
        // SAFETY: The importer unmaps a table it mapped, on the device it mapped it for.
        unsafe {
            bindings::heapgen_dma_unmap_sgtable(
                dev.ptr.as_ptr(),
                self.as_raw(),
                dir.0,
                skip_cpu_sync,
            )
        };
    }

    /// Makes device writes visible to the CPU (`dma_sync_sgtable_for_cpu`).
    pub fn sync_for_cpu(&self, dev: Device, dir: Direction) {
        // SAFETY: Called on a table currently mapped for `dev`.
        unsafe {
            bindings::heapgen_dma_sync_sgtable_for_cpu(dev.ptr.as_ptr(), self.as_raw(), dir.0)
        };
    }

    /// Makes CPU writes visible to the device (`dma_sync_sgtable_for_device`).
    pub fn sync_for_device(&self, dev: Device, dir: Direction) {
        // SAFETY: Called on a table currently mapped for `dev`.
        unsafe {
            bindings::heapgen_dma_sync_sgtable_for_device(dev.ptr.as_ptr(), self.as_raw(), dir.0)
        };
    }
}

impl Drop for SgTable {
    fn drop(&mut self) {
        // SAFETY: The table was allocated by `sg_alloc_table` and is freed only here.
        unsafe { bindings::sg_free_table(self.table.get()) };
    }
}

/// A userspace mapping being set up by `mmap` on a dma-buf.
///
/// # Invariants
///
/// Wraps a `vm_area_struct` that is being set up by an `mmap` callback, with the mmap lock held.
#[repr(transparent)]
pub struct Vma(Opaque<bindings::vm_area_struct>);

impl Vma {
    /// # Safety
    ///
    /// `ptr` is a VMA being set up in an `mmap` callback, valid for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::vm_area_struct) -> &'a Self {
        // SAFETY: `Vma` is a transparent wrapper of the VMA, valid for `'a` by the caller.
        unsafe { &*ptr.cast() }
    }

    /// Whether the mapping is shared (`VM_SHARED` or `VM_MAYSHARE`); private ones are refused.
    pub fn is_shared(&self) -> bool {
        // SAFETY: The VMA is valid (type invariant).
        unsafe { bindings::heapgen_vma_is_shared(self.0.get()) }
    }

    /// The mapping's offset into the buffer, in pages.
    pub fn pgoff(&self) -> usize {
        // SAFETY: The VMA is valid (type invariant).
        unsafe { bindings::heapgen_vma_pgoff(self.0.get()) }
    }

    /// The mapping's length, in pages.
    pub fn pages(&self) -> usize {
        // SAFETY: The VMA is valid (type invariant).
        unsafe { bindings::heapgen_vma_pages(self.0.get()) }
    }

    /// Makes the mapping write-combined (for uncached buffers).
    pub fn set_writecombine(&self) {
        // SAFETY: The VMA is being set up, so its protection may still change.
        unsafe { bindings::heapgen_vma_set_writecombine(self.0.get()) };
    }

    /// Maps the whole VMA at once onto pages `first..first + pages()` of `pages`.
    pub fn map_all(&self, pages: &CmaPages, first: usize) -> Result {
        let end = first.checked_add(self.pages()).ok_or(EINVAL)?;
        if end > pages.count() {
            return Err(EINVAL);
        }
        // SAFETY: The VMA is being set up with the mmap lock held, and the pfn range lies inside
        // `pages`, which the dma-buf keeps alive for as long as any mapping of it exists.
        kernel::error::to_result(unsafe {
            bindings::heapgen_vma_remap_pfn(self.0.get(), pages.pfn() + first)
        })
    }
}

/// A kernel virtual address of a whole buffer (`vmap`).
#[derive(Clone, Copy)]
pub struct VAddr(NonNull<u8>);

// SAFETY: A kernel virtual address is valid on every CPU.
unsafe impl Send for VAddr {}
// SAFETY: See `Send`.
unsafe impl Sync for VAddr {}

impl VAddr {
    /// Invalidates CPU caches of the mapping before the CPU reads (`invalidate_kernel_vmap_range`).
    pub fn invalidate(&self, len: usize) {
        let len = i32::try_from(len).unwrap_or(i32::MAX);
        // SAFETY: Cache maintenance on a live kernel mapping of at least `len` bytes.
        unsafe { bindings::heapgen_invalidate_kernel_vmap_range(self.0.as_ptr().cast(), len) };
    }

    /// Writes back CPU caches of the mapping after CPU writes (`flush_kernel_vmap_range`).
    pub fn flush(&self, len: usize) {
        let len = i32::try_from(len).unwrap_or(i32::MAX);
        // SAFETY: Cache maintenance on a live kernel mapping of at least `len` bytes.
        unsafe { bindings::heapgen_flush_kernel_vmap_range(self.0.as_ptr().cast(), len) };
    }
}

/// The kernel's mapping of a buffer: the linear map when the pages have one and the mapping is
/// cached (no page array, no vmap), else a `vmap` alias.
///
/// # Invariants
///
/// A `Vmap` address came from `vmap` and is unmapped exactly once, by [`KernelMapping::unmap`];
/// a `Linear` address is inside the linear map of pages the caller keeps alive.
pub enum KernelMapping {
    /// Part of the kernel's linear map.
    Linear(VAddr),
    /// A vmalloc-space alias made by `vmap`.
    Vmap(VAddr),
}

impl KernelMapping {
    /// Maps pages `first..first + count` of `pages`, write-combined if asked.
    pub fn new(pages: &CmaPages, first: usize, count: usize, writecombine: bool) -> Result<Self> {
        let end = first.checked_add(count).ok_or(EINVAL)?;
        if count == 0 || end > pages.count() {
            return Err(EINVAL);
        }
        if !writecombine {
            if let Some(base) = pages.linear_addr() {
                // SAFETY: `first < count` pages into a linearly mapped range stays inside it.
                let addr = unsafe { base.as_ptr().add(first << bindings::PAGE_SHIFT) };
                return NonNull::new(addr)
                    .map(|a| Self::Linear(VAddr(a)))
                    .ok_or(EINVAL);
            }
        }
        let mut array = KVVec::with_capacity(count, GFP_KERNEL)?;
        for index in first..end {
            array.push(pages.page(index), GFP_KERNEL)?;
        }
        let count = u32::try_from(count).map_err(|_| EINVAL)?;
        // SAFETY: `array` holds `count` valid pages; `vmap` does not keep the array.
        let addr = unsafe { bindings::heapgen_vmap_pages(array.as_mut_ptr(), count, writecombine) };
        // INVARIANT: The address came from `vmap`.
        NonNull::new(addr.cast())
            .map(|a| Self::Vmap(VAddr(a)))
            .ok_or(ENOMEM)
    }

    /// The mapping's address.
    pub fn addr(&self) -> VAddr {
        match self {
            Self::Linear(a) | Self::Vmap(a) => *a,
        }
    }

    /// Unmaps a `vmap` alias; the linear map needs nothing.
    pub fn unmap(self) {
        if let Self::Vmap(addr) = self {
            // SAFETY: The address came from `vmap` and `self` is consumed (type invariant).
            unsafe { bindings::heapgen_vunmap(addr.0.as_ptr().cast()) };
        }
    }
}

/// What an exported buffer does when importers and userspace use it.
pub trait DmaBufOps: Send + Sync + Sized + 'static {
    /// Per-attachment state, shared between the attachment and the buffer's list.
    type Attachment: Send + Sync;

    /// An importer attaches `dev`.
    fn attach(&self, dev: Device) -> Result<Arc<Self::Attachment>>;
    /// The importer detaches; `att` is the state `attach` returned.
    fn detach(&self, att: Arc<Self::Attachment>);
    /// Maps the attachment for DMA and returns its table.
    fn map<'a>(&self, att: &'a Self::Attachment, dir: Direction) -> Result<&'a SgTable>;
    /// Undoes [`DmaBufOps::map`].
    fn unmap(&self, att: &Self::Attachment, dir: Direction);
    /// The CPU is about to access the buffer.
    fn begin_cpu_access(&self, dir: Direction) -> Result;
    /// The CPU is done accessing the buffer.
    fn end_cpu_access(&self, dir: Direction) -> Result;
    /// Userspace maps the buffer.
    fn mmap(&self, vma: &Vma) -> Result;
    /// The kernel maps the whole buffer (reference-counted by the implementation).
    fn vmap(&self) -> Result<VAddr>;
    /// Drops one [`DmaBufOps::vmap`] reference.
    fn vunmap(&self);
}

/// An exported dma-buf not yet handed to the dma-heap core.
///
/// # Invariants
///
/// `ptr` is a dma-buf this value holds one reference to.
pub struct DmaBuf {
    ptr: NonNull<bindings::dma_buf>,
}

impl DmaBuf {
    /// Exports `buffer` as a dma-buf of `size` bytes opened with `fd_flags`.
    ///
    /// On failure `buffer` is dropped. On success the dma-buf owns it and drops it on release.
    pub fn export<T: DmaBufOps>(
        buffer: Pin<KBox<T>>,
        exp_name: &'static CStr,
        module: &'static ThisModule,
        size: usize,
        fd_flags: u32,
    ) -> Result<Self> {
        // SAFETY: The buffer is only ever accessed through shared references and is turned back
        // into a pinned box in `release`, so it is never moved.
        let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(buffer) });
        let info = bindings::dma_buf_export_info {
            exp_name: exp_name.as_char_ptr(),
            owner: module.as_ptr(),
            ops: &Vtable::<T>::OPS,
            size,
            flags: fd_flags as i32,
            resv: core::ptr::null_mut(),
            priv_: raw.cast(),
        };
        // SAFETY: `info` is valid for the call; its ops and name are `'static`.
        let ptr = unsafe { bindings::dma_buf_export(&info) };
        match kernel::error::from_err_ptr(ptr) {
            // INVARIANT: A successful export returns a dma-buf with one reference, ours.
            Ok(ptr) => Ok(Self {
                ptr: NonNull::new(ptr).ok_or(EINVAL)?,
            }),
            Err(e) => {
                // SAFETY: The export failed, so nothing else refers to `raw`; reclaim it.
                drop(unsafe { KBox::from_raw(raw) });
                Err(e)
            }
        }
    }

    /// Hands the reference to the caller (the dma-heap core, which installs the fd).
    pub fn into_raw(self) -> *mut bindings::dma_buf {
        let ptr = self.ptr.as_ptr();
        core::mem::forget(self);
        ptr
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        // SAFETY: We hold one reference (type invariant).
        unsafe { bindings::dma_buf_put(self.ptr.as_ptr()) };
    }
}

struct Vtable<T: DmaBufOps>(PhantomData<T>);

impl<T: DmaBufOps> Vtable<T> {
    const OPS: bindings::dma_buf_ops = bindings::dma_buf_ops {
        attach: Some(Self::attach),
        detach: Some(Self::detach),
        map_dma_buf: Some(Self::map_dma_buf),
        unmap_dma_buf: Some(Self::unmap_dma_buf),
        release: Some(Self::release),
        begin_cpu_access: Some(Self::begin_cpu_access),
        end_cpu_access: Some(Self::end_cpu_access),
        mmap: Some(Self::mmap),
        vmap: Some(Self::vmap),
        vunmap: Some(Self::vunmap),
        // SAFETY: All-zero is a valid `dma_buf_ops` (every callback `None`).
        ..unsafe { core::mem::zeroed() }
    };

    /// # Safety
    ///
    /// `dmabuf` was exported by [`DmaBuf::export`] with a `T` and is not released yet.
    unsafe fn buffer<'a>(dmabuf: *mut bindings::dma_buf) -> &'a T {
        // SAFETY: By the caller, `priv` is the `T` `export` boxed, alive until `release`.
        unsafe { &*(*dmabuf).priv_.cast::<T>() }
    }

    unsafe extern "C" fn attach(
        dmabuf: *mut bindings::dma_buf,
        attachment: *mut bindings::dma_buf_attachment,
    ) -> i32 {
        // SAFETY: The dma-buf core calls `attach` on a live buffer of ours.
        let buffer = unsafe { Self::buffer(dmabuf) };
        // SAFETY: `attachment` is valid during the call.
        let dev = unsafe { (*attachment).dev };
        let Some(dev) = NonNull::new(dev) else {
            return EINVAL.to_errno();
        };
        // INVARIANT: The device stays valid while attached; the state holding it is dropped at
        // detach at the latest (the buffer's list removes it there).
        match buffer.attach(Device { ptr: dev }) {
            Ok(att) => {
                // SAFETY: `attachment` is valid; `priv` is ours to use until `detach`.
                unsafe { (*attachment).priv_ = Arc::into_raw(att).cast_mut().cast() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    unsafe extern "C" fn detach(
        dmabuf: *mut bindings::dma_buf,
        attachment: *mut bindings::dma_buf_attachment,
    ) {
        // SAFETY: The dma-buf core calls `detach` on a live buffer of ours.
        let buffer = unsafe { Self::buffer(dmabuf) };
        // SAFETY: `priv` holds the reference `attach` stored; detach is called once.
        let att = unsafe { Arc::from_raw((*attachment).priv_.cast::<T::Attachment>()) };
        buffer.detach(att);
    }

    /// # Safety
    ///
    /// `attachment` is a live attachment to a buffer of ours.
    unsafe fn attachment<'a>(
        attachment: *mut bindings::dma_buf_attachment,
    ) -> (&'a T, &'a T::Attachment) {
        // SAFETY: By the caller, the attachment and its dma-buf are live and `priv` holds the
        // state `attach` stored.
        unsafe {
            (
                Self::buffer((*attachment).dmabuf),
                &*(*attachment).priv_.cast::<T::Attachment>(),
            )
        }
    }

    unsafe extern "C" fn map_dma_buf(
        attachment: *mut bindings::dma_buf_attachment,
        dir: bindings::dma_data_direction,
    ) -> *mut bindings::sg_table {
        // SAFETY: The dma-buf core maps live attachments only.
        let (buffer, att) = unsafe { Self::attachment(attachment) };
        match buffer.map(att, Direction(dir)) {
            Ok(table) => table.as_raw(),
            Err(e) => e.to_ptr(),
        }
    }

    unsafe extern "C" fn unmap_dma_buf(
        attachment: *mut bindings::dma_buf_attachment,
        _table: *mut bindings::sg_table,
        dir: bindings::dma_data_direction,
    ) {
        // SAFETY: The dma-buf core unmaps live attachments only.
        let (buffer, att) = unsafe { Self::attachment(attachment) };
        buffer.unmap(att, Direction(dir));
    }

    unsafe extern "C" fn release(dmabuf: *mut bindings::dma_buf) {
        // SAFETY: `priv` is the box `export` leaked; the last reference is gone, so nothing else
        // uses it and it is reclaimed exactly once.
        drop(unsafe { KBox::from_raw((*dmabuf).priv_.cast::<T>()) });
    }

    unsafe extern "C" fn begin_cpu_access(
        dmabuf: *mut bindings::dma_buf,
        dir: bindings::dma_data_direction,
    ) -> i32 {
        // SAFETY: Called on a live buffer of ours.
        let buffer = unsafe { Self::buffer(dmabuf) };
        match buffer.begin_cpu_access(Direction(dir)) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    unsafe extern "C" fn end_cpu_access(
        dmabuf: *mut bindings::dma_buf,
        dir: bindings::dma_data_direction,
    ) -> i32 {
        // SAFETY: Called on a live buffer of ours.
        let buffer = unsafe { Self::buffer(dmabuf) };
        match buffer.end_cpu_access(Direction(dir)) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    unsafe extern "C" fn mmap(
        dmabuf: *mut bindings::dma_buf,
        vma: *mut bindings::vm_area_struct,
    ) -> i32 {
        // SAFETY: Called on a live buffer of ours.
        let buffer = unsafe { Self::buffer(dmabuf) };
        // SAFETY: `vma` is being set up by this mmap call, with the mmap lock held.
        let vma = unsafe { Vma::from_raw(vma) };
        match buffer.mmap(vma) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    unsafe extern "C" fn vmap(
        dmabuf: *mut bindings::dma_buf,
        map: *mut bindings::iosys_map,
    ) -> i32 {
        // SAFETY: Called on a live buffer of ours.
        let buffer = unsafe { Self::buffer(dmabuf) };
        match buffer.vmap() {
            Ok(addr) => {
                // SAFETY: `map` is valid for the call.
                unsafe { bindings::heapgen_iosys_map_set_vaddr(map, addr.0.as_ptr().cast()) };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    unsafe extern "C" fn vunmap(dmabuf: *mut bindings::dma_buf, map: *mut bindings::iosys_map) {
        // SAFETY: Called on a live buffer of ours.
        let buffer = unsafe { Self::buffer(dmabuf) };
        buffer.vunmap();
        // SAFETY: `map` is valid for the call; clearing it is what `iosys_map_clear` does for a
        // system-memory mapping.
        unsafe { *map = core::mem::zeroed() };
    }
}
