// SPDX-License-Identifier: GPL-2.0

//! dma-buf export, attachments, scatterlists and CPU mappings of exported buffers.
//!
//! C headers: [`include/linux/dma-buf.h`](srctree/include/linux/dma-buf.h),
//! [`include/linux/scatterlist.h`](srctree/include/linux/scatterlist.h),
//! [`include/linux/dma-mapping.h`](srctree/include/linux/dma-mapping.h)

use crate::{bindings, cma::CmaPages};
use core::{ffi::c_void, marker::PhantomData, ops::Deref, ptr::NonNull};
use kernel::{ffi::c_int, page::PAGE_SHIFT, prelude::*, sync::Arc};

/// dma-buf exporters import the `DMA_BUF` symbol namespace (`MODULE_IMPORT_NS`; `module!` has no
/// key for it on every kernel).
#[link_section = ".modinfo"]
#[used(compiler)]
static IMPORT_NS: [u8; 18] = *b"import_ns=DMA_BUF\0";

/// A DMA transfer direction (`enum dma_data_direction`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Direction(c_int);

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
/// `ptr` is a table made by `heapgen_sg_table_contiguous` over pages of a [`CmaPages`] range that
/// outlives it (the promise of [`SgTable::new_contiguous`]'s caller); it is freed exactly once,
/// on drop.
pub struct SgTable {
    ptr: NonNull<bindings::sg_table>,
}

// SAFETY: The table is memory owned by this value; the DMA API may use it from any thread.
unsafe impl Send for SgTable {}
// SAFETY: Mapping and unmapping through `&self` are serialised by the owning buffer's lock
// (the dma-buf core's reservation lock orders them per attachment), and the syncs, which hold
// that lock too, only use a table while it is mapped.
unsafe impl Sync for SgTable {}

impl SgTable {
    /// Builds a table over bytes `offset..offset + len` of `pages` (both page-aligned), in
    /// segments `dev` can take (its maximum segment size and segment boundary).
    ///
    /// # Safety
    ///
    /// `pages` outlives the returned table (it points at their `struct page`s).
    pub unsafe fn new_contiguous(
        dev: Device,
        pages: &CmaPages,
        offset: usize,
        len: usize,
    ) -> Result<Self> {
        let page_size = 1usize << PAGE_SHIFT;
        if len == 0 || offset % page_size != 0 || len % page_size != 0 {
            return Err(EINVAL);
        }
        if offset.checked_add(len).ok_or(EINVAL)? > pages.count() << PAGE_SHIFT {
            return Err(EINVAL);
        }
        // SAFETY: The first page is inside `pages` and the `len` bytes from it too (checked
        // above), all of them owned by `pages`; `dev` is a live device (its invariant).
        let ptr = unsafe {
            bindings::heapgen_sg_table_contiguous(
                dev.ptr.as_ptr(),
                pages.page(offset >> PAGE_SHIFT),
                len,
            )
        };
        // INVARIANT: A non-NULL result is a filled table over those pages.
        NonNull::new(ptr).map(|ptr| Self { ptr }).ok_or(ENOMEM)
    }

    /// The raw table, for handing to importers.
    fn as_raw(&self) -> *mut bindings::sg_table {
        self.ptr.as_ptr()
    }

    /// Maps the table for DMA by `dev`; `skip_cpu_sync` for write-combined buffers.
    fn map(&self, dev: Device, dir: Direction, skip_cpu_sync: bool) -> Result {
        // SAFETY: `dev` is a live device (its invariant) and the table is valid.
        kernel::error::to_result(unsafe {
            bindings::heapgen_dma_map_sgtable(dev.ptr.as_ptr(), self.as_raw(), dir.0, skip_cpu_sync)
        })
    }

    /// Undoes [`SgTable::map`] with the same arguments.
    fn unmap(&self, dev: Device, dir: Direction, skip_cpu_sync: bool) {
        // SAFETY: Only `AttachedTable` calls this, on a table it mapped for `dev` with these
        // arguments (its invariant).
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
    fn sync_for_cpu(&self, dev: Device, dir: Direction) {
        // SAFETY: Only `AttachedTable` calls this, on a table it has mapped for `dev` (its
        // invariant).
        unsafe {
            bindings::heapgen_dma_sync_sgtable_for_cpu(dev.ptr.as_ptr(), self.as_raw(), dir.0)
        };
    }

    /// Makes CPU writes visible to the device (`dma_sync_sgtable_for_device`).
    fn sync_for_device(&self, dev: Device, dir: Direction) {
        // SAFETY: As in `sync_for_cpu`.
        unsafe {
            bindings::heapgen_dma_sync_sgtable_for_device(dev.ptr.as_ptr(), self.as_raw(), dir.0)
        };
    }
}

impl Drop for SgTable {
    fn drop(&mut self) {
        // SAFETY: The table came from `heapgen_sg_table_contiguous` and is freed only here.
        unsafe { bindings::heapgen_sg_table_free(self.ptr.as_ptr()) };
    }
}

/// The table an importer attached with, and its DMA mapping while the importer has it mapped:
/// the mapping is tracked by the type, undone with the direction it was made with, and undone
/// on drop if the importer never did (a detach without unmap).
///
/// # Invariants
///
/// `mapped` is `Some((dir, skip_cpu_sync))` exactly while `table` is DMA-mapped for `dev`,
/// made with those arguments.
pub struct AttachedTable {
    dev: Device,
    table: SgTable,
    mapped: Option<(Direction, bool)>,
}

/// A table mapped for DMA, as handed to the dma-buf core: valid until the importer unmaps it.
#[derive(Clone, Copy)]
pub struct MappedTable(NonNull<bindings::sg_table>);

impl AttachedTable {
    /// The table `table` built for the importer's device `dev`, not mapped.
    pub fn new(dev: Device, table: SgTable) -> Self {
        // INVARIANT: Nothing is mapped yet.
        Self {
            dev,
            table,
            mapped: None,
        }
    }

    /// Maps the table for DMA; `skip_cpu_sync` for write-combined buffers. `EBUSY` when it is
    /// mapped already.
    pub fn map(&mut self, dir: Direction, skip_cpu_sync: bool) -> Result<MappedTable> {
        if self.mapped.is_some() {
            return Err(EBUSY);
        }
        self.table.map(self.dev, dir, skip_cpu_sync)?;
        // INVARIANT: Just mapped with these arguments.
        self.mapped = Some((dir, skip_cpu_sync));
        Ok(MappedTable(self.table.ptr))
    }

    /// Undoes [`AttachedTable::map`], if the table is mapped.
    pub fn unmap(&mut self) {
        if let Some((dir, skip_cpu_sync)) = self.mapped.take() {
            // INVARIANT: No longer mapped once this returns.
            self.table.unmap(self.dev, dir, skip_cpu_sync);
        }
    }

    /// Makes device writes visible to the CPU (`dma_sync_sgtable_for_cpu`), if mapped. The
    /// DMA API wants the direction the table was mapped with, whatever the CPU is about to do.
    pub fn sync_for_cpu(&self) {
        if let Some((dir, _)) = self.mapped {
            self.table.sync_for_cpu(self.dev, dir);
        }
    }

    /// Makes CPU writes visible to the device (`dma_sync_sgtable_for_device`), if mapped, in
    /// the direction the table was mapped with.
    pub fn sync_for_device(&self) {
        if let Some((dir, _)) = self.mapped {
            self.table.sync_for_device(self.dev, dir);
        }
    }
}

impl Drop for AttachedTable {
    fn drop(&mut self) {
        self.unmap();
    }
}

/// A userspace mapping being set up by `mmap` on a dma-buf.
///
/// # Invariants
///
/// Wraps a `vm_area_struct` that is being set up by an `mmap` callback, with the mmap lock held.
pub struct Vma {
    ptr: NonNull<bindings::vm_area_struct>,
}

impl Vma {
    /// # Safety
    ///
    /// `ptr` is a VMA being set up in an `mmap` callback, valid while the returned value is used
    /// (the callback's duration).
    unsafe fn from_raw(ptr: NonNull<bindings::vm_area_struct>) -> Self {
        // INVARIANT: By the caller.
        Self { ptr }
    }

    /// Whether the mapping is shared (`VM_SHARED` or `VM_MAYSHARE`); private ones are refused.
    pub fn is_shared(&self) -> bool {
        // SAFETY: The VMA is valid (type invariant).
        unsafe { bindings::heapgen_vma_is_shared(self.ptr.as_ptr()) }
    }

    /// The mapping's offset into the buffer, in pages.
    pub fn pgoff(&self) -> usize {
        // SAFETY: The VMA is valid (type invariant).
        unsafe { bindings::heapgen_vma_pgoff(self.ptr.as_ptr()) }
    }

    /// The mapping's length, in pages.
    pub fn pages(&self) -> usize {
        // SAFETY: The VMA is valid (type invariant).
        unsafe { bindings::heapgen_vma_pages(self.ptr.as_ptr()) }
    }

    /// Makes the mapping write-combined (for uncached buffers).
    pub fn set_writecombine(&self) {
        // SAFETY: The VMA is being set up, so its protection may still change.
        unsafe { bindings::heapgen_vma_set_writecombine(self.ptr.as_ptr()) };
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
            bindings::heapgen_vma_remap_pfn(self.ptr.as_ptr(), pages.pfn() + first)
        })
    }
}

/// A kernel virtual address of a whole buffer (`vmap`), as handed to the dma-buf core. Cache
/// maintenance goes through the [`KernelMapping`] it came from, which knows the length.
#[derive(Clone, Copy)]
pub struct VAddr(NonNull<u8>);

// SAFETY: A kernel virtual address is valid on every CPU.
unsafe impl Send for VAddr {}
// SAFETY: See `Send`.
unsafe impl Sync for VAddr {}

/// How a [`KernelMapping`] maps its pages.
enum MappingKind {
    /// Part of the kernel's linear map.
    Linear,
    /// A vmalloc-space alias made by `vmap`.
    Vmap,
}

/// The kernel's mapping of a buffer: the linear map when the pages have one and the mapping is
/// cached (no page array, no vmap), else a `vmap` alias.
///
/// # Invariants
///
/// `addr` maps `len` bytes, alive as long as this value: a `Vmap` address came from `vmap` and
/// is unmapped exactly once, when this value is dropped; a `Linear` address is inside the
/// linear map of pages that outlive this value (the caller of [`KernelMapping::new`] promised).
pub struct KernelMapping {
    addr: VAddr,
    len: usize,
    kind: MappingKind,
}

impl KernelMapping {
    /// Maps pages `first..first + count` of `pages`, write-combined if asked.
    ///
    /// # Safety
    ///
    /// `pages` outlives the returned mapping (a linear mapping is only an address inside them).
    pub unsafe fn new(
        pages: &CmaPages,
        first: usize,
        count: usize,
        writecombine: bool,
    ) -> Result<Self> {
        let end = first.checked_add(count).ok_or(EINVAL)?;
        if count == 0 || end > pages.count() {
            return Err(EINVAL);
        }
        let len = count.checked_mul(1usize << PAGE_SHIFT).ok_or(EINVAL)?;
        if !writecombine {
            if let Some(base) = pages.linear_addr() {
                // SAFETY: `first < count` pages into a linearly mapped range stays inside it.
                let addr = unsafe { base.add(first << PAGE_SHIFT) };
                // INVARIANT: `len` bytes of the linear map of `pages`, which outlive `self`
                // (the caller's promise).
                return Ok(Self {
                    addr: VAddr(addr),
                    len,
                    kind: MappingKind::Linear,
                });
            }
        }
        let mut array = KVVec::with_capacity(count, GFP_KERNEL)?;
        for index in first..end {
            array.push(pages.page(index), GFP_KERNEL)?;
        }
        let count = u32::try_from(count).map_err(|_| EINVAL)?;
        // SAFETY: `array` holds `count` valid pages; `vmap` does not keep the array.
        let addr = unsafe { bindings::heapgen_vmap_pages(array.as_mut_ptr(), count, writecombine) };
        // INVARIANT: The address came from `vmap`, over `count` pages.
        NonNull::new(addr.cast())
            .map(|a| Self {
                addr: VAddr(a),
                len,
                kind: MappingKind::Vmap,
            })
            .ok_or(ENOMEM)
    }

    /// The mapping's address.
    pub fn addr(&self) -> VAddr {
        self.addr
    }

    /// Invalidates CPU caches of the whole mapping before the CPU reads
    /// (`invalidate_kernel_vmap_range`).
    pub fn invalidate(&self) {
        let len = i32::try_from(self.len).unwrap_or(i32::MAX);
        // SAFETY: The mapping is live and at least `len` bytes long (type invariant).
        unsafe { bindings::heapgen_invalidate_kernel_vmap_range(self.addr.0.as_ptr().cast(), len) };
    }

    /// Writes back CPU caches of the whole mapping after CPU writes (`flush_kernel_vmap_range`).
    pub fn flush(&self) {
        let len = i32::try_from(self.len).unwrap_or(i32::MAX);
        // SAFETY: The mapping is live and at least `len` bytes long (type invariant).
        unsafe { bindings::heapgen_flush_kernel_vmap_range(self.addr.0.as_ptr().cast(), len) };
    }
}

impl Drop for KernelMapping {
    fn drop(&mut self) {
        if let MappingKind::Vmap = self.kind {
            // SAFETY: The address came from `vmap` and is unmapped only here, once (type
            // invariant).
            unsafe { bindings::heapgen_vunmap(self.addr.0.as_ptr().cast()) };
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
    fn map(&self, att: &Self::Attachment, dir: Direction) -> Result<MappedTable>;
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
    /// The dma-buf is released (its last reference dropped); the buffer is dropped next. Not
    /// called for a buffer whose export failed, which is only dropped.
    fn released(&self) {}
}

/// A buffer ready to be exported: the head through which the C shim finds the buffer's ops,
/// followed by the buffer.
///
/// # Invariants
///
/// `head.ops` points to `Vtable::<T>::OPS` or `Vtable::<T>::OPS_NO_VMAP`.
#[pin_data]
#[repr(C)]
pub struct Exportable<T: DmaBufOps> {
    /// First, as `heapgen_abi.h` requires of an exported buffer's private data.
    head: bindings::heapgen_dma_buf_head,
    #[pin]
    buffer: T,
}

impl<T: DmaBufOps> Exportable<T> {
    /// Allocates the buffer `init` initialises, ready to be exported.
    pub fn new(init: impl PinInit<T, Error>) -> Result<Pin<KBox<Self>>> {
        KBox::pin_init(
            // INVARIANT: The head points to `T`'s ops table.
            try_pin_init!(Self {
                head: bindings::heapgen_dma_buf_head {
                    ops: &Vtable::<T>::OPS,
                },
                buffer <- init,
            }),
            GFP_KERNEL,
        )
    }
}

impl<T: DmaBufOps> Deref for Exportable<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.buffer
    }
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
    /// Exports `buffer` as a dma-buf of `size` bytes opened with `fd_flags`, named after
    /// `exp_name` in `/sys/kernel/debug/dma_buf/bufinfo`. Without `kernel_map`, the dma-buf has
    /// no `vmap` operation: importers cannot map it into the kernel (`dma_buf_vmap` fails with
    /// `EINVAL`, without the warning a failing `vmap` operation gives).
    ///
    /// On failure `buffer` is dropped. On success the dma-buf owns it and drops it on release.
    pub fn export<T: DmaBufOps>(
        buffer: Pin<KBox<Exportable<T>>>,
        exp_name: &'static CStr,
        size: usize,
        fd_flags: u32,
        kernel_map: bool,
    ) -> Result<Self> {
        let flags = c_int::try_from(fd_flags).map_err(|_| EINVAL)?;
        // SAFETY: The buffer is only ever accessed through shared references and is turned back
        // into a box in `release`, so it is never moved.
        let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(buffer) });
        if !kernel_map {
            // SAFETY: `raw` is a live, exclusively owned `Exportable<T>`; its head is not
            // structurally pinned. INVARIANT: the head points to one of `T`'s tables.
            unsafe { (*raw).head.ops = &Vtable::<T>::OPS_NO_VMAP };
        }
        // SAFETY: `raw` starts with its head (`repr(C)`, first field), whose ops are `T`'s and
        // `'static`, as is the name; the shim keeps `raw` as the dma-buf's private data.
        let ptr = unsafe {
            bindings::heapgen_dma_buf_export(raw.cast(), exp_name.as_char_ptr(), size, flags)
        };
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
        unsafe { bindings::heapgen_dma_buf_put(self.ptr.as_ptr()) };
    }
}

/// Maps a result to the C convention: 0 or a negative errno.
fn to_errno(result: Result) -> c_int {
    match result {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

struct Vtable<T: DmaBufOps>(PhantomData<T>);

impl<T: DmaBufOps> Vtable<T> {
    const OPS: bindings::heapgen_dma_buf_ops = bindings::heapgen_dma_buf_ops {
        attach: Some(Self::attach),
        detach: Some(Self::detach),
        map: Some(Self::map),
        unmap: Some(Self::unmap),
        begin_cpu_access: Some(Self::begin_cpu_access),
        end_cpu_access: Some(Self::end_cpu_access),
        mmap: Some(Self::mmap),
        vmap: Some(Self::vmap),
        vunmap: Some(Self::vunmap),
        release: Some(Self::release),
    };

    /// [`Self::OPS`] without kernel mappings: the C shim then exports the dma-buf with no
    /// `vmap` operation.
    const OPS_NO_VMAP: bindings::heapgen_dma_buf_ops = bindings::heapgen_dma_buf_ops {
        vmap: None,
        vunmap: None,
        ..Self::OPS
    };

    /// # Safety
    ///
    /// `buf` is the head of an [`Exportable<T>`] exported by [`DmaBuf::export`] and not released
    /// yet, valid for `'a`.
    unsafe fn buffer<'a>(buf: *mut bindings::heapgen_dma_buf_head) -> &'a T {
        // SAFETY: By the caller, `buf` is the first field of a live `Exportable<T>` (`repr(C)`),
        // so it points to the whole.
        unsafe { &(*buf.cast::<Exportable<T>>()).buffer }
    }

    /// # Safety
    ///
    /// `attach_priv` is the state [`Self::attach`] stored for a live attachment, valid for `'a`.
    unsafe fn attachment<'a>(attach_priv: *mut c_void) -> &'a T::Attachment {
        // SAFETY: By the caller: `attach` stored an `Arc<T::Attachment>` there, released only
        // in `detach`.
        unsafe { &*attach_priv.cast::<T::Attachment>() }
    }

    /// # Safety
    ///
    /// Called by the C shim's `attach` op on a live buffer of ours, with `dev` the importer's
    /// device and `attach_priv` the attachment's private pointer.
    unsafe extern "C" fn attach(
        buf: *mut bindings::heapgen_dma_buf_head,
        dev: *mut bindings::device,
        attach_priv: *mut *mut c_void,
    ) -> c_int {
        // SAFETY: The dma-buf core calls `attach` on a live buffer of ours.
        let buffer = unsafe { Self::buffer(buf) };
        let Some(dev) = NonNull::new(dev) else {
            return EINVAL.to_errno();
        };
        // INVARIANT: The device stays valid while attached; the state holding it is dropped at
        // detach at the latest (the buffer's list removes it there).
        match buffer.attach(Device { ptr: dev }) {
            Ok(att) => {
                // SAFETY: `attach_priv` is the attachment's private pointer, ours until
                // `detach`.
                unsafe { *attach_priv = Arc::into_raw(att).cast_mut().cast() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called once per successful [`Self::attach`], with the state it stored.
    unsafe extern "C" fn detach(
        buf: *mut bindings::heapgen_dma_buf_head,
        attach_priv: *mut c_void,
    ) {
        // SAFETY: The dma-buf core calls `detach` on a live buffer of ours.
        let buffer = unsafe { Self::buffer(buf) };
        // SAFETY: `attach_priv` holds the reference `attach` stored; detach is called once.
        let att = unsafe { Arc::from_raw(attach_priv.cast::<T::Attachment>()) };
        buffer.detach(att);
    }

    /// # Safety
    ///
    /// Called on a live attachment of a live buffer of ours.
    unsafe extern "C" fn map(
        buf: *mut bindings::heapgen_dma_buf_head,
        attach_priv: *mut c_void,
        dir: c_int,
    ) -> *mut bindings::sg_table {
        // SAFETY: The dma-buf core maps live attachments of live buffers only.
        let (buffer, att) = unsafe { (Self::buffer(buf), Self::attachment(attach_priv)) };
        match buffer.map(att, Direction(dir)) {
            Ok(table) => table.0.as_ptr(),
            Err(e) => e.to_ptr(),
        }
    }

    /// # Safety
    ///
    /// Called on a live attachment of a live buffer of ours.
    unsafe extern "C" fn unmap(
        buf: *mut bindings::heapgen_dma_buf_head,
        attach_priv: *mut c_void,
        dir: c_int,
    ) {
        // SAFETY: The dma-buf core unmaps live attachments of live buffers only.
        let (buffer, att) = unsafe { (Self::buffer(buf), Self::attachment(attach_priv)) };
        buffer.unmap(att, Direction(dir));
    }

    /// # Safety
    ///
    /// Called once, when the last reference to the buffer is gone.
    unsafe extern "C" fn release(buf: *mut bindings::heapgen_dma_buf_head) {
        // SAFETY: `buf` is the box `export` leaked; the last reference is gone, so nothing else
        // uses it and it is reclaimed exactly once.
        let exportable = unsafe { KBox::from_raw(buf.cast::<Exportable<T>>()) };
        exportable.buffer.released();
        drop(exportable);
    }

    /// # Safety
    ///
    /// Called on a live buffer of ours.
    unsafe extern "C" fn begin_cpu_access(
        buf: *mut bindings::heapgen_dma_buf_head,
        dir: c_int,
    ) -> c_int {
        // SAFETY: Called on a live buffer of ours.
        let buffer = unsafe { Self::buffer(buf) };
        to_errno(buffer.begin_cpu_access(Direction(dir)))
    }

    /// # Safety
    ///
    /// Called on a live buffer of ours.
    unsafe extern "C" fn end_cpu_access(
        buf: *mut bindings::heapgen_dma_buf_head,
        dir: c_int,
    ) -> c_int {
        // SAFETY: Called on a live buffer of ours.
        let buffer = unsafe { Self::buffer(buf) };
        to_errno(buffer.end_cpu_access(Direction(dir)))
    }

    /// # Safety
    ///
    /// Called on a live buffer of ours, with `vma` being set up by this mmap call.
    unsafe extern "C" fn mmap(
        buf: *mut bindings::heapgen_dma_buf_head,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: Called on a live buffer of ours.
        let buffer = unsafe { Self::buffer(buf) };
        let Some(vma) = NonNull::new(vma) else {
            return EINVAL.to_errno();
        };
        // SAFETY: `vma` is being set up by this mmap call, with the mmap lock held, for the
        // duration of the call.
        let vma = unsafe { Vma::from_raw(vma) };
        to_errno(buffer.mmap(&vma))
    }

    /// # Safety
    ///
    /// Called on a live buffer of ours.
    unsafe extern "C" fn vmap(buf: *mut bindings::heapgen_dma_buf_head) -> *mut c_void {
        // SAFETY: Called on a live buffer of ours.
        let buffer = unsafe { Self::buffer(buf) };
        match buffer.vmap() {
            Ok(addr) => addr.0.as_ptr().cast(),
            Err(e) => e.to_ptr(),
        }
    }

    /// # Safety
    ///
    /// Called on a live buffer of ours, once per successful [`Self::vmap`].
    unsafe extern "C" fn vunmap(buf: *mut bindings::heapgen_dma_buf_head) {
        // SAFETY: Called on a live buffer of ours.
        let buffer = unsafe { Self::buffer(buf) };
        buffer.vunmap();
    }
}
