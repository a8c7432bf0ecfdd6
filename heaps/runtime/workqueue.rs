// SPDX-License-Identifier: GPL-2.0

//! Work run later: a callback on the kernel's default unbound workqueue after a delay.
//!
//! The kernel crate of Linux 6.12 has no delayed work, so this wraps a `struct delayed_work` of
//! the C helpers. The callback's target is set once ([`DelayedWork::arm`]) after it has its final
//! address; a run queued before that does nothing.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)

use crate::bindings;
use core::{ffi::c_void, marker::PhantomData, ptr::NonNull};
use kernel::prelude::*;

/// What a [`DelayedWork`] runs.
pub trait Run: Sync + 'static {
    /// Runs in process context on a kernel worker thread; may sleep.
    fn run(&'static self);
}

/// A delayed work item whose runs call [`Run::run`] on a `'static` target.
///
/// # Invariants
///
/// `ptr` is a `heapgen_later` returned by `heapgen_later_new` with `run::<T>` as its callback,
/// freed only by `drop`; its data pointer is NULL or a `&'static T`.
pub struct DelayedWork<T: Run> {
    ptr: NonNull<bindings::heapgen_later>,
    _target: PhantomData<&'static T>,
}

// SAFETY: The C side serialises queueing and cancelling itself; the target is `Sync` and
// `'static`, so runs may happen on any CPU while other threads hold the `DelayedWork`.
unsafe impl<T: Run> Send for DelayedWork<T> {}
// SAFETY: See `Send`; `arm` and `schedule` take `&self` and are thread-safe.
unsafe impl<T: Run> Sync for DelayedWork<T> {}

/// # Safety
///
/// `data` is the `&'static T` set by [`DelayedWork::arm`].
unsafe extern "C" fn run<T: Run>(data: *mut c_void) {
    // SAFETY: The C side calls this only with the non-NULL data set by `DelayedWork::arm`, a
    // `&'static T`.
    let target = unsafe { &*data.cast::<T>() };
    target.run();
}

impl<T: Run> DelayedWork<T> {
    /// Allocates the work item, not armed yet.
    pub fn new() -> Result<Self> {
        // SAFETY: `run::<T>` is a valid callback for the lifetime of the module, which outlives
        // the work item (dropping it cancels and waits for any run).
        let ptr = unsafe { bindings::heapgen_later_new(Some(run::<T>)) };
        // INVARIANT: A non-NULL result is a fresh work item with `run::<T>` and no data.
        NonNull::new(ptr)
            .map(|ptr| Self {
                ptr,
                _target: PhantomData,
            })
            .ok_or(ENOMEM)
    }

    /// Sets the target that runs call [`Run::run`] on.
    pub fn arm(&self, target: &'static T) {
        // SAFETY: `self.ptr` is live (type invariant); the data is a `&'static T`, as `run::<T>`
        // expects.
        unsafe {
            bindings::heapgen_later_arm(
                self.ptr.as_ptr(),
                core::ptr::from_ref(target).cast_mut().cast(),
            )
        };
    }

    /// Queues a run in `delay_ms` milliseconds, unless one is queued already. Returns whether
    /// this call queued it.
    pub fn schedule(&self, delay_ms: u32) -> bool {
        // SAFETY: `self.ptr` is live (type invariant).
        unsafe { bindings::heapgen_later_schedule(self.ptr.as_ptr(), delay_ms) }
    }
}

impl<T: Run> Drop for DelayedWork<T> {
    fn drop(&mut self) {
        // SAFETY: `self.ptr` is live and freed only here, after cancelling any queued run and
        // waiting for a running one.
        unsafe { bindings::heapgen_later_free(self.ptr.as_ptr()) };
    }
}

/// Fault build for the test harness's kCFI self-test (`--cfg heapgen_fault_cfi`, never set
/// otherwise): queues a work item whose callback's type is not the C side's `void (*)(void *)`.
/// A kernel with kCFI stops that indirect call ("CFI failure"); others run it harmlessly.
#[cfg(heapgen_fault_cfi)]
pub fn fault_cfi() -> Result {
    /// Takes an argument more and returns a value: another type for kCFI.
    ///
    /// # Safety
    ///
    /// None needed: it reads nothing. It is `unsafe` only to have the C callback's ABI shape.
    unsafe extern "C" fn mistyped(_data: *mut c_void, _extra: usize) -> usize {
        0
    }
    static TARGET: u8 = 0;
    let wrong: unsafe extern "C" fn(*mut c_void, usize) -> usize = mistyped;
    // SAFETY: Deliberately the wrong function type, the point of this fault build: called with one
    // argument, `mistyped` reads a register it does not use and its return value is ignored.
    let callback: unsafe extern "C" fn(*mut c_void) = unsafe { core::mem::transmute(wrong) };
    // SAFETY: The callback ignores its data; the work item is leaked, so it outlives its run.
    let ptr = unsafe { bindings::heapgen_later_new(Some(callback)) };
    let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
    // SAFETY: `ptr` is a live work item; the data pointer is never dereferenced.
    unsafe {
        bindings::heapgen_later_arm(ptr.as_ptr(), core::ptr::from_ref(&TARGET).cast_mut().cast());
        bindings::heapgen_later_schedule(ptr.as_ptr(), 0);
    }
    Ok(())
}
