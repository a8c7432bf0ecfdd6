// SPDX-License-Identifier: GPL-2.0

//! dmem cgroup accounting: a region registered with the cgroup v2 `dmem` controller, and the
//! charges of buffers against it.
//!
//! A task's charges count in its cgroup's `dmem.current` under the region's name
//! (`heapgen/<region>`); a charge that would take a cgroup (or an ancestor) over its `dmem.max`
//! fails, and the allocation with it. A charge is uncharged from the cgroup it was taken from,
//! whichever task drops the buffer.
//!
//! On kernels without the controller (`CONFIG_CGROUP_DMEM`, Linux 6.14 and later) the C shim
//! fails every registration with `ENODEV`, and the generated crate root refuses to compile a
//! board that asks for accounting.
//!
//! C header: [`include/linux/cgroup_dmem.h`](srctree/include/linux/cgroup_dmem.h)

use crate::bindings;
use core::ptr::NonNull;
use kernel::{error::to_result, prelude::*};

/// A dmem cgroup region, unregistered when dropped.
///
/// # Invariants
///
/// `ptr` is a region returned by `dmem_cgroup_register_region` and not unregistered yet.
pub struct Region {
    ptr: NonNull<bindings::dmem_cgroup_region>,
}

// SAFETY: The dmem controller serialises region and pool state itself (a spinlock and RCU), so a
// region may be charged and unregistered from any thread.
unsafe impl Send for Region {}
// SAFETY: See `Send`: `try_charge` takes `&self` and is thread-safe.
unsafe impl Sync for Region {}

impl Region {
    /// Registers the region `heapgen/<name>` with a capacity of `size` bytes (what the root
    /// cgroup's `dmem.capacity` shows). Fails with `ENODEV` on kernels without the controller.
    pub fn register(name: &CStr, size: u64) -> Result<Self> {
        let mut ptr = core::ptr::null_mut();
        // SAFETY: `name` is a NUL-terminated string the callee copies; `ptr` is written only on
        // success.
        to_result(unsafe { bindings::heapgen_dmem_register(size, name.as_char_ptr(), &mut ptr) })?;
        // INVARIANT: On success `ptr` is a freshly registered region.
        NonNull::new(ptr).map(|ptr| Self { ptr }).ok_or(EINVAL)
    }

    /// Charges `size` bytes to the current task's cgroup. Fails with `EAGAIN` when that would
    /// exceed the `dmem.max` of the cgroup or one of its ancestors, or with another error when
    /// the cgroup's state cannot be allocated.
    pub fn try_charge(&self, size: u64) -> Result<Charge> {
        let mut pool = core::ptr::null_mut();
        // SAFETY: `self.ptr` is registered (type invariant); `pool` is written on success.
        to_result(unsafe {
            bindings::heapgen_dmem_try_charge(self.ptr.as_ptr(), size, &mut pool)
        })?;
        // INVARIANT: On success `pool` holds the charge of `size` bytes.
        NonNull::new(pool)
            .map(|pool| Charge { pool, size })
            .ok_or(EINVAL)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `self.ptr` is registered (type invariant) and unregistered only here. Charges
        // still held keep their pools alive and may be uncharged afterwards.
        unsafe { bindings::heapgen_dmem_unregister(self.ptr.as_ptr()) };
    }
}

/// Bytes charged to a cgroup's pool of a region, uncharged when dropped.
///
/// # Invariants
///
/// `pool` is the pool `dmem_cgroup_try_charge` returned for a charge of `size` bytes that is
/// still held (it holds a reference to the pool and its cgroup).
pub struct Charge {
    pool: NonNull<bindings::dmem_cgroup_pool_state>,
    size: u64,
}

// SAFETY: Uncharging is thread-safe (an atomic page counter and reference counts), so a charge
// may be dropped by whichever task releases the buffer.
unsafe impl Send for Charge {}
// SAFETY: A shared `Charge` offers no operation.
unsafe impl Sync for Charge {}

impl Drop for Charge {
    fn drop(&mut self) {
        // SAFETY: `self.pool` holds a charge of `self.size` bytes (type invariant), released
        // exactly once, here.
        unsafe { bindings::heapgen_dmem_uncharge(self.pool.as_ptr(), self.size) };
    }
}
