// SPDX-License-Identifier: GPL-2.0

//! Strategy hooks: vendor code a board attaches to a region (`hooks = "<file>.rs"`).
//!
//! The generator copies the board's hook file into the module unchanged (same name under
//! `hooks/`, same lines, so a compile error points at the hook's own file and line) and
//! declares it as a module of the crate. The file must define a type named `RegionHooks` that
//! implements [`StrategyHooks`] with `#[vtable]`; every callback it leaves out is simply not
//! called (its `HAS_*` constant is `false`). A hook file uses only this module's API (and the
//! kernel crate's prelude): it never sees raw bindings.
//!
//! ```ignore
//! use crate::hooks::{HookBuffer, StrategyHooks};
//! use kernel::prelude::*;
//!
//! pub struct RegionHooks;
//!
//! #[vtable]
//! impl StrategyHooks for RegionHooks {
//!     const NAME: &'static CStr = c_str!("protected");
//!     fn may_mmap(_buffer: &HookBuffer<'_>) -> bool {
//!         false
//!     }
//! }
//! ```
//!
//! Order, for every buffer: `after_alloc` once the buffer is allocated, zeroed and its guards
//! written (a failure fails the allocation and returns the pages to CMA without calling
//! `before_release`); `may_mmap`/`may_vmap` at each CPU mapping; `before_release` once the last
//! reference is gone.
//!
//! Release failures never leak silently. When `before_release` fails, the buffer's pages are
//! *quarantined*: kept out of CMA (they may still be protected, and handing them to another
//! user could expose or fault on them), counted in the heap's `quarantined` and
//! `release_hook_failures` counters, and `before_release` is retried on them at the heap's next
//! allocation and next release, and in the background (100 ms after the failure, then at
//! doubling intervals of at most 10 s) until it succeeds; the pages then go back to CMA and
//! `quarantine_released` counts them. A quarantined range is never handed out again before its
//! hook succeeded.

use crate::{cast::usize_from, cma::CmaPages, policy::Layout};
use core::sync::atomic::AtomicU64;
use kernel::{build_error, error::VTABLE_DEFAULT_ERROR, prelude::*};

/// A buffer as a hook sees it: its payload (what userspace and devices use).
pub struct HookBuffer<'a> {
    pages: &'a CmaPages,
    layout: &'a Layout,
}

impl<'a> HookBuffer<'a> {
    pub(crate) fn new(pages: &'a CmaPages, layout: &'a Layout) -> Self {
        Self { pages, layout }
    }

    fn first_page(&self) -> usize {
        usize_from(self.layout.payload_page_offset())
    }

    /// Page frame number of the payload's first page.
    pub fn pfn(&self) -> usize {
        self.pages.pfn() + self.first_page()
    }

    /// Payload length in bytes (the request rounded up to the granule).
    pub fn len(&self) -> usize {
        usize_from(self.layout.payload_len)
    }

    /// Whether the payload is empty (never, for an allocated buffer).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Zeroes the payload (e.g. to scrub a protected buffer before it leaves a secure world).
    pub fn zero(&self) -> Result {
        self.pages
            .zero(self.first_page(), usize_from(self.layout.payload_pages()))
    }
}

/// A counter a hook file publishes under `/sys/kernel/debug/heapgen-hooks/<NAME>/`. The value is
/// a static of the file: it counts for every heap whose region uses the file, and each such
/// heap's `/sys/kernel/debug/heapgen/<heap>/hooks/<NAME>` links to that one directory.
pub struct Counter {
    /// File name.
    pub name: &'static CStr,
    /// The value.
    pub value: &'static AtomicU64,
    /// Whether root may write it (e.g. a fault-injection knob).
    pub writable: bool,
}

/// Callbacks around a region's buffers. Implement it with `#[vtable]` on a type named
/// `RegionHooks` in the board's hook file; see the module documentation for the order.
#[vtable]
pub trait StrategyHooks {
    /// The hooks' name, used in statistics paths and in log messages.
    const NAME: &'static CStr;

    /// Whether the region's buffers are protected: meant for a secure device, never accessed
    /// by the CPU. A protected buffer's payload is written back from the CPU caches (once
    /// zeroed) before `after_alloc`, so that no dirty line is evicted into it later; the buffer
    /// is exported without a kernel mapping operation (an importer's `vmap` fails with
    /// `EINVAL`, as on upstream's protected heaps); and neither `DMA_BUF_IOCTL_SYNC` nor an
    /// importer's DMA mapping does CPU cache maintenance on it.
    const PROTECTED: bool = false;

    /// Called once a buffer is allocated, zeroed and guarded, before it is exported (e.g. to
    /// protect it). An error fails the allocation.
    fn after_alloc(_buffer: &HookBuffer<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called when the last reference to a buffer is gone, before its pages go back to CMA
    /// (e.g. to unprotect it). An error quarantines the pages (see the module documentation).
    fn before_release(_buffer: &HookBuffer<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Whether userspace may `mmap` the buffer; `false` fails `mmap` with `EPERM`.
    fn may_mmap(_buffer: &HookBuffer<'_>) -> bool {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Whether a kernel importer may `vmap` the buffer; `false` fails `vmap` with `EPERM`. The
    /// dma-buf core warns (once) when a `vmap` fails: refuse every kernel mapping of a region's
    /// buffers with [`StrategyHooks::PROTECTED`] instead.
    fn may_vmap(_buffer: &HookBuffer<'_>) -> bool {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Counters the hooks keep themselves, published in debugfs.
    fn counters() -> &'static [Counter] {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The hooks of a region as a table of optional callbacks, built at compile time from a
/// [`StrategyHooks`] implementation (the `HAS_*` constants decide which are present).
pub struct Ops {
    /// [`StrategyHooks::NAME`].
    pub name: &'static CStr,
    /// [`StrategyHooks::PROTECTED`].
    pub protected: bool,
    after_alloc: Option<fn(&HookBuffer<'_>) -> Result>,
    before_release: Option<fn(&HookBuffer<'_>) -> Result>,
    may_mmap: Option<fn(&HookBuffer<'_>) -> bool>,
    may_vmap: Option<fn(&HookBuffer<'_>) -> bool>,
    counters: Option<fn() -> &'static [Counter]>,
}

impl Ops {
    /// The table of `T`.
    pub const fn new<T: StrategyHooks>() -> Self {
        Self {
            name: T::NAME,
            protected: T::PROTECTED,
            after_alloc: if T::HAS_AFTER_ALLOC {
                Some(T::after_alloc)
            } else {
                None
            },
            before_release: if T::HAS_BEFORE_RELEASE {
                Some(T::before_release)
            } else {
                None
            },
            may_mmap: if T::HAS_MAY_MMAP {
                Some(T::may_mmap)
            } else {
                None
            },
            may_vmap: if T::HAS_MAY_VMAP {
                Some(T::may_vmap)
            } else {
                None
            },
            counters: if T::HAS_COUNTERS {
                Some(T::counters)
            } else {
                None
            },
        }
    }

    /// Runs `after_alloc`, if present.
    pub fn after_alloc(&self, buffer: &HookBuffer<'_>) -> Result {
        self.after_alloc.map_or(Ok(()), |f| f(buffer))
    }

    /// Runs `before_release`, if present.
    pub fn before_release(&self, buffer: &HookBuffer<'_>) -> Result {
        self.before_release.map_or(Ok(()), |f| f(buffer))
    }

    /// Asks `may_mmap`; allowed when absent.
    pub fn may_mmap(&self, buffer: &HookBuffer<'_>) -> bool {
        self.may_mmap.is_none_or(|f| f(buffer))
    }

    /// Asks `may_vmap`; allowed when absent.
    pub fn may_vmap(&self, buffer: &HookBuffer<'_>) -> bool {
        self.may_vmap.is_none_or(|f| f(buffer))
    }

    /// The hooks' own counters.
    pub fn counters(&self) -> &'static [Counter] {
        self.counters.map_or(&[], |f| f())
    }
}

/// Pages whose release hook failed, with the layout the hook is called with again.
pub(crate) struct Quarantined {
    pub(crate) pages: CmaPages,
    pub(crate) layout: Layout,
}
