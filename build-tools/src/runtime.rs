//! The hand-written kernel runtime, embedded in the generator and copied verbatim into every
//! generated module (the svd2rust `generic.rs` pattern).

/// One runtime file: its name in the generated tree and its contents.
#[derive(Clone, Copy, Debug)]
pub struct RuntimeFile {
    /// File name in the generated module directory.
    pub name: &'static str,
    /// Path of the source file, relative to the repository root (for the `@generated` header).
    pub source: &'static str,
    /// The file's contents, starting with its SPDX line.
    pub contents: &'static str,
}

macro_rules! runtime_files {
    ($($name:literal),* $(,)?) => {
        &[$(RuntimeFile {
            name: $name,
            source: concat!("heaps/runtime/", $name),
            contents: include_str!(concat!("../../heaps/runtime/", $name)),
        }),*]
    };
}

/// Every runtime file, in a fixed order.
pub const FILES: &[RuntimeFile] = runtime_files![
    "bindings.rs",
    "buffer.rs",
    "cast.rs",
    "cma.rs",
    "debugfs.rs",
    "device.rs",
    "dma_buf.rs",
    "dma_heap.rs",
    "dmem.rs",
    "hooks.rs",
    "later.rs",
    "policy.rs",
    "pool.rs",
    "prelude.rs",
    "region.rs",
    "shrinker.rs",
    "stats.rs",
    "heapgen_abi.h",
    "heapgen_helpers.c",
];

/// The Rust modules the crate root declares (`pub mod <name>;`), in a fixed order.
pub fn rust_modules() -> impl Iterator<Item = &'static str> {
    FILES.iter().filter_map(|f| f.name.strip_suffix(".rs"))
}
