//! The generator's speed for boards of 1, 8, 32 and 128 regions (`cargo bench -p heapgen`).
//!
//! Each iteration is the whole in-memory pipeline of `heapgen generate`: parse the board text,
//! validate it into the IR and render every file of the module tree (writing to disk is left
//! out: it measures the file system, not the generator). The target is < 50 ms at 128 regions
//! (128 heaps, the most a board may have) and a time linear in the number of regions;
//! Documentation/benchmarks.rst has the latest figures.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::{fmt::Write as _, hint::black_box};

/// An arm64 board of `n` regions, each a 4 MiB device-tree reserved-memory node with its own
/// heap, alternating the policies the generator knows (guards, size-order alignment, uncached
/// twins are left out so that the heap count equals the region count).
fn board(n: usize) -> String {
    let mut s = String::from(
        "schema-version = 1\n\n[board]\nname = \"bench\"\narch = \"arm64\"\n\
         description = \"generator benchmark board\"\n\n[defaults]\nalignment = \"4K\"\n\
         granule = \"4K\"\naccess = { mode = \"0660\", owner = \"root\", group = \"video\" }\n",
    );
    for i in 0..n {
        let base = 0x4800_0000u64 + (i as u64) * (4 << 20);
        let _ = write!(
            s,
            "\n[[region]]\nname = \"r{i}\"\ncma = \"r{i}@{base:x}\"\n\
             reserve = {{ base = \"{base:#x}\", size = \"4M\" }}\nheap = \"r{i}\"\n"
        );
        match i % 3 {
            0 => s.push_str("alignment = \"64K\"\ngranule = \"64K\"\n"),
            1 => s.push_str("alignment = { size-order = true, max = \"1M\" }\n"),
            _ => s.push_str("guard = { after = \"4K\" }\n"),
        }
    }
    s
}

fn generate(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate");
    for n in [1usize, 8, 32, 128] {
        let text = board(n);
        // Fail loudly (not inside the timing loop) if the board stops being valid.
        let ir = heapgen::load(heapgen::Source::bytes("bench.toml", text.as_bytes()))
            .unwrap_or_else(|d| panic!("the {n}-region bench board is invalid:\n{d}"))
            .board;
        heapgen::generate(&ir, &heapgen::Options::default()).expect("generating");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| {
                let ir = heapgen::load(heapgen::Source::bytes(
                    "bench.toml",
                    black_box(text.as_bytes()),
                ))
                .expect("valid board")
                .board;
                heapgen::generate(&ir, &heapgen::Options::default()).expect("generating")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, generate);
criterion_main!(benches);
