// SPDX-License-Identifier: GPL-2.0

//! The runtime's prelude: the kernel crate's, plus the [`KVec`] methods older kernel crates
//! lack, so that the heap code is the same on every supported kernel.
//!
//! [`VecExt`] implements them with what every supported kernel crate has. Where a kernel crate
//! has an inherent method of the same name and signature (`retain`, `drain_all` and `pop` on
//! Linux 7.x), method resolution picks the inherent one; Linux 6.12 gets these. No build flag
//! selects between them.
//!
//! Rust source: [`rust/kernel/alloc/kvec.rs`](srctree/rust/kernel/alloc/kvec.rs)

pub use kernel::prelude::*;

pub use self::vec_ext::VecExt as _;

mod vec_ext {
    use kernel::alloc::{Allocator, Vec};

    /// The `Vec` methods of newer kernel crates, for kernel crates that lack them.
    // Unused on kernels whose crate has the inherent methods.
    #[allow(dead_code)]
    pub trait VecExt<T> {
        /// Keeps only the elements for which `f` returns `true`, in order.
        fn retain(&mut self, f: impl FnMut(&mut T) -> bool);

        /// Moves every element out, leaving the vector empty.
        fn drain_all(&mut self) -> impl Iterator<Item = T>;

        /// Removes the last element and returns it, or `None` when empty.
        fn pop(&mut self) -> Option<T>;

        /// Appends `v` if there is room without allocating; hands it back otherwise (newer
        /// kernel crates' `push_within_capacity` wraps it in a `PushError`, older ones have
        /// none).
        fn push_or_return(&mut self, v: T) -> core::result::Result<(), T>;
    }

    /// Shortens `v` to `new_len` elements without dropping the others (`Vec::set_len` of Linux
    /// 6.12, through the raw parts, which every supported kernel crate has).
    ///
    /// # Safety
    ///
    /// `new_len <= v.len()`; the caller takes care of elements `new_len..len`.
    // `mem::take` needs `Vec: Default`, which Linux 6.12's kernel crate does not implement.
    #[expect(clippy::mem_replace_with_default)]
    unsafe fn forget_tail<T, A: Allocator>(v: &mut Vec<T, A>, new_len: usize) {
        let (ptr, len, capacity) = core::mem::replace(v, Vec::new()).into_raw_parts();
        debug_assert!(new_len <= len);
        // SAFETY: The parts came from a vector of this allocator; `new_len <= len` elements of
        // it are initialised.
        *v = unsafe { Vec::from_raw_parts(ptr, new_len, capacity) };
    }

    impl<T, A: Allocator> VecExt<T> for Vec<T, A> {
        fn retain(&mut self, mut f: impl FnMut(&mut T) -> bool) {
            let len = self.len();
            let mut kept = 0;
            for i in 0..len {
                let slice = self.as_mut_slice();
                if f(&mut slice[i]) {
                    // Kept elements move to the front in order; dropped ones collect behind them.
                    slice.swap(kept, i);
                    kept += 1;
                }
            }
            let tail = core::ptr::slice_from_raw_parts_mut(
                self.as_mut_slice()[kept..].as_mut_ptr(),
                len - kept,
            );
            // SAFETY: `kept <= len`, and elements `kept..len` are initialised; shortening the
            // vector first makes them unreachable through it, so each is dropped exactly once.
            unsafe {
                forget_tail(self, kept);
                core::ptr::drop_in_place(tail);
            }
        }

        // As in `forget_tail`: no `Vec: Default` in Linux 6.12.
        #[expect(clippy::mem_replace_with_default)]
        fn drain_all(&mut self) -> impl Iterator<Item = T> {
            core::mem::replace(self, Vec::new()).into_iter()
        }

        fn pop(&mut self) -> Option<T> {
            let len = self.len();
            if len == 0 {
                return None;
            }
            // SAFETY: Element `len - 1` is initialised; shortening the vector first makes it
            // unreachable through the vector, so reading it out moves it exactly once.
            unsafe {
                forget_tail(self, len - 1);
                Some(core::ptr::read(self.as_mut_ptr().add(len - 1)))
            }
        }

        fn push_or_return(&mut self, v: T) -> core::result::Result<(), T> {
            if self.len() == self.capacity() {
                return Err(v);
            }
            // There is room, so `push` does not allocate and cannot fail.
            let _ = self.push(v, kernel::alloc::flags::GFP_NOWAIT);
            Ok(())
        }
    }
}
