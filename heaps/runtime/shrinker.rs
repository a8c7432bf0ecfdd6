// SPDX-License-Identifier: GPL-2.0

//! Memory shrinkers: callbacks the kernel runs under memory pressure (and on
//! `echo 2 > /proc/sys/vm/drop_caches`) to get memory back from caches.
//!
//! C header: [`include/linux/shrinker.h`](srctree/include/linux/shrinker.h)

use crate::bindings;
use core::ffi::c_void;
use kernel::prelude::*;

/// A cache that gives memory back under pressure. Objects are counted in pages.
pub trait Shrink: Sync + 'static {
    /// Pages the cache could free now.
    fn count(&self) -> usize;
    /// Frees about `nr` pages (whole objects, so possibly more); returns the pages freed.
    fn scan(&self, nr: usize) -> usize;
}

/// A registered shrinker over a `'static` cache; it is never unregistered, like the heaps whose
/// caches it shrinks.
///
/// # Invariants
///
/// The C side holds a pointer to a `T` that lives for ever, and calls [`count`] and [`scan`] with
/// it.
pub struct Shrinker;

/// # Safety
///
/// `data` is the `&'static T` [`Shrinker::register`] passed to the C shim.
unsafe extern "C" fn count<T: Shrink>(data: *mut c_void) -> usize {
    // SAFETY: `data` is the `&'static T` passed to `heapgen_shrinker_register` by `register`.
    let cache = unsafe { &*data.cast::<T>() };
    cache.count()
}

/// # Safety
///
/// As for [`count`].
unsafe extern "C" fn scan<T: Shrink>(data: *mut c_void, nr: usize) -> usize {
    // SAFETY: As in `count`.
    let cache = unsafe { &*data.cast::<T>() };
    cache.scan(nr)
}

impl Shrinker {
    /// Registers a shrinker named `heapgen-<name>` over `cache`.
    pub fn register<T: Shrink>(name: &CStr, cache: &'static T) -> Result<Self> {
        // SAFETY: `name` is a valid C string, copied by `shrinker_alloc`; `count::<T>` and
        // `scan::<T>` are called only with `cache`, which lives for ever and is `Sync`, so the
        // callbacks may run on any CPU at any time.
        let raw = unsafe {
            bindings::heapgen_shrinker_register(
                name.as_char_ptr(),
                Some(count::<T>),
                Some(scan::<T>),
                core::ptr::from_ref(cache).cast_mut().cast(),
            )
        };
        if raw.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: Registered above with a `'static` cache.
        Ok(Self)
    }
}
