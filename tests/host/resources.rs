// SPDX-License-Identifier: GPL-2.0

//! Work and memory bounds on hostile board files, measured by counting allocations: no timing.
//!
//! The fuzzer's counting global allocator (`xtask/src/fuzz/alloc.rs`) keeps, per thread, the
//! bytes currently allocated, their peak and the total ever allocated, so that tests running in
//! parallel do not see each other. The total is a proxy for work that needs no clock: an
//! algorithm that touches the whole file once per diagnostic also allocates in proportion to it.

#[path = "../../xtask/src/fuzz/alloc.rs"]
#[allow(dead_code)]
mod alloc;

use alloc::measure;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

const MB: u64 = 1 << 20;

#[test]
fn did_you_mean_on_a_huge_key_allocates_almost_nothing() {
    let key = "x".repeat(20 << 20);
    let (suggestion, usage) =
        measure(|| heapgen::diag::did_you_mean(&key, heapgen::model::REGION_KEYS));
    assert_eq!(suggestion, None);
    assert!(usage.peak < MB && usage.total < MB, "{usage:?}");
    // Close keys are still found, with little memory.
    let (suggestion, usage) =
        measure(|| heapgen::diag::did_you_mean("alignmnet", heapgen::model::REGION_KEYS));
    assert_eq!(suggestion, Some("alignment"));
    assert!(usage.peak < 64 << 10, "{usage:?}");
}

/// A board whose `[board]` table has `n` unknown keys, one per line.
fn unknown_keys(n: usize) -> String {
    let mut text = String::from("schema-version = 1\n[board]\nname = \"b\"\narch = \"x86_64\"\n");
    for i in 0..n {
        text.push_str(&format!("key{i} = {i}\n"));
    }
    text.push_str("[[region]]\nname = \"r\"\ncma = \"reserved\"\nheap = \"h\"\n");
    text
}

#[test]
fn rendering_diagnostics_is_linear_in_the_file_and_the_output() {
    let text = unknown_keys(8000);
    let d = heapgen::load(heapgen::Source::bytes("b.toml", text.as_bytes())).unwrap_err();
    assert_eq!(d.errors(), 8000);
    assert_eq!(d.list.len(), heapgen::diag::MAX_KEPT);
    let (out, usage) = measure(|| d.render(false));
    let linear = 50 * (text.len() + out.len()) as u64;
    assert!(
        usage.total < linear,
        "{usage:?} for a {}-byte file and {} bytes of output",
        text.len(),
        out.len()
    );
}

#[test]
fn at_most_100_diagnostics_are_shown_with_a_count_of_the_rest() {
    let text = unknown_keys(8000);
    let out = heapgen::load(heapgen::Source::bytes("b.toml", text.as_bytes()))
        .unwrap_err()
        .render(false);
    assert_eq!(out.matches("error[unknown-key]").count(), 100, "{out}");
    assert!(out.contains("and 7900 more errors"), "{out}");
    assert!(out.contains("due to 8000 previous errors"), "{out}");
    // The first ones by position are shown.
    assert!(out.contains("unknown key `key0`") && out.contains("unknown key `key99`"));
    assert!(!out.contains("unknown key `key100`"));
}

#[test]
fn syntax_errors_up_to_the_size_cap_are_reported_in_bounded_memory() {
    let cap = usize::try_from(heapgen::MAX_BOARD_FILE).expect("fits");
    // A line of dots is the costliest input known to the TOML parser (120 bytes a byte).
    for garbage in ["=\n", "\"\n", "[\n", "a.\n", "[[x]]\n[x]\n", "."] {
        let text = garbage.repeat(cap / garbage.len());
        let (out, usage) = measure(|| {
            heapgen::load(heapgen::Source::bytes("b.toml", text.as_bytes()))
                .unwrap_err()
                .render(false)
        });
        assert!(usage.peak < 100 * MB, "{garbage:?}: {usage:?}");
        assert!(out.contains("error[toml-syntax]"), "{out}");
    }
}

/// `n` regions, each falling back on every other one.
fn all_fall_back_on_all(n: usize) -> String {
    let mut text = String::from("schema-version = 1\n[board]\nname = \"b\"\narch = \"arm64\"\n");
    for i in 0..n {
        let others: Vec<String> = (0..n)
            .filter(|&j| j != i)
            .map(|j| format!("\"r{j}\""))
            .collect();
        text.push_str(&format!(
            "[[region]]\nname = \"r{i}\"\ncma = \"c{i}\"\nheap = \"h{i}\"\nfallback = [{}]\n",
            others.join(", ")
        ));
    }
    text
}

#[test]
fn a_fallback_loop_is_reported_once() {
    let text = all_fall_back_on_all(100);
    let d = heapgen::load(heapgen::Source::bytes("b.toml", text.as_bytes())).unwrap_err();
    assert_eq!(d.rules(), ["fallback-cycle"], "{}", d.errors());
    assert_eq!(d.errors(), 1);
}

#[test]
fn a_megabyte_of_regions_is_checked_in_bounded_memory() {
    let cap = usize::try_from(heapgen::MAX_BOARD_FILE).expect("fits");
    let head = "schema-version = 1\n[board]\nname = \"b\"\narch = \"arm64\"\n";
    let mut cases = vec!["[[region]]\n".repeat(cap / 11)];
    let mut named = String::from(head);
    let mut chain = String::from(head);
    for i in 0.. {
        let region = format!("[[region]]\nname = \"r{i}\"\ncma = \"c{i}\"\nheap = \"h{i}\"\n");
        let link = format!("{region}fallback = [\"r{}\"]\n", i + 1);
        if chain.len() + link.len() > cap {
            break;
        }
        chain.push_str(&link);
        if named.len() + region.len() <= cap {
            named.push_str(&region);
        }
    }
    cases.push(named);
    cases.push(chain);
    cases.push(all_fall_back_on_all(250));
    for text in &cases {
        assert!(text.len() <= cap);
        let (d, usage) = measure(|| {
            let d = heapgen::load(heapgen::Source::bytes("b.toml", text.as_bytes())).unwrap_err();
            let _ = d.render(false);
            d
        });
        assert!(usage.peak < 64 * MB, "{usage:?}: {:?}", d.rules());
        // Empty regions give three problems each, so the region limit comes after the first
        // hundred problems shown.
        assert!(
            d.rules().contains(&"too-many-regions") || d.omitted_errors > 0,
            "{:?}",
            d.rules()
        );
    }
}

#[test]
fn a_name_longer_than_any_valid_one_is_never_suggested() {
    let long = "'".repeat(12_000);
    let similar = format!("{long}x");
    assert!(heapgen::diag::did_you_mean(&similar, &[long.as_str()]).is_none());
}

#[test]
fn suggestions_are_computed_for_the_diagnostics_kept_only() {
    // 128 regions with long names, and 4,000 unknown fallback entries of the same length:
    // every entry is a "did you mean" against every name.
    let name = |i: usize| format!("{i:0>60}");
    let mut text = String::from("schema-version = 1\n[board]\nname = \"b\"\narch = \"arm64\"\n");
    for i in 0..128 {
        text.push_str(&format!(
            "[[region]]\nname = \"{}\"\ncma = \"c{i}\"\nheap = \"h{i}\"\n",
            name(i)
        ));
    }
    let unknown: Vec<String> = (0..4000)
        .map(|i| format!("\"{}\"", name(i + 1000)))
        .collect();
    text.push_str(&format!("fallback = [{}]\n", unknown.join(", ")));
    assert!(text.len() as u64 <= heapgen::MAX_BOARD_FILE);
    let (d, usage) =
        measure(|| heapgen::load(heapgen::Source::bytes("b.toml", text.as_bytes())).unwrap_err());
    assert!(d.errors() > 4000);
    assert!(usage.total < 100 * MB, "{usage:?}");
}
