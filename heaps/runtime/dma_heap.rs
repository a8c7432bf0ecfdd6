// SPDX-License-Identifier: GPL-2.0

//! dma-buf heap registration.
//!
//! C header: [`include/linux/dma-heap.h`](srctree/include/linux/dma-heap.h)

use crate::{bindings, dma_buf::DmaBuf};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::prelude::*;

/// dma-heap exporters import the `DMA_BUF_HEAP` symbol namespace (Linux 7.x; Android's 6.12
/// exports the heap functions without one, and an unneeded import is harmless).
#[link_section = ".modinfo"]
#[used(compiler)]
static IMPORT_NS: [u8; 23] = *b"import_ns=DMA_BUF_HEAP\0";

/// The allocator behind a heap.
pub trait HeapOps: Send + Sync + Sized + 'static {
    /// Allocates a buffer of at least `len` bytes and exports it as a dma-buf with the
    /// userspace-requested `fd_flags` (`O_RDWR`, `O_CLOEXEC`).
    fn allocate(&'static self, len: usize, fd_flags: u32, heap_flags: u64) -> Result<DmaBuf>;
}

/// A registered heap: `/dev/dma_heap/<name>`.
///
/// dma-heaps cannot be unregistered, so a `Heap` has no `Drop`: the heap, its name and its
/// allocator live until the machine shuts down, and the module that registers one must pin itself.
///
/// # Invariants
///
/// `ptr` is a heap returned by `dma_heap_add` whose drvdata is a `&'static T`.
pub struct Heap<T: HeapOps> {
    ptr: NonNull<bindings::dma_heap>,
    _data: PhantomData<&'static T>,
}

// SAFETY: A registered heap is never freed and its C API is thread-safe.
unsafe impl<T: HeapOps> Send for Heap<T> {}
// SAFETY: See `Send`.
unsafe impl<T: HeapOps> Sync for Heap<T> {}

struct Vtable<T: HeapOps>(PhantomData<T>);

impl<T: HeapOps> Vtable<T> {
    const OPS: bindings::dma_heap_ops = bindings::dma_heap_ops {
        allocate: Some(Self::allocate),
    };

    /// # Safety
    ///
    /// Called by the dma-heap core on a heap registered by [`Heap::register`] with a `T`.
    unsafe extern "C" fn allocate(
        heap: *mut bindings::dma_heap,
        len: usize,
        fd_flags: u32,
        heap_flags: u64,
    ) -> *mut bindings::dma_buf {
        // SAFETY: `heap` is a live heap registered by `Heap::register::<T>`.
        let data = unsafe { bindings::dma_heap_get_drvdata(heap) };
        // SAFETY: Its drvdata is the `&'static T` passed to `Heap::register`.
        let data = unsafe { &*data.cast::<T>() };
        match data.allocate(len, fd_flags, heap_flags) {
            Ok(buf) => buf.into_raw(),
            Err(e) => e.to_ptr(),
        }
    }
}

impl<T: HeapOps> Heap<T> {
    /// Registers a heap named `name` served by `data`.
    ///
    /// On success `data` is leaked: the dma-heap core keeps it, and the name, for ever. On failure
    /// `data` is dropped.
    pub fn register(name: &'static CStr, data: KBox<T>) -> Result<Self> {
        let data = KBox::into_raw(data);
        let info = bindings::dma_heap_export_info {
            name: name.as_char_ptr(),
            ops: &Vtable::<T>::OPS,
            priv_: data.cast(),
        };
        // SAFETY: `info` is valid for the call; the name and ops are `'static` and the private
        // data is leaked on success, as the dma-heap core requires.
        let ptr = unsafe { bindings::dma_heap_add(&info) };
        match kernel::error::from_err_ptr(ptr) {
            // INVARIANT: `dma_heap_add` succeeded with `data` as drvdata.
            Ok(ptr) => Ok(Self {
                ptr: NonNull::new(ptr).ok_or(EINVAL)?,
                _data: PhantomData,
            }),
            Err(e) => {
                // SAFETY: The heap was not registered, so nothing else refers to `data`.
                drop(unsafe { KBox::from_raw(data) });
                Err(e)
            }
        }
    }

    /// The allocator behind the heap.
    pub fn data(&self) -> &'static T {
        // SAFETY: `ptr` is a live heap (type invariant).
        let data = unsafe { bindings::dma_heap_get_drvdata(self.ptr.as_ptr()) };
        // SAFETY: Its drvdata is the leaked `T` (type invariant).
        unsafe { &*data.cast::<T>() }
    }

    /// The heap's name, as the dma-heap core records it.
    pub fn name(&self) -> &'static CStr {
        // SAFETY: `ptr` is a live heap (type invariant).
        let name = unsafe { bindings::dma_heap_get_name(self.ptr.as_ptr()) };
        // SAFETY: The name is the `'static` string passed to `register`.
        unsafe { CStr::from_char_ptr(name) }
    }
}

/// Pins `module` so that it can never be unloaded: its heaps cannot be unregistered, so unloading
/// would leave them pointing at freed code. `rmmod` then fails with `EAGAIN`, by design.
pub fn pin_module(module: &'static ThisModule) {
    // SAFETY: `module` is this module, which is live while its init runs.
    unsafe { bindings::__module_get(module.as_ptr()) };
}
