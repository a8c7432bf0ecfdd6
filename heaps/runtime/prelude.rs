// SPDX-License-Identifier: GPL-2.0

//! The runtime's prelude: the kernel crate's, plus the [`KVec`] methods older kernel crates
//! lack, so that the heap code is the same on every supported kernel.
//!
//! The generated Kbuild probes the kernel crate and passes `--cfg heapgen_has_vec_<method>` for
//! each method it has; [`VecExt`] supplies the others (all four on Linux 6.12).
//!
//! Rust source: [`rust/kernel/alloc/kvec.rs`](srctree/rust/kernel/alloc/kvec.rs)

pub use kernel::prelude::*;

pub use self::vec_ext::VecExt as _;

mod vec_ext {
    use kernel::alloc::{Allocator, Vec};

    /// The `Vec` methods of newer kernel crates, for kernel crates that lack them. Where the
    /// kernel crate has a method, the `--cfg` leaves it out here and the inherent one is used.
    pub trait VecExt<T> {
        /// Keeps only the elements for which `f` returns `true`, in order.
        #[cfg(not(heapgen_has_vec_retain))]
        fn retain(&mut self, f: impl FnMut(&mut T) -> bool);

        /// Moves every element out, leaving the vector empty.
        #[cfg(not(heapgen_has_vec_drain_all))]
        fn drain_all(&mut self) -> impl Iterator<Item = T>;

        /// Appends `v` if there is room without allocating; hands it back otherwise.
        #[cfg(not(heapgen_has_vec_push_within_capacity))]
        fn push_within_capacity(&mut self, v: T) -> core::result::Result<(), T>;

        /// Removes the last element and returns it, or `None` when empty.
        #[cfg(not(heapgen_has_vec_pop))]
        fn pop(&mut self) -> Option<T>;

        /// [`push_within_capacity`](Self::push_within_capacity) that hands the element back as
        /// itself on every kernel (newer kernel crates wrap it in a `PushError`).
        fn push_or_return(&mut self, v: T) -> core::result::Result<(), T>;
    }

    impl<T, A: Allocator> VecExt<T> for Vec<T, A> {
        #[cfg(not(heapgen_has_vec_retain))]
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
                self.set_len(kept);
                core::ptr::drop_in_place(tail);
            }
        }

        #[cfg(not(heapgen_has_vec_drain_all))]
        fn drain_all(&mut self) -> impl Iterator<Item = T> {
            core::mem::replace(self, Vec::new()).into_iter()
        }

        #[cfg(not(heapgen_has_vec_push_within_capacity))]
        fn push_within_capacity(&mut self, v: T) -> core::result::Result<(), T> {
            if self.len() == self.capacity() {
                return Err(v);
            }
            // There is room, so `push` does not allocate and cannot fail.
            let _ = self.push(v, kernel::alloc::flags::GFP_NOWAIT);
            Ok(())
        }

        fn push_or_return(&mut self, v: T) -> core::result::Result<(), T> {
            #[cfg(heapgen_has_vec_push_within_capacity)]
            return self.push_within_capacity(v).map_err(|e| e.0);
            #[cfg(not(heapgen_has_vec_push_within_capacity))]
            return VecExt::push_within_capacity(self, v);
        }

        #[cfg(not(heapgen_has_vec_pop))]
        fn pop(&mut self) -> Option<T> {
            let len = self.len();
            if len == 0 {
                return None;
            }
            // SAFETY: Element `len - 1` is initialised; shortening the vector first makes it
            // unreachable through the vector, so reading it out moves it exactly once.
            unsafe {
                self.set_len(len - 1);
                Some(core::ptr::read(self.as_mut_ptr().add(len - 1)))
            }
        }
    }
}
