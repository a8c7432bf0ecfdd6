// SPDX-License-Identifier: GPL-2.0

//! Contiguous Memory Allocator areas and the page ranges allocated from them.
//!
//! C header: [`include/linux/cma.h`](srctree/include/linux/cma.h)

use crate::bindings;
use core::ptr::NonNull;
use kernel::{page::PAGE_SHIFT, prelude::*};

/// The largest number of areas looked at when searching by name (`CONFIG_CMA_AREAS` is far lower).
const MAX_AREAS: u32 = 64;

/// Lowmem buffers are zeroed in chunks of this many bytes (4 MiB), checking for a fatal signal
/// and rescheduling between chunks, so that a killed task stops zeroing a large buffer early and
/// a large buffer does not hog the CPU on a non-preemptible kernel.
const ZERO_CHUNK_BYTES: usize = 4 << 20;

/// Whether the current task has a fatal signal pending.
fn fatal_signal_pending() -> bool {
    // SAFETY: Reads the current task's signal state; always allowed in process context.
    unsafe { bindings::heapgen_fatal_signal_pending() }
}

/// Yields the CPU if a reschedule is due (`cond_resched`).
fn cond_resched() {
    // SAFETY: Called in process context without spinlocks held (allocation and release paths).
    unsafe { bindings::heapgen_cond_resched() }
}

/// A CMA area of the running kernel.
///
/// # Invariants
///
/// `ptr` points to a `struct cma` registered at boot; CMA areas are never freed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cma {
    ptr: NonNull<bindings::cma>,
}

// SAFETY: A `struct cma` lives for the whole uptime and `cma_alloc`/`cma_release` take its own lock,
// so the handle may be used from any thread.
unsafe impl Send for Cma {}
// SAFETY: See `Send`; shared references only call thread-safe CMA functions.
unsafe impl Sync for Cma {}

impl Cma {
    /// Returns the area at `idx` in the kernel's list of CMA areas, if there is one (the C shim
    /// picks the kernel's way of listing them).
    fn by_idx(idx: u32) -> Option<Self> {
        // SAFETY: Any index is allowed; out-of-range indices return NULL.
        let ptr = unsafe { bindings::heapgen_cma_area(idx) };
        // INVARIANT: A non-NULL result is a registered area.
        NonNull::new(ptr).map(|ptr| Self { ptr })
    }

    /// Every CMA area the module can see, in the kernel's order.
    pub fn areas() -> impl Iterator<Item = Cma> {
        (0..MAX_AREAS).map_while(Self::by_idx)
    }

    /// Finds an area by its kernel name (`reserved` for `cma=`, else the device-tree node name).
    pub fn find(name: &CStr) -> Option<Self> {
        // By content: the kernel crate's `CStr` has no `==` on every kernel.
        let name = name.to_str().ok()?;
        Self::areas().find(|area| area.name().to_str() == Ok(name))
    }

    /// The area's name, as in `/sys/kernel/mm/cma/`.
    pub fn name(&self) -> &'static CStr {
        // SAFETY: `self.ptr` is a live area (type invariant).
        let name = unsafe { bindings::heapgen_cma_name(self.ptr.as_ptr()) };
        // SAFETY: `cma_get_name` returns the area's NUL-terminated name, which lives as long as the
        // area, that is, for ever.
        unsafe { CStr::from_char_ptr(name) }
    }

    /// Allocates `count` contiguous pages aligned to `PAGE_SIZE << align_order`, quietly.
    pub fn alloc(&self, count: usize, align_order: u32) -> Option<CmaPages> {
        // SAFETY: `self.ptr` is a live area; the shim allocates quietly (`no_warn`).
        let first = unsafe { bindings::heapgen_cma_alloc(self.ptr.as_ptr(), count, align_order) };
        // INVARIANT: A non-NULL result is `count` pages allocated from this area.
        NonNull::new(first).map(|first| CmaPages {
            cma: *self,
            first,
            count,
        })
    }
}

/// Physically contiguous pages allocated from a CMA area, released when dropped.
///
/// # Invariants
///
/// Unless `count` is 0 (an empty value left behind by [`CmaPages::take`], which owns nothing),
/// `first` is the first of `count` contiguous pages allocated from `cma` by `cma_alloc` and not
/// yet released; nothing else owns them.
pub struct CmaPages {
    cma: Cma,
    first: NonNull<bindings::page>,
    count: usize,
}

// SAFETY: The pages are owned by this value alone; the page structs may be used from any thread.
unsafe impl Send for CmaPages {}
// SAFETY: Shared references only read the page range's description.
unsafe impl Sync for CmaPages {}

impl CmaPages {
    /// Moves the range out, leaving an empty value behind (whose drop releases nothing). Used to
    /// keep a buffer's pages past the buffer's end, e.g. in a quarantine.
    pub fn take(&mut self) -> Self {
        let taken = Self {
            cma: self.cma,
            first: self.first,
            count: self.count,
        };
        // INVARIANT: The range now belongs to `taken`; `self` owns nothing.
        self.count = 0;
        taken
    }

    /// Splits the range at page `at` (at most [`CmaPages::count`]): `self` keeps pages `..at`,
    /// the returned value owns pages `at..`. Either part may be empty, and then owns nothing.
    ///
    /// Each part is released on its own: `cma_release` frees the run of pages it is given page
    /// by page and clears the area's bitmap for exactly that run, which is every page of a range
    /// `cma_alloc` handed out when the area has one bitmap bit per page, as the areas of
    /// `reserved-memory` nodes and of `cma=` have (only hugetlb's areas have more).
    pub fn split_off(&mut self, at: usize) -> Self {
        let at = at.min(self.count);
        let rest = self.count - at;
        let first = if rest == 0 {
            self.first
        } else {
            // `page` returns the page struct of a page inside the range: never NULL.
            NonNull::new(self.page(at)).unwrap_or(self.first)
        };
        // INVARIANT: `self` keeps the first `at` pages and the new value the `rest` after them:
        // two disjoint runs of the range `cma_alloc` handed out, each owned by one value.
        self.count = at;
        Self {
            cma: self.cma,
            first,
            count: rest,
        }
    }

    /// Number of pages.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Page frame number of the first page.
    pub fn pfn(&self) -> usize {
        // SAFETY: `first` is a valid page (type invariant).
        unsafe { bindings::heapgen_page_to_pfn(self.first.as_ptr()) }
    }

    /// The `struct page` of page `index`, for the scatterlist, vmap and device wrappers.
    ///
    /// # Panics
    ///
    /// If `index` is not below [`CmaPages::count`].
    pub(crate) fn page(&self, index: usize) -> *mut bindings::page {
        assert!(index < self.count, "page index out of the range");
        // SAFETY: `pfn() + index` is inside the allocated range, so it has a valid page struct.
        unsafe { bindings::heapgen_pfn_to_page(self.pfn() + index) }
    }

    /// The kernel's linear mapping of the whole range, or `None` for highmem (a CMA range never
    /// straddles the highmem boundary, so its first page decides).
    pub fn linear_addr(&self) -> Option<NonNull<u8>> {
        // SAFETY: `first` is a valid page; the shim returns NULL for highmem.
        NonNull::new(unsafe { bindings::heapgen_page_address(self.first.as_ptr()) }.cast())
    }

    /// Zeroes pages `start..start + count` with the kernel's `clear_pages`/`clear_highpage`, as
    /// upstream's CMA heap does. Stops early with `EINTR` when the task gets a fatal signal
    /// (checked every page for highmem, every [`ZERO_CHUNK_BYTES`] for lowmem).
    pub fn zero(&self, start: usize, count: usize) -> Result {
        let end = start.checked_add(count).ok_or(EINVAL)?;
        if end > self.count {
            return Err(EINVAL);
        }
        if let Some(base) = self.linear_addr() {
            let chunk_pages = (ZERO_CHUNK_BYTES >> PAGE_SHIFT).max(1);
            let mut index = start;
            while index < end {
                let chunk = core::cmp::min(end - index, chunk_pages);
                // SAFETY: `base + index * PAGE_SIZE` is inside the owned, linearly mapped range.
                let addr = unsafe { base.as_ptr().add(index << PAGE_SHIFT) };
                let chunk_count = u32::try_from(chunk).map_err(|_| EINVAL)?;
                // SAFETY: The `chunk` pages at `addr` are owned by `self` and mapped.
                unsafe { bindings::heapgen_clear_pages(addr.cast(), chunk_count) };
                index += chunk;
                if index < end {
                    if fatal_signal_pending() {
                        return Err(EINTR);
                    }
                    cond_resched();
                }
            }
            return Ok(());
        }
        for index in start..end {
            // SAFETY: `index < count`, so the page is owned by `self`.
            unsafe { bindings::heapgen_clear_highpage(self.page(index)) };
            if fatal_signal_pending() {
                return Err(EINTR);
            }
            cond_resched();
        }
        Ok(())
    }

    /// Fills bytes `offset..offset + len` (8-byte aligned) with the 64-bit `pattern`. Takes
    /// `&mut self`: the only writer of the range through this value. The words are written
    /// through raw pointers, so no Rust reference to the memory is made (a device or another
    /// mapping of other bytes of the range is no concern of the type system's).
    pub fn fill(&mut self, offset: usize, len: usize, pattern: u64) -> Result {
        self.for_each_run(offset, len, |_, words, count| {
            for i in 0..count {
                // SAFETY: `for_each_run` hands out `count` mapped, 8-byte-aligned words of the
                // owned range at `words`.
                unsafe { words.as_ptr().add(i).write_volatile(pattern) };
            }
            None::<()>
        })?;
        Ok(())
    }

    /// Returns the byte offset of the first 64-bit word in `offset..offset + len` that is not
    /// `pattern`, or `None` when every word holds it. Reads with volatile loads: a device may
    /// have written there (that is what the guard checks look for).
    pub fn find_mismatch(&self, offset: usize, len: usize, pattern: u64) -> Result<Option<usize>> {
        self.for_each_run(offset, len, |at, words, count| {
            (0..count)
                // SAFETY: As in `fill`: `count` mapped, aligned words of the owned range.
                .find(|&i| unsafe { words.as_ptr().add(i).read_volatile() } != pattern)
                .map(|i| at + i * core::mem::size_of::<u64>())
        })
    }

    /// Runs `f(byte offset, first word, word count)` over the mapped runs of words of
    /// `offset..offset + len`: one run through the linear map, or one per page through
    /// `kmap_local_page` for highmem (unmapped once `f` returns). Stops at the first `Some`.
    /// The words are valid for reads and writes for the duration of `f` only.
    fn for_each_run<R>(
        &self,
        offset: usize,
        len: usize,
        mut f: impl FnMut(usize, NonNull<u64>, usize) -> Option<R>,
    ) -> Result<Option<R>> {
        let page_size = 1usize << PAGE_SHIFT;
        let total = self.count << PAGE_SHIFT;
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if offset % 8 != 0 || len % 8 != 0 || end > total {
            return Err(EINVAL);
        }
        if len == 0 {
            return Ok(None);
        }
        if let Some(base) = self.linear_addr() {
            // SAFETY: `offset < total`: inside the owned, linearly mapped allocation.
            let words = unsafe { base.add(offset) }.cast::<u64>();
            return Ok(f(offset, words, len / 8));
        }
        let mut pos = offset;
        while pos < end {
            let in_page = pos % page_size;
            let chunk = core::cmp::min(page_size - in_page, end - pos);
            let page = self.page(pos / page_size);
            // SAFETY: `page` belongs to the owned range.
            let vaddr = unsafe { bindings::heapgen_kmap_local_page(page) };
            let Some(mapped) = NonNull::new(vaddr.cast::<u8>()) else {
                return Err(ENOMEM);
            };
            // SAFETY: `vaddr` maps the whole page and `in_page < PAGE_SIZE`.
            let words = unsafe { mapped.add(in_page) }.cast::<u64>();
            let r = f(pos, words, chunk / 8);
            // SAFETY: `vaddr` came from `kmap_local_page` just above.
            unsafe { bindings::heapgen_kunmap_local(vaddr) };
            if r.is_some() {
                return Ok(r);
            }
            pos += chunk;
        }
        Ok(None)
    }
}

impl Drop for CmaPages {
    fn drop(&mut self) {
        if self.count == 0 {
            return;
        }
        // SAFETY: The pages were allocated from `cma` with this count and are released only here
        // (type invariant; an empty value is skipped above).
        let released = unsafe {
            bindings::heapgen_cma_release(self.cma.ptr.as_ptr(), self.first.as_ptr(), self.count)
        };
        // `cma_release` only refuses pages that are not the area's: a broken invariant.
        debug_assert!(released);
    }
}
