//! The on-target test suite, embedded in the generator and copied into every generated tree
//! under `test/`: the test programs of `tests/guest/` (C, kselftest harness, KTAP), their
//! headers and the runner `heapgen-test`, the same files the test bed's QEMU guests run.
//! Next to them `generate` renders the board's `heaps.conf`, a `Makefile` that builds and
//! installs them, and `run-ptest` (Yocto's ptest entry point).

/// One file of the suite: its name under `test/` and its contents.
#[derive(Clone, Copy, Debug)]
pub struct TestFile {
    /// File name in the generated `test/` directory.
    pub name: &'static str,
    /// Path of the source file, relative to the repository root (for the `@generated` header).
    pub source: &'static str,
    /// The file's contents, with an SPDX line (the first, or the second after a `#!` line).
    pub contents: &'static str,
}

macro_rules! test_files {
    ($($dir:literal / $name:literal),* $(,)?) => {
        &[$(TestFile {
            name: $name,
            source: concat!($dir, "/", $name),
            contents: include_str!(concat!("../../", $dir, "/", $name)),
        }),*]
    };
}

/// Every file of the suite, in a fixed order: the runner, the headers, then the programs.
pub const FILES: &[TestFile] = test_files![
    "tests/guest" / "heapgen-test",
    "tests/guest" / "heapgen_importer.h",
    "tests/guest" / "heapgen_test.h",
    "tests/guest" / "heap_accounting.c",
    "tests/guest" / "heap_alloc.c",
    "tests/guest" / "heap_cache.c",
    "tests/guest" / "heap_fallback.c",
    "tests/guest" / "heap_faults.c",
    "tests/guest" / "heap_headroom.c",
    "tests/guest" / "heap_hooks.c",
    "tests/guest" / "heap_import.c",
    "tests/guest" / "heap_mmap.c",
    "tests/guest" / "heap_pool.c",
    "tests/guest" / "heap_race.c",
    "tests/guest" / "heap_region.c",
    "tests/guest" / "heap_stats.c",
    "tests/guest" / "heap_stress.c",
    "tests/guest" / "module_pin.c",
    "tests/bench" / "heapgen_bench.c",
];

/// A test program: the executable's name and its C source under `test/`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Program {
    /// The executable (`heap-alloc`), as the runner names its runs.
    pub name: String,
    /// Its source (`heap_alloc.c`).
    pub source: String,
}

/// The per-heap test programs (every `.c` of `tests/guest`), sorted by name: `heap_alloc.c`
/// builds `heap-alloc`. The benchmark (`heapgen_bench.c`) is not one: it is not run per heap.
pub fn programs() -> Vec<Program> {
    let mut out: Vec<Program> = FILES
        .iter()
        .filter(|f| f.source.starts_with("tests/guest/") && f.name.ends_with(".c"))
        .map(|f| Program {
            name: f.name.trim_end_matches(".c").replace('_', "-"),
            source: f.name.to_string(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
