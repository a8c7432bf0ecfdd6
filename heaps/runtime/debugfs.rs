// SPDX-License-Identifier: GPL-2.0

//! Read-only debugfs counters.
//!
//! C header: [`include/linux/debugfs.h`](srctree/include/linux/debugfs.h)

use crate::bindings;
use core::{ptr::NonNull, sync::atomic::AtomicU64};
use kernel::prelude::*;

/// A debugfs directory that lives as long as the kernel (heaps are never unregistered, so
/// neither are their statistics).
///
/// # Invariants
///
/// `dentry` is a debugfs directory that is never removed.
#[derive(Clone, Copy)]
pub struct Dir {
    dentry: NonNull<bindings::dentry>,
}

impl Dir {
    /// Creates `name` under `parent` (the debugfs root when `None`), or returns it if it exists.
    /// Returns `None` when debugfs is disabled or fails: statistics are optional.
    pub fn create(name: &CStr, parent: Option<Dir>) -> Option<Self> {
        let parent = parent.map_or(core::ptr::null_mut(), |p| p.dentry.as_ptr());
        // SAFETY: `name` is a valid C string and `parent` NULL or a live debugfs directory.
        let dentry = unsafe { bindings::heapgen_debugfs_create_dir(name.as_char_ptr(), parent) };
        // INVARIANT: The directory is never removed.
        NonNull::new(dentry).map(|dentry| Self { dentry })
    }

    /// Creates the symbolic link `name` in this directory, pointing to `target` (a path relative
    /// to this directory, copied by debugfs). Returns whether it was created: like the
    /// counters, links are optional.
    pub fn link(&self, name: &CStr, target: &CStr) -> bool {
        // SAFETY: `name` and `target` are valid C strings (debugfs copies both) and the
        // directory is live (type invariant).
        unsafe {
            bindings::heapgen_debugfs_create_symlink(
                name.as_char_ptr(),
                self.dentry.as_ptr(),
                target.as_char_ptr(),
            )
        }
    }

    /// Exposes `value` read-only as the file `name`.
    pub fn add_u64(&self, name: &'static CStr, value: &'static AtomicU64) {
        self.add_u64_mode(name, value, false);
    }

    /// Exposes `value` as the file `name`, writable by root when `writable`.
    pub fn add_u64_mode(&self, name: &'static CStr, value: &'static AtomicU64, writable: bool) {
        // SAFETY: `AtomicU64` has the layout of `u64`; debugfs reads and writes it with plain
        // 64-bit accesses, which are single-copy atomic on the 64-bit architectures this runtime
        // supports. The counter and the name are `'static`, as the file is never removed.
        unsafe {
            bindings::heapgen_debugfs_create_u64(
                name.as_char_ptr(),
                self.dentry.as_ptr(),
                value.as_ptr(),
                writable,
            )
        };
    }
}
