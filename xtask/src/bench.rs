//! `cargo xtask bench [--arch x86_64] [--mode icount|tcg] [--boots N]`: our generated heap
//! against upstream's CMA heap (`default_cma_region`), side by side on the same `cma=` area in
//! the same boot.
//!
//! Every figure is emulated (there is no hardware virtualisation on the test machines). The
//! primary mode runs QEMU with `-icount shift=0,align=off,sleep=off`: the guest clock counts
//! instructions, so figures are deterministic and their unit is the "icount-us" (about 1000 guest
//! instructions). The secondary mode is plain TCG over several boots; it quotes the median of the
//! per-boot ratios. Documentation/benchmarks.rst has the method and the latest figures.

use crate::{
    e2e::{self, Boot, Initramfs},
    ktap::{self, Outcome},
    testbed::{self, Arch, Variant},
    util::{kernel_cmd, repo_root, run, step},
};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    path::Path,
    process::Command,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

/// The benchmark board: one heap over the `cma=` area, 4 KiB alignment, no guards.
const BENCH_BOARD: &str = "tests/bench/qemu-x86_64-bench.toml";
/// B6's board: the same area and policy, with a headroom instead of the pool.
const PRESSURE_BOARD: &str = "tests/bench/qemu-x86_64-pressure.toml";
/// The cgroup `--accounting` runs the benchmark in, two levels below the root like an Android
/// app's `uid_<n>/pid_<n>`: every level is one more page counter to charge.
const BENCH_CGROUP: &str = "uid_10000/pid_1";
/// Upstream's CMA heap on the default (`cma=`) area.
const UPSTREAM_HEAP: &str = "default_cma_region";
/// The kernel command-line addition of every bench boot: no APIC timer calibration busy-wait
/// (about 9 s of every icount boot otherwise).
const APPEND: &str = "nolapic_timer";

/// The host's TSC frequency in kHz (from /proc/cpuinfo), for TCG boots: QEMU's TCG guest reads
/// the host's TSC, and the tinyconfig guest has no HPET or ACPI PM timer, so its only way to
/// calibrate the TSC is the PIT, which fails on a busy host and leaves the guest on jiffies.
/// `tsc_early_khz=` gives it the frequency instead.
fn host_tsc_khz() -> Option<u64> {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = cpuinfo
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    Some((mhz * 1000.0).round() as u64)
}
/// QEMU's deterministic instruction-counting mode.
const ICOUNT: &[&str] = &["-icount", "shift=0,align=off,sleep=off"];
/// A guest clock quantum that means the guest fell back to jiffies (HZ=250).
const JIFFY_NS: u64 = 4_000_000;

/// How the guest is run (`--mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// `-icount shift=0,align=off,sleep=off`: deterministic, unit icount-us.
    Icount,
    /// Plain TCG: wall-clock time of the emulation, noisy from boot to boot.
    Tcg,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Icount => "icount",
            Mode::Tcg => "tcg",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Mode::Icount => "icount-us",
            Mode::Tcg => "TCG-us",
        }
    }

    fn append(self) -> String {
        match (self, host_tsc_khz()) {
            (Mode::Tcg, Some(khz)) => format!("{APPEND} tsc_early_khz={khz}"),
            _ => APPEND.to_string(),
        }
    }

    fn qemu_args(self) -> &'static [&'static str] {
        match self {
            Mode::Icount => ICOUNT,
            Mode::Tcg => &[],
        }
    }
}

/// Options of `cargo xtask bench` beyond `--arch`.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct Options {
    /// Emulation mode.
    #[arg(long, value_enum, default_value = "icount")]
    pub mode: Mode,
    /// Number of boots (default: 1 for icount, which is deterministic; 5 for TCG).
    #[arg(long = "boots", value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    boots: Option<usize>,
    /// Charge the bench heap's buffers to the dmem cgroup (`accounting = true`), to measure
    /// what accounting costs against upstream's heap in the same boot.
    #[arg(long)]
    pub accounting: bool,
    /// Run only B6 (the busy CMA area), which has boots of its own.
    #[arg(long)]
    pub b6_only: bool,
}

impl Options {
    /// Number of boots: `--boots`, else 1 with icount and 5 with TCG.
    pub fn boots(&self) -> usize {
        match (self.boots, self.mode) {
            (Some(n), _) => n,
            (None, Mode::Icount) => 1,
            (None, Mode::Tcg) => 5,
        }
    }
}

/// One row the guest printed for one heap (or for a calibration, heap `-`).
#[derive(Clone, Debug)]
struct Sample {
    row: String,
    op: String,
    size: u64,
    heap: String,
    n: u64,
    median: u64,
    p90: u64,
    min: u64,
    mean: u64,
    /// B6 only: the tail, and failed allocations (all, and those with `ENOMEM`).
    tail: Option<Tail>,
}

/// B6's tail figures of one heap.
#[derive(Clone, Copy, Debug)]
struct Tail {
    p99: u64,
    max: u64,
    fails: u64,
    enomem: u64,
}

/// B4's result for one heap and pass.
#[derive(Clone, Debug)]
struct Capacity {
    heap: String,
    pass: u32,
    buffers: u64,
    bytes: u64,
    allocs: u64,
    frees: u64,
    failed_len: u64,
}

/// Everything one boot produced.
#[derive(Debug, Default)]
struct BootResult {
    info: BTreeMap<String, String>,
    samples: Vec<Sample>,
    capacity: Vec<Capacity>,
    seconds: u64,
}

fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .collect()
}

fn num(f: &BTreeMap<&str, &str>, key: &str) -> Result<u64> {
    f.get(key)
        .with_context(|| format!("no {key}="))?
        .parse()
        .with_context(|| format!("bad {key}="))
}

/// Parses a bench console; fails on guest errors, kernel reports, a missing end, a clock that is
/// not the TSC or medians that look like jiffies.
fn parse_console(console: &str, timed_out: bool, log: &Path) -> Result<BootResult> {
    let mut r = BootResult::default();
    let mut errors = Vec::new();
    let mut done = false;
    let mut ended = false;
    for line in console.lines().map(|l| l.trim_end_matches('\r')) {
        // The first line may carry the firmware's terminal escapes before the marker.
        let line = if line.contains("HEAPGEN-BENCH-END") {
            "HEAPGEN-BENCH-END"
        } else {
            line.find("BENCH").map_or(line, |i| &line[i..])
        };
        if let Some(rest) = line.strip_prefix("BENCH-INFO ") {
            let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
            r.info.insert(k.to_string(), v.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("BENCH-ERROR ") {
            errors.push(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("BENCH-DONE ") {
            done = rest.trim() == "errors=0";
        } else if line.trim() == "HEAPGEN-BENCH-END" {
            ended = true;
        } else if let Some(rest) = line.strip_prefix("BENCH ") {
            let f = fields(rest);
            let row = f.get("row").copied().unwrap_or("?");
            let parsed: Result<()> = (|| {
                if row == "B4" {
                    r.capacity.push(Capacity {
                        heap: f.get("heap").copied().unwrap_or("?").to_string(),
                        pass: num(&f, "pass")? as u32,
                        buffers: num(&f, "buffers")?,
                        bytes: num(&f, "bytes")?,
                        allocs: num(&f, "allocs")?,
                        frees: num(&f, "frees")?,
                        failed_len: num(&f, "failed_len")?,
                    });
                } else if f.contains_key("median_ns") {
                    r.samples.push(Sample {
                        row: row.to_string(),
                        op: f.get("op").copied().unwrap_or("?").to_string(),
                        size: num(&f, "size")?,
                        heap: f.get("heap").copied().unwrap_or("?").to_string(),
                        n: num(&f, "n")?,
                        median: num(&f, "median_ns")?,
                        p90: num(&f, "p90_ns")?,
                        min: num(&f, "min_ns")?,
                        mean: num(&f, "mean_ns")?,
                        tail: if row == "B6" {
                            Some(Tail {
                                p99: num(&f, "p99_ns")?,
                                max: num(&f, "max_ns")?,
                                fails: num(&f, "fails")?,
                                enomem: num(&f, "enomem")?,
                            })
                        } else {
                            None
                        },
                    });
                }
                Ok(())
            })();
            parsed.with_context(|| format!("cannot parse `{line}`"))?;
        }
    }
    // Oops, BUG, WARNING, ... anywhere in the console fail the run, as in e2e.
    let kernel: Vec<String> = ktap::parse(console, timed_out)
        .cases
        .into_iter()
        .filter(|c| c.name == "kernel/console")
        .filter_map(|c| match c.outcome {
            Outcome::Fail(why) => Some(why),
            _ => None,
        })
        .collect();
    errors.extend(kernel);
    if timed_out {
        errors.push("the guest timed out".into());
    }
    if !ended || !done {
        errors.push("the benchmark did not finish (no BENCH-DONE errors=0 / end marker)".into());
    }
    for key in ["clocksource", "clocksource-after"] {
        let clock = r.info.get(key).map(String::as_str).unwrap_or("");
        if clock != "tsc" {
            errors.push(format!(
                "the guest {key} is `{clock}`, not tsc (tsc-early, hpet or jiffies change the unit)"
            ));
        }
    }
    let jiffies: Vec<String> = r
        .samples
        .iter()
        .filter(|s| s.median > 0 && s.median % JIFFY_NS == 0)
        .map(|s| format!("{} {} {} {}", s.row, s.op, s.size, s.heap))
        .collect();
    if !jiffies.is_empty() {
        errors.push(format!(
            "medians that are multiples of 4000 us (a jiffies clock): {}",
            jiffies.join(", ")
        ));
    }
    if !errors.is_empty() {
        bail!(
            "benchmark boot failed (console: {}):\n  {}",
            log.display(),
            errors.join("\n  ")
        );
    }
    Ok(r)
}

fn median_f(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A row's target: the ratio ours/upstream must be at most (`Max`) or at least (`Min`) this.
#[derive(Clone, Copy, Debug)]
enum Target {
    Max(f64),
    Min(f64),
}

impl Target {
    fn met(self, ratio: f64) -> bool {
        match self {
            Target::Max(t) => ratio <= t,
            Target::Min(t) => ratio >= t,
        }
    }

    fn show(self) -> String {
        match self {
            Target::Max(t) => format!("<= {t:.2}x"),
            Target::Min(t) => format!(">= {t:.2}x"),
        }
    }
}

fn target_of(row: &str) -> Option<Target> {
    match row {
        "B1" | "B1a" => Some(Target::Max(1.0)),
        "B2" => Some(Target::Max(0.2)),
        "B3" => Some(Target::Max(0.7)),
        "B4" => Some(Target::Min(1.25)),
        "B5" => Some(Target::Max(0.05)),
        "B6" => Some(Target::Max(0.1)),
        _ => None,
    }
}

/// One line of the summary table.
#[derive(Debug)]
struct Line {
    row: String,
    op: String,
    size: u64,
    ours: Option<(f64, f64)>,
    upstream: Option<(f64, f64)>,
    ratio: Option<f64>,
    ratios: Vec<f64>,
    target: Option<Target>,
}

/// Combines the boots: per heap the median of per-boot medians (and p90s), per row the median of
/// per-boot ratios ours/upstream.
fn summarise(boots: &[BootResult]) -> Vec<Line> {
    let first = &boots[0];
    let mut keys: Vec<(String, String, u64)> = Vec::new();
    for s in &first.samples {
        let k = (s.row.clone(), s.op.clone(), s.size);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let find = |b: &BootResult, k: &(String, String, u64), heap: &str| -> Option<Sample> {
        b.samples
            .iter()
            .find(|s| s.row == k.0 && s.op == k.1 && s.size == k.2 && s.heap == heap)
            .cloned()
    };
    let mut lines = Vec::new();
    for k in keys {
        let agg = |heap: &str| -> Option<(f64, f64)> {
            let mut med = Vec::new();
            let mut p90 = Vec::new();
            for b in boots {
                let s = find(b, &k, heap)?;
                med.push(s.median as f64);
                p90.push(s.p90 as f64);
            }
            Some((median_f(&mut med), median_f(&mut p90)))
        };
        let calibration = find(first, &k, "-").is_some();
        let (ours, upstream) = if calibration {
            (agg("-"), None)
        } else {
            (agg("ours"), agg("upstream"))
        };
        let ratios: Vec<f64> = if calibration {
            Vec::new()
        } else {
            boots
                .iter()
                .filter_map(|b| {
                    let o = find(b, &k, "ours")?;
                    let u = find(b, &k, "upstream")?;
                    // B6 is judged on its tail (p99), the others on their medians.
                    let judged = |s: &Sample| s.tail.map_or(s.median, |t| t.p99);
                    (judged(&u) > 0).then(|| judged(&o) as f64 / judged(&u) as f64)
                })
                .collect()
        };
        let ratio = (!ratios.is_empty()).then(|| median_f(&mut ratios.clone()));
        lines.push(Line {
            target: target_of(&k.0),
            row: k.0,
            op: k.1,
            size: k.2,
            ours,
            upstream,
            ratio,
            ratios,
        });
    }
    // B4: bytes live at the first failure, ours / upstream, per seed ("pass" is the seed's
    // index) of the first boot (the workload is deterministic: later boots repeat it). The row
    // shows the medians over the seeds; the ratio is the median of the per-seed ratios, and the
    // range of those is what `ratios` carries.
    let seeds: Vec<u32> = {
        let mut v: Vec<u32> = first.capacity.iter().map(|c| c.pass).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let cap = |heap: &str, seed: u32| {
        first
            .capacity
            .iter()
            .find(|c| c.heap == heap && c.pass == seed)
            .cloned()
    };
    let pairs: Vec<(Capacity, Capacity)> = seeds
        .iter()
        .filter_map(|&s| Some((cap("ours", s)?, cap("upstream", s)?)))
        .filter(|(_, u)| u.bytes > 0)
        .collect();
    if !pairs.is_empty() {
        let ratios: Vec<f64> = pairs
            .iter()
            .map(|(o, u)| o.bytes as f64 / u.bytes as f64)
            .collect();
        let med = |f: &dyn Fn(&(Capacity, Capacity)) -> f64| {
            median_f(&mut pairs.iter().map(f).collect::<Vec<_>>())
        };
        lines.push(Line {
            row: "B4".into(),
            op: format!("capacity-bytes ({} seeds)", pairs.len()),
            size: 0,
            ours: Some((med(&|p| p.0.bytes as f64), med(&|p| p.0.buffers as f64))),
            upstream: Some((med(&|p| p.1.bytes as f64), med(&|p| p.1.buffers as f64))),
            ratio: Some(median_f(&mut ratios.clone())),
            ratios,
            target: target_of("B4"),
        });
    }
    lines
}

fn size_str(size: u64) -> String {
    match size {
        0 => "-".into(),
        s if s % (1 << 20) == 0 => format!("{}M", s >> 20),
        s if s % (1 << 10) == 0 => format!("{}K", s >> 10),
        s => s.to_string(),
    }
}

/// The table as printed (and pasted into Documentation/benchmarks.rst).
fn table(lines: &[Line], mode: Mode, boots: usize) -> String {
    let us = |ns: f64| match ns / 1000.0 {
        v if v < 10.0 => format!("{v:.3}"),
        v if v < 100.0 => format!("{v:.2}"),
        v => format!("{v:.1}"),
    };
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<10} {:<24} {:>5} {:>10} {:>10} {:>10} {:>10} {:>7} {:>9} {:>4}",
        "ROW",
        "OPERATION",
        "SIZE",
        "OURS-MED",
        "OURS-P90",
        "UPS-MED",
        "UPS-P90",
        "RATIO",
        "TARGET",
        "MET"
    );
    for l in lines {
        let (om, op, um, up) = if l.row == "B4" {
            let mib = |b: f64| format!("{:.1}M", b / (1u64 << 20) as f64);
            let o = l.ours.unwrap_or_default();
            let u = l.upstream.unwrap_or_default();
            (
                mib(o.0),
                format!("{} buf", o.1),
                mib(u.0),
                format!("{} buf", u.1),
            )
        } else {
            let o = l.ours.map(|(m, p)| (us(m), us(p)));
            let u = l.upstream.map(|(m, p)| (us(m), us(p)));
            let (om, op) = o.unwrap_or(("-".into(), "-".into()));
            let (um, up) = u.unwrap_or(("-".into(), "-".into()));
            (om, op, um, up)
        };
        let ratio = l.ratio.map_or("-".into(), |r| format!("{r:.3}"));
        let (target, met) = match (l.target, l.ratio) {
            (Some(t), Some(r)) => (t.show(), if t.met(r) { "yes" } else { "NO" }),
            _ => ("-".into(), ""),
        };
        let _ = writeln!(
            t,
            "{:<10} {:<24} {:>5} {:>10} {:>10} {:>10} {:>10} {:>7} {:>9} {:>4}",
            l.row,
            l.op,
            size_str(l.size),
            om,
            op,
            um,
            up,
            ratio,
            target,
            met
        );
    }
    let _ = writeln!(
        t,
        "times in {} (medians and p90 of per-boot figures over {boots} boot(s)); RATIO = ours/upstream{}",
        mode.unit(),
        if boots > 1 {
            ", median of per-boot ratios"
        } else {
            ""
        }
    );
    let _ = writeln!(
        t,
        "B4: MiB (and buffers) live at the first failed allocation, medians over the seeds; B5: a pool hit (ours, pool idle) vs upstream's allocation; B6: 8M camera frames on a busy area (ours with a headroom), RATIO of the p99s (failed allocations timed too)"
    );
    if let Some(b4) = lines.iter().find(|l| l.row == "B4") {
        let per_seed: Vec<String> = b4.ratios.iter().map(|r| format!("{r:.3}")).collect();
        let _ = writeln!(t, "B4 per-seed ratios: {}", per_seed.join(" "));
    }
    t
}

fn git(args: &[&str]) -> String {
    Command::new("git")
        .args(args)
        .current_dir(repo_root())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn qemu_version(arch: Arch) -> String {
    let (qemu, _) = e2e::qemu_base(arch, Variant::Default);
    Command::new(qemu)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

fn sample_json(s: &Sample) -> Value {
    let mut v = json!({
        "row": s.row, "op": s.op, "size": s.size, "heap": s.heap, "n": s.n,
        "median_ns": s.median, "p90_ns": s.p90, "min_ns": s.min, "mean_ns": s.mean,
    });
    if let (Some(t), Some(map)) = (s.tail, v.as_object_mut()) {
        map.insert("p99_ns".into(), json!(t.p99));
        map.insert("max_ns".into(), json!(t.max));
        map.insert("fails".into(), json!(t.fails));
        map.insert("enomem".into(), json!(t.enomem));
    }
    v
}

/// B6 per boot and heap: the distribution's tail and the failures, which the main table (medians
/// and p90s) leaves out.
fn b6_table(boots: &[BootResult], mode: Mode) -> String {
    let us = |ns: u64| format!("{:.1}", ns as f64 / 1e3);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "B6 (busy area, {}): {:<4} {:<9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>6}",
        mode.unit(),
        "BOOT",
        "HEAP",
        "N",
        "MEDIAN",
        "P99",
        "MAX",
        "P99-RATIO",
        "FAILS"
    );
    for (i, b) in boots.iter().enumerate() {
        let of = |heap: &str| b.samples.iter().find(|s| s.row == "B6" && s.heap == heap);
        let ratio = match (
            of("ours").and_then(|s| s.tail),
            of("upstream").and_then(|s| s.tail),
        ) {
            (Some(o), Some(u)) if u.p99 > 0 => match o.p99 as f64 / u.p99 as f64 {
                r if r < 0.001 => format!("{r:.2e}"),
                r => format!("{r:.4}"),
            },
            _ => "-".into(),
        };
        for heap in ["ours", "upstream"] {
            let Some(s) = of(heap) else { continue };
            let Some(tail) = s.tail else { continue };
            let _ = writeln!(
                t,
                "{:<24}{:<4} {:<9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>6}",
                "",
                i + 1,
                heap,
                s.n,
                us(s.median),
                us(tail.p99),
                us(tail.max),
                if heap == "ours" { ratio.as_str() } else { "" },
                tail.fails
            );
        }
    }
    t
}

/// One benchmark board built into an initramfs.
struct Prepared {
    /// Our heap.
    ours: String,
    initrd: std::path::PathBuf,
}

/// Generates `board_file` into `work`, builds its module, the test importer and the guest
/// benchmark, and packs them with `bench.conf` (our heap, upstream's, the cgroup if any) and
/// `bench.args` (the benchmark's options).
fn prepare(
    kernel: &testbed::Kernel,
    board_file: &Path,
    work: &Path,
    cgroup: Option<&str>,
    args: &str,
    accounting: bool,
) -> Result<Prepared> {
    let arch = kernel.arch;
    let _ = fs::remove_dir_all(work);
    fs::create_dir_all(work)?;
    let module_dir = work.join("module");
    step(format!("bench: generating {}", board_file.display()));
    let board = e2e::generate(board_file, &module_dir)?;
    if accounting && !board.regions.iter().all(|r| r.accounting) {
        bail!("{}: accounting is not on", board_file.display());
    }
    let ours = board
        .heaps
        .first()
        .map(|h| h.name.clone())
        .context("the bench board has no heap")?;
    step(format!(
        "bench: building {}.ko and the test importer against {}",
        board.module, kernel.release
    ));
    let ko = e2e::build_module(kernel, &module_dir, &board.module, &[])?;
    let importer = e2e::build_importer(kernel, work)?;
    let programs = work.join("programs");
    fs::create_dir_all(&programs)?;
    let mut cc = kernel_cmd(arch.guest_cc());
    cc.args(["-static", "-O2", "-Wall", "-Werror"])
        .arg(format!("-I{}", kernel.build.join("usr/include").display()))
        .arg(format!("-I{}", repo_root().join("tests/guest").display()))
        .arg("-o")
        .arg(programs.join("heapgen-bench"))
        .arg(repo_root().join("tests/bench/heapgen_bench.c"));
    run(&mut cc).context("building the guest benchmark")?;
    let conf = match cgroup {
        Some(cgroup) => format!("{ours} {UPSTREAM_HEAP} {cgroup}\n"),
        None => format!("{ours} {UPSTREAM_HEAP}\n"),
    };
    let initrd = e2e::make_initramfs(
        arch,
        work,
        &Initramfs {
            modules: vec![importer, ko],
            programs: Some(&programs),
            init: repo_root().join("tests/bench/init.sh"),
            files: vec![
                ("etc/heapgen/bench.conf".into(), conf),
                ("etc/heapgen/bench.args".into(), format!("{args}\n")),
            ],
            userland: e2e::Userland::Busybox,
        },
    )?;
    Ok(Prepared { ours, initrd })
}

/// Boots `prepared` `n` times in `mode` and parses each console.
fn boot_n(
    kernel: &testbed::Kernel,
    prepared: &Prepared,
    work: &Path,
    mode: Mode,
    n: usize,
) -> Result<Vec<BootResult>> {
    let append = mode.append();
    let mut boots = Vec::new();
    for i in 0..n {
        let log = work.join(format!("console-{}-{i}.log", mode.name()));
        step(format!(
            "bench: boot {}/{n} ({}, console: {})",
            i + 1,
            mode.name(),
            log.display()
        ));
        let start = Instant::now();
        let (console, timed_out) = e2e::boot(
            &Boot {
                kernel,
                initrd: &prepared.initrd,
                dtb: None,
                append: &append,
                qemu_args: mode.qemu_args(),
                // One vCPU, as the published figures were measured.
                cpus: 1,
            },
            &log,
        )?;
        let mut r = parse_console(&console, timed_out, &log)?;
        r.seconds = start.elapsed().as_secs();
        step(format!(
            "bench: boot {} done in {}s (clocksource {}, cpu flags: {})",
            i + 1,
            r.seconds,
            r.info.get("clocksource").map_or("?", String::as_str),
            r.info.get("cpu-flags").map_or("?", String::as_str)
        ));
        boots.push(r);
    }
    Ok(boots)
}

/// `cargo xtask bench`: builds everything, boots `opts.boots()` times for B1-B5 and as many
/// times again for B6 (whose busy area lasts for the rest of a boot), prints the table and
/// writes the JSON.
pub fn run_bench(arch: Arch, opts: &Options) -> Result<()> {
    if arch != Arch::X86_64 {
        bail!(
            "cargo xtask bench runs on the x86_64 test bed only (its `cma=` area is shared by \
             upstream's default_cma_region heap and the bench board)"
        );
    }
    let kernel = testbed::ensure_kernel(arch, Variant::Default)?;
    let work = repo_root().join("target/bench").join(arch.name());
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let mut board_file = repo_root().join(BENCH_BOARD);
    if opts.accounting {
        // The bench board's only region is its last table: the key lands in it. The buffers are
        // charged to the cgroup the benchmark runs in (`BENCH_CGROUP`).
        let text = fs::read_to_string(&board_file)?;
        board_file = work.join("bench-accounting.toml");
        fs::write(&board_file, format!("{text}accounting = true\n"))?;
    }
    let n_boots = opts.boots();
    if opts.mode == Mode::Tcg && n_boots < 5 {
        step(format!(
            "note: {n_boots} TCG boot(s); quote TCG ratios from at least 5 boots"
        ));
    }
    let mut boots = Vec::new();
    let mut ours = String::new();
    if !opts.b6_only {
        let main_work = work.join("main");
        let prepared = prepare(
            &kernel,
            &board_file,
            &main_work,
            opts.accounting.then_some(BENCH_CGROUP),
            "",
            opts.accounting,
        )?;
        ours = prepared.ours.clone();
        boots = boot_n(&kernel, &prepared, &main_work, opts.mode, n_boots)?;
    }
    let b6_work = work.join("b6");
    let b6 = prepare(
        &kernel,
        &repo_root().join(PRESSURE_BOARD),
        &b6_work,
        None,
        "--pressure",
        false,
    )?;
    let b6_boots = boot_n(&kernel, &b6, &b6_work, opts.mode, n_boots)?;
    if ours.is_empty() {
        ours = b6.ours.clone();
    }
    // B6 rows join each main boot's rows (boot i with B6 boot i), so that every summary is
    // over the same number of boots.
    if boots.is_empty() {
        boots = b6_boots;
    } else {
        for (main, b6) in boots.iter_mut().zip(b6_boots) {
            main.samples.extend(b6.samples);
            main.seconds += b6.seconds;
            for (k, v) in b6.info {
                main.info.entry(format!("b6-{k}")).or_insert(v);
            }
        }
    }
    let append = opts.mode.append();
    let lines = summarise(&boots);
    let qemu = qemu_version(arch);
    let (_, base) = e2e::qemu_base(arch, Variant::Default);
    let info = &boots[0].info;
    let text = table(&lines, opts.mode, boots.len());
    println!();
    println!(
        "heapgen {}{} vs upstream {} on the same cma=128M area, Linux {}, emulated ({}):",
        ours,
        if opts.accounting {
            " (accounting = true, charged to its cgroup uid_10000/pid_1)"
        } else {
            ""
        },
        UPSTREAM_HEAP,
        kernel.release,
        match opts.mode {
            Mode::Icount => "QEMU -icount shift=0,align=off,sleep=off",
            Mode::Tcg => "QEMU TCG, no icount",
        }
    );
    println!(
        "{qemu}; -cpu {}; guest flags: {}; clocksource {}",
        base.iter()
            .skip_while(|a| **a != "-cpu")
            .nth(1)
            .unwrap_or(&"?"),
        info.get("cpu-flags").map_or("?", String::as_str),
        info.get("clocksource").map_or("?", String::as_str)
    );
    println!();
    print!("{text}");
    let b6_text = b6_table(&boots, opts.mode);
    println!();
    print!("{b6_text}");

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let summary: Vec<Value> = lines
        .iter()
        .map(|l| {
            let heap = |v: Option<(f64, f64)>| match (l.row.as_str(), v) {
                ("B4", Some((bytes, buffers))) => json!({"bytes": bytes, "buffers": buffers}),
                (_, Some((m, p))) => json!({"median_ns": m, "p90_ns": p}),
                (_, None) => Value::Null,
            };
            json!({
                "row": l.row, "op": l.op, "size": l.size,
                "ours": heap(l.ours), "upstream": heap(l.upstream),
                "ratio": l.ratio, "ratios_per_boot": l.ratios,
                "target": l.target.map(Target::show),
                "met": match (l.target, l.ratio) { (Some(t), Some(r)) => Some(t.met(r)), _ => None },
            })
        })
        .collect();
    let per_boot: Vec<Value> = boots
        .iter()
        .map(|b| {
            json!({
                "info": b.info,
                "seconds": b.seconds,
                "rows": b.samples.iter().map(sample_json).collect::<Vec<_>>(),
                "capacity": b.capacity.iter().map(|c| json!({
                    "heap": c.heap, "pass": c.pass, "buffers": c.buffers, "bytes": c.bytes,
                    "allocs": c.allocs, "frees": c.frees, "failed_len": c.failed_len,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let doc = json!({
        "emulated": true,
        "mode": opts.mode.name(),
        "unit": opts.mode.unit(),
        "arch": arch.name(),
        "boots": boots.len(),
        "qemu": qemu,
        "qemu_args": base.iter().chain(opts.mode.qemu_args()).collect::<Vec<_>>(),
        "append": append,
        "kernel": kernel.release,
        "ours": ours,
        "upstream": UPSTREAM_HEAP,
        "board": BENCH_BOARD,
        "b6_board": PRESSURE_BOARD,
        "b6_ours": b6.ours,
        "accounting": opts.accounting,
        "git_commit": git(&["rev-parse", "HEAD"]),
        "git_dirty": git(&["status", "--porcelain", "--", "heaps", "templates", "tests/bench", "tests/kernel/importer"]),
        "unix_time": now,
        "summary": summary,
        "per_boot": per_boot,
        "table": text,
        "b6_table": b6_text,
    });
    let out_dir = repo_root().join("target/bench");
    let stem = format!(
        "{}-{}{}",
        arch.name(),
        opts.mode.name(),
        if opts.accounting { "-accounting" } else { "" }
    );
    let latest = out_dir.join(format!("{stem}.json"));
    let stamped = out_dir.join(format!("{stem}-{now}.json"));
    let body = serde_json::to_string_pretty(&doc)?;
    fs::write(&latest, &body)?;
    fs::write(&stamped, &body)?;
    println!();
    println!("results: {} (and {})", latest.display(), stamped.display());
    Ok(())
}
