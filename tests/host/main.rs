// SPDX-License-Identifier: GPL-2.0

//! Host tests of the heapgen generator: the broken-board corpus, golden output trees, the CLI,
//! determinism, the schema and its documentation, rustfmt-clean generated Rust, and importing
//! board files from device trees.
//!
//! Expected outputs are overwritten with `HEAPGEN_BLESS=1 cargo test -p heapgen --test host`;
//! review the diff before committing it.

mod cli;
mod corpus;
mod docs;
mod escaping;
mod golden;
mod hooks;
mod import;
mod resources;
mod support;
mod udev;
mod udev_grammar;
