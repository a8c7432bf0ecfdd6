// SPDX-License-Identifier: GPL-2.0

//! Integer conversions between the policy's `u64` arithmetic and the kernel's `usize` and
//! `u32` counts: the one place the runtime converts, instead of bare `as` casts.
//!
//! The runtime builds only for 64-bit architectures (arm64, x86_64; the generator refuses other
//! `arch` values), which the assertion below holds it to: `u64` and `usize` convert losslessly
//! both ways, so these conversions cannot fail.

const _: () = assert!(
    usize::BITS == u64::BITS,
    "the heapgen runtime needs a 64-bit architecture"
);

/// A `u64` (a policy length, offset or page count) as a `usize`.
#[inline]
pub const fn usize_from(value: u64) -> usize {
    // CAST: Lossless: `usize` has 64 bits (asserted above).
    value as usize
}

/// A `usize` (a page or byte count) as a `u64`.
#[inline]
pub const fn u64_from(value: usize) -> u64 {
    // CAST: Lossless: `usize` has 64 bits (asserted above).
    value as u64
}
