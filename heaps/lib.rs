// SPDX-License-Identifier: GPL-2.0

//! Host build of the heaps runtime's policy core.
//!
//! `runtime/policy.rs` is compiled twice: here, as a `no_std` crate the generator validates with and
//! the host tests exercise, and verbatim inside every generated kernel module, where the allocation
//! path uses it. There is exactly one copy of the arithmetic.

#![no_std]

#[path = "runtime/policy.rs"]
mod policy;

pub use policy::*;
