// SPDX-License-Identifier: GPL-2.0

//! dma-buf heap registration.
//!
//! C header: [`include/linux/dma-heap.h`](srctree/include/linux/dma-heap.h)

use crate::{bindings, dma_buf::DmaBuf};
use core::marker::PhantomData;
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

/// A heap's private data as the C shim sees it: the head through which it finds the heap's ops,
/// followed by the allocator.
///
/// # Invariants
///
/// `head.ops` points to `Vtable::<T>::OPS`.
#[repr(C)]
struct Registered<T: HeapOps> {
    /// First, as `heapgen_abi.h` requires of a heap's private data.
    head: bindings::heapgen_dma_heap_head,
    data: KBox<T>,
}

/// A registered heap: `/dev/dma_heap/<name>`.
///
/// dma-heaps cannot be unregistered, so a `Heap` has no `Drop`: the heap, its name and its
/// allocator live until the machine shuts down, and the module that registers one must pin itself.
///
/// # Invariants
///
/// `data` is the allocator of a heap registered by `dma_heap_add`, leaked with it.
pub struct Heap<T: HeapOps> {
    data: &'static T,
}

struct Vtable<T: HeapOps>(PhantomData<T>);

impl<T: HeapOps> Vtable<T> {
    const OPS: bindings::heapgen_dma_heap_ops = bindings::heapgen_dma_heap_ops {
        allocate: Some(Self::allocate),
    };

    /// # Safety
    ///
    /// Called by the C shim's `allocate` op with the head of a heap registered by
    /// [`Heap::register`] with a `T`.
    unsafe extern "C" fn allocate(
        heap: *mut bindings::heapgen_dma_heap_head,
        len: usize,
        fd_flags: u32,
        heap_flags: u64,
    ) -> *mut bindings::dma_buf {
        // SAFETY: By the caller, `heap` is the first field of a leaked `Registered<T>`
        // (`repr(C)`), so it points to the whole, which lives for ever.
        let data: &'static T = unsafe { &(*heap.cast::<Registered<T>>()).data };
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
        // INVARIANT: The head points to `T`'s ops table.
        let registered = KBox::new(
            Registered {
                head: bindings::heapgen_dma_heap_head {
                    ops: &Vtable::<T>::OPS,
                },
                data,
            },
            GFP_KERNEL,
        )?;
        let raw = KBox::into_raw(registered);
        // SAFETY: `raw` starts with its head (`repr(C)`, first field) and the name is `'static`;
        // both are leaked on success, as the dma-heap core keeps them.
        let ptr = unsafe { bindings::heapgen_dma_heap_add(name.as_char_ptr(), raw.cast()) };
        match kernel::error::from_err_ptr(ptr) {
            Ok(_) => {
                // SAFETY: `raw` is leaked for good: it lives, unmoved, until the machine stops.
                let data: &'static T = unsafe { &(*raw).data };
                // INVARIANT: Registered above, and leaked.
                Ok(Self { data })
            }
            Err(e) => {
                // SAFETY: The heap was not registered, so nothing else refers to `raw`.
                drop(unsafe { KBox::from_raw(raw) });
                Err(e)
            }
        }
    }

    /// The allocator behind the heap.
    pub fn data(&self) -> &'static T {
        self.data
    }
}

/// Pins this module so that it can never be unloaded: its heaps cannot be unregistered, so
/// unloading would leave them pointing at freed code. `rmmod` then fails with `EAGAIN`, by design.
pub fn pin_module() {
    // SAFETY: Takes a reference on this module, which is live while it runs.
    unsafe { bindings::heapgen_module_pin() };
}
