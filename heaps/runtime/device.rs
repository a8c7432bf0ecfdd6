// SPDX-License-Identifier: GPL-2.0

//! The module's own DMA device, used for CPU cache maintenance: the payload of write-combined and
//! protected buffers, the guard canaries of every guarded one.
//!
//! C header: [`include/linux/platform_device.h`](srctree/include/linux/platform_device.h)

use crate::{bindings, cma::CmaPages};
use core::ptr::NonNull;
use kernel::{page::PAGE_SIZE, prelude::*, sync::Arc};

/// A platform device registered by the module for the DMA API, unregistered when dropped.
///
/// Heaps hold it through an [`Arc`]: once a heap is registered the module is pinned and the
/// device lives for ever; when the module's init fails, the last reference goes with the
/// heaps' state and the device is unregistered, so that a failed load leaves nothing behind.
///
/// On a non-coherent architecture (arm64 without `dma-coherent`), mapping memory to this device
/// for `DMA_TO_DEVICE` cleans the CPU caches over it, which is what an uncached buffer needs
/// after being zeroed through the cached linear map. On coherent ones it costs nothing.
///
/// # Invariants
///
/// `ptr` is the `struct device` of a registered platform device with a 64-bit DMA mask, which
/// this value owns: it stays registered until this value is dropped.
pub struct DmaDevice {
    ptr: NonNull<bindings::device>,
}

// SAFETY: The device stays registered while this value exists and the DMA API may be called on
// it from any thread.
unsafe impl Send for DmaDevice {}
// SAFETY: See `Send`.
unsafe impl Sync for DmaDevice {}

impl DmaDevice {
    /// Registers the device `name.<n>`.
    pub fn create(name: &'static CStr) -> Result<Arc<Self>> {
        // SAFETY: `name` is a valid C string (the platform core copies it).
        let ptr = unsafe { bindings::heapgen_dma_device_create(name.as_char_ptr()) };
        // INVARIANT: A non-NULL result is registered, with its DMA mask set, and owned by the
        // new value (nothing else unregisters it).
        let dev = NonNull::new(ptr).map(|ptr| Self { ptr }).ok_or(ENODEV)?;
        Ok(Arc::new(dev, GFP_KERNEL)?)
    }

    /// Writes CPU caches back over pages `first..first + count` of `pages`.
    pub fn clean(&self, pages: &CmaPages, first: usize, count: usize) -> Result {
        let len = Self::range(pages, first, count)?;
        // SAFETY: The device is live (type invariant) and the range lies in `pages`.
        kernel::error::to_result(unsafe {
            bindings::heapgen_dma_clean_pages(self.ptr.as_ptr(), pages.page(first), len)
        })
    }

    /// Invalidates CPU caches over pages `first..first + count` of `pages`, so that the CPU
    /// reads what a device wrote there.
    pub fn invalidate(&self, pages: &CmaPages, first: usize, count: usize) -> Result {
        let len = Self::range(pages, first, count)?;
        // SAFETY: The device is live (type invariant) and the range lies in `pages`.
        kernel::error::to_result(unsafe {
            bindings::heapgen_dma_invalidate_pages(self.ptr.as_ptr(), pages.page(first), len)
        })
    }

    /// The length in bytes of pages `first..first + count`, checked to lie in `pages`.
    fn range(pages: &CmaPages, first: usize, count: usize) -> Result<usize> {
        let end = first.checked_add(count).ok_or(EINVAL)?;
        if count == 0 || end > pages.count() {
            return Err(EINVAL);
        }
        count.checked_mul(PAGE_SIZE).ok_or(EINVAL)
    }
}

impl Drop for DmaDevice {
    fn drop(&mut self) {
        // SAFETY: The device is registered and owned by this value (type invariant), which is
        // going away: it is unregistered exactly once, with no mapping left (every buffer, pool
        // and heap holding a reference is gone).
        unsafe { bindings::heapgen_dma_device_destroy(self.ptr.as_ptr()) };
    }
}

/// The cache maintenance a heap's buffers get, through the module's [`DmaDevice`] (there when
/// any heap needs some).
#[derive(Clone, Default)]
pub struct Maintenance {
    /// For write-combined and protected heaps: writes the zeroed payload back before the buffer
    /// is handed out.
    pub payload: Option<Arc<DmaDevice>>,
    /// For heaps with guards: writes the canaries back once written, and invalidates them
    /// before they are checked, so that on a non-coherent system a device that overran its
    /// buffer wrote over the canaries in memory and the check reads memory, not stale lines.
    pub guards: Option<Arc<DmaDevice>>,
}
