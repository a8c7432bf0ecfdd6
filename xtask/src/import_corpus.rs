//! `cargo xtask import-corpus [--kernel-src DIR] [--jobs N]`: `heapgen import` over a kernel
//! tree's arm64 device trees.
//!
//! Every `arch/arm64/boot/dts/**/*.dts` is preprocessed and compiled as the kernel's build does
//! (cpp with `scripts/dtc/include-prefixes`, dtc); those with a reusable `shared-dma-pool` node
//! are imported and their board files checked. Prints how many import, how many pass `heapgen
//! check`, and why the others do not. Host only: cpp and dtc, no kernel build.

use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::util::{cache_root, step};

/// The kernel tree `cargo xtask testbed` unpacks for 7.2.
fn default_source() -> PathBuf {
    cache_root().join("src/linux-source-7.2")
}

/// What became of one device tree.
enum Outcome {
    /// cpp or dtc refused it (the kernel's own build passes flags and overlays this does not).
    NotCompiled(String),
    /// No reusable shared-dma-pool node: not part of the corpus.
    NoPool,
    /// Imported; the rules `heapgen check` reports (empty: it passes).
    Imported { regions: usize, rules: Vec<String> },
    /// Compiled, but import refused the blob.
    Refused(String),
}

fn dts_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            dts_files(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "dts") {
            out.push(p);
        }
    }
    Ok(())
}

fn one(path: &Path, includes: &[PathBuf]) -> Outcome {
    let blob = match heapgen::import::read_device_tree(path, includes) {
        Ok(b) => b,
        Err(e) => {
            let first = e.to_string().lines().nth(1).unwrap_or_default().to_string();
            return Outcome::NotCompiled(first);
        }
    };
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let options = heapgen::import::Options::default();
    match heapgen::import::import(&blob, &name, &options) {
        Err(e) => Outcome::Refused(e.to_string()),
        Ok(i) if i.reusable_pools == 0 => Outcome::NoPool,
        Ok(i) => {
            let file = format!("{}.toml", i.board);
            let rules = match heapgen::load(heapgen::Source::bytes(&file, i.text.as_bytes())) {
                Ok(_) => Vec::new(),
                Err(d) => {
                    let mut r: Vec<String> = d.list.iter().map(|d| d.rule.to_string()).collect();
                    r.sort();
                    r.dedup();
                    r
                }
            };
            Outcome::Imported {
                regions: i.regions.len(),
                rules,
            }
        }
    }
}

/// The options of `cargo xtask import-corpus`.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// The kernel tree [default: the 7.2 tree `cargo xtask testbed` unpacks].
    #[arg(long = "kernel-src", value_name = "DIR", default_value_os_t = default_source(),
          hide_default_value = true)]
    pub src: PathBuf,
    /// Device trees imported at once.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: usize,
}

/// Runs the corpus; fails only when the tree is missing or nothing could be compiled.
pub fn cmd_import_corpus(o: &Options) -> Result<()> {
    let (src, jobs) = (&o.src, o.jobs);
    let dts_root = src.join("arch/arm64/boot/dts");
    if !dts_root.is_dir() {
        bail!(
            "{} is not a kernel tree with arm64 device trees (run `cargo xtask testbed --arch arm64` or pass --kernel-src)",
            src.display()
        );
    }
    let includes = vec![src.join("scripts/dtc/include-prefixes")];
    let mut files = Vec::new();
    dts_files(&dts_root, &mut files)?;
    files.sort();
    step(format!(
        "importing {} device trees of {} ({} jobs)",
        files.len(),
        src.display(),
        jobs
    ));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let outcome = one(path, &includes);
                results.lock().expect("no panics").push((i, outcome));
            });
        }
    });
    let mut results = results.into_inner().expect("no panics");
    results.sort_by_key(|(i, _)| *i);

    let mut not_compiled = BTreeMap::<String, usize>::new();
    let mut refused = BTreeMap::<String, usize>::new();
    let mut failing = BTreeMap::<String, usize>::new();
    let (mut compiled, mut with_pool, mut imported, mut passing, mut regions) = (0, 0, 0, 0, 0);
    let mut examples = BTreeMap::<String, String>::new();
    for (i, o) in &results {
        let rel = files[*i]
            .strip_prefix(&dts_root)
            .unwrap_or(&files[*i])
            .display()
            .to_string();
        match o {
            Outcome::NotCompiled(why) => *not_compiled.entry(why.clone()).or_default() += 1,
            Outcome::NoPool => compiled += 1,
            Outcome::Refused(why) => {
                compiled += 1;
                with_pool += 1;
                *refused.entry(why.clone()).or_default() += 1;
            }
            Outcome::Imported { regions: n, rules } => {
                compiled += 1;
                with_pool += 1;
                imported += 1;
                regions += n;
                if rules.is_empty() {
                    passing += 1;
                } else {
                    let key = rules.join(", ");
                    examples.entry(key.clone()).or_insert(rel);
                    *failing.entry(key).or_default() += 1;
                }
            }
        }
    }
    println!(
        "{} device trees: {} compiled, {} with a reusable shared-dma-pool node",
        files.len(),
        compiled,
        with_pool
    );
    println!(
        "{imported} imported ({regions} regions), {passing} pass `heapgen check`, {} do not",
        imported - passing
    );
    if !failing.is_empty() {
        println!("\nwhy the others do not pass (rules `heapgen check` reports; an example):");
        let mut by_count: Vec<_> = failing.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (rules, n) in by_count {
            println!("  {n:5}  {rules}  (e.g. {})", examples[&rules]);
        }
    }
    if !refused.is_empty() {
        println!("\nimport refused:");
        for (why, n) in refused {
            println!("  {n:5}  {why}");
        }
    }
    if !not_compiled.is_empty() {
        println!(
            "\n{} did not compile (first line of the tool's message):",
            not_compiled.values().sum::<usize>()
        );
        for (why, n) in not_compiled.iter().take(10) {
            println!("  {n:5}  {why}");
        }
    }
    if compiled == 0 {
        bail!("no device tree compiled: are cpp and dtc installed?");
    }
    Ok(())
}
