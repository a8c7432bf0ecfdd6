//! `cargo xtask`: the project's development tasks (the rust-analyzer pattern).
//!
//! - `cargo xtask testbed [--arch A] [--kernel 6.12|7.2|7.3] [--cc gcc|llvm] [--debug-kernel]`:
//!   install and build the kernel test bed.
//! - `cargo xtask e2e [--arch A] [--kernel K] [--cc C] [--debug-kernel] [--board F]...`: guest
//!   tests in QEMU.
//! - `cargo xtask test [--full]`: host tests, clippy, fmt, then e2e on the kernel matrix.
//! - `cargo xtask demo`: generate the example board, boot it, show its heaps.
//! - `cargo xtask bench [--mode icount|tcg] [--boots N] [--accounting]`: our heap vs upstream's,
//!   emulated.
//! - `cargo xtask build [--board F]...`: build every board's module (or the given ones) the
//!   ways Yocto, Buildroot and Kleaf build it, without booting.
//! - `cargo xtask integration [--kleaf DIR] [--buildroot DIR] [--oe-core DIR --bitbake DIR]`:
//!   the build systems' own tools on every board's generated files.
//! - `cargo xtask bindings`: regenerate the runtime's raw bindings from `heapgen_abi.h`.
//! - `cargo xtask fuzz [--minutes N] [--threads N]`: fuzz the generator (`fuzz/mod.rs`);
//!   `--replay FILE` runs one input with every oracle.
//! - `cargo xtask import-corpus [--kernel-src DIR] [--jobs N]`: `heapgen import` over a kernel
//!   tree's arm64 device trees; how many import and pass `heapgen check`, and why not.

mod bench;
mod bindings;
mod devicetree;
mod e2e;
mod ecosystem;
mod fuzz;
mod import_corpus;
mod integration;
mod invocation;
mod ktap;
mod testbed;
mod util;

use anyhow::{bail, Result};
use ktap::{Case, Outcome, Report};
use std::{
    panic::AssertUnwindSafe,
    path::PathBuf,
    process::Command,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex, PoisonError,
    },
};
use testbed::{Arch, Cc, Series, Spec, Variant};
use util::{repo_root, step};

struct Args {
    arch: Option<Arch>,
    variant: Variant,
    series: Series,
    cc: Cc,
    full: bool,
    boards: Vec<PathBuf>,
    trees: integration::Trees,
}

impl Args {
    /// The kernel the arguments select (x86_64 unless `--arch`).
    fn spec(&self) -> Spec {
        Spec {
            series: self.series,
            arch: self.arch.unwrap_or(Arch::X86_64),
            variant: self.variant,
            cc: self.cc,
        }
    }
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args> {
    let mut args = Args {
        arch: None,
        variant: Variant::Default,
        series: Series::V7_2,
        cc: Cc::Gcc,
        full: false,
        boards: Vec::new(),
        trees: integration::Trees::default(),
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--arch" => {
                let v = it.next().unwrap_or_default();
                args.arch = Some(Arch::parse(&v)?);
            }
            "--debug-kernel" => args.variant = Variant::Debug,
            "--variant" => args.variant = Variant::parse(&it.next().unwrap_or_default())?,
            "--kernel" => args.series = Series::parse(&it.next().unwrap_or_default())?,
            "--cc" => args.cc = Cc::parse(&it.next().unwrap_or_default())?,
            "--full" => args.full = true,
            "--board" => args
                .boards
                .push(PathBuf::from(it.next().unwrap_or_default())),
            "--kleaf" => args.trees.kleaf = Some(PathBuf::from(it.next().unwrap_or_default())),
            "--buildroot" => {
                args.trees.buildroot = Some(PathBuf::from(it.next().unwrap_or_default()))
            }
            "--oe-core" => args.trees.oe_core = Some(PathBuf::from(it.next().unwrap_or_default())),
            "--bitbake" => args.trees.bitbake = Some(PathBuf::from(it.next().unwrap_or_default())),
            // `cargo xtask bench` reads these itself (bench::Options::from_args).
            "--mode" | "--boots" => {
                it.next();
            }
            "--accounting" => {}
            _ => bail!("unknown argument `{a}`\n{USAGE}"),
        }
    }
    Ok(args)
}

const USAGE: &str = "usage: cargo xtask <testbed|e2e|test|demo|bench|bindings|build|integration|fuzz|import-corpus> [--arch x86_64|arm64] [--kernel 6.12|7.2|7.3] [--cc gcc|llvm] [--debug-kernel] [--variant default|debug|16k|gki|debug-16k] [--full] [--board FILE]... [--mode icount|tcg] [--boots N] [--accounting] [--kleaf DIR] [--buildroot DIR] [--oe-core DIR --bitbake DIR]";

/// The kernels `cargo xtask test` runs end to end: 7.2 on x86_64 and arm64 with GCC; the debug
/// checkers (KASAN, lockdep, kmemleak; LLVM) on x86_64 and on arm64 with 16 KiB pages; 6.12 LTS
/// with the GKI exports, on arm64 with GKI's kCFI and shadow call stacks (LLVM); and the next
/// kernel, 7.3, on x86_64.
const TEST_MATRIX: &[Spec] = &[
    Spec {
        series: Series::V7_2,
        arch: Arch::X86_64,
        variant: Variant::Default,
        cc: Cc::Gcc,
    },
    Spec {
        series: Series::V7_2,
        arch: Arch::Arm64,
        variant: Variant::Default,
        cc: Cc::Gcc,
    },
    Spec {
        series: Series::V7_2,
        arch: Arch::X86_64,
        variant: Variant::Debug,
        cc: Cc::Llvm,
    },
    // The arm64 board (fallback chains, a protected region, pools over an area of their own)
    // under the checkers, in the page size of Android's kernel_aarch64_16k: KASAN sees
    // page-size arithmetic that goes wrong. (4 KiB pages without the checkers above.)
    Spec {
        series: Series::V7_2,
        arch: Arch::Arm64,
        variant: Variant::Debug16K,
        cc: Cc::Llvm,
    },
    Spec {
        series: Series::V6_12,
        arch: Arch::X86_64,
        variant: Variant::Default,
        cc: Cc::Gcc,
    },
    // Android's GKI vendor modules are mostly arm64, built with clang, kCFI and shadow call
    // stacks.
    Spec {
        series: Series::V6_12,
        arch: Arch::Arm64,
        variant: Variant::Gki,
        cc: Cc::Llvm,
    },
    // The next kernel, to find API changes early.
    Spec {
        series: Series::V7_3,
        arch: Arch::X86_64,
        variant: Variant::Default,
        cc: Cc::Gcc,
    },
];

/// What `cargo xtask test --full` adds: the arm64 checkers in 4 KiB pages, 16 KiB pages without
/// the checkers, and a non-debug LLVM build of 7.2 (an Android kernel's compiler without the
/// debug options).
const FULL_MATRIX: &[Spec] = &[
    Spec {
        series: Series::V7_2,
        arch: Arch::Arm64,
        variant: Variant::Debug,
        cc: Cc::Llvm,
    },
    Spec {
        series: Series::V7_2,
        arch: Arch::Arm64,
        variant: Variant::Pages16K,
        cc: Cc::Gcc,
    },
    Spec {
        series: Series::V7_2,
        arch: Arch::X86_64,
        variant: Variant::Default,
        cc: Cc::Llvm,
    },
];

/// Counts allocations per thread: the fuzzer's memory bound (`fuzz/alloc.rs`).
#[global_allocator]
static ALLOCATOR: fuzz::alloc::Counting = fuzz::alloc::Counting;

fn main() {
    let mut argv = std::env::args().skip(1);
    let cmd = argv.next().unwrap_or_default();
    if cmd == "fuzz" {
        if let Err(e) = fuzz::cmd_fuzz(argv) {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    if cmd == "import-corpus" {
        if let Err(e) = import_corpus::cmd_import_corpus(argv) {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    let result = parse_args(argv).and_then(|args| match cmd.as_str() {
        "testbed" => testbed::cmd_testbed(args.spec()),
        "e2e" => {
            let report = e2e::cmd_e2e(args.spec(), &args.boards)?;
            finish(&report)
        }
        "test" => cmd_test(args.full),
        "bench" => bench::cmd_bench(args.arch.unwrap_or(Arch::X86_64)),
        "demo" => cmd_demo(),
        "bindings" => bindings::cmd_bindings(),
        "integration" => finish(&integration::cmd_integration(&args.trees)?),
        "build" => {
            let boards = if args.boards.is_empty() {
                board_files()?
            } else {
                args.boards.clone()
            };
            let report = Report {
                cases: build_every_board(&boards),
            };
            finish(&report)
        }
        _ => bail!("{USAGE}"),
    });
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Prints the summary line and fails when anything failed.
fn finish(report: &Report) -> Result<()> {
    println!(
        "{} passed, {} failed, {} skipped",
        report.passed(),
        report.failed(),
        report.skipped()
    );
    if report.failed() > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// Runs one host step (a cargo command) and records it as a case.
fn host_step(report: &mut Report, name: &str, args: &[&str]) {
    step(format!("host: cargo {}", args.join(" ")));
    let status = Command::new("cargo")
        .args(args)
        .current_dir(repo_root())
        .status();
    let outcome = match status {
        Ok(s) if s.success() => Outcome::Pass,
        Ok(s) => Outcome::Fail(format!("cargo {} failed ({s})", args.join(" "))),
        Err(e) => Outcome::Fail(format!("cannot run cargo: {e}")),
    };
    if let Outcome::Fail(why) = &outcome {
        eprintln!("FAIL host/{name}: {why}");
    }
    report.cases.push(Case {
        name: format!("host/{name}"),
        outcome,
    });
}

/// Every board file in board-configs/, sorted.
fn board_files() -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo_root().join("board-configs"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    Ok(v)
}

/// Generates every board's module and builds it (without booting) against the default test-bed
/// kernel of its architecture in each build system's way ([`invocation::Style`]), with zero
/// warnings; checks that kernel against the board's generated kernel config fragment, and the
/// Android symbol list of the Kleaf-built module.
fn build_every_board(boards: &[PathBuf]) -> Vec<Case> {
    let mut cases = Vec::new();
    for board_file in boards {
        let stem = util::file_stem(board_file);
        let prepared = (|| -> Result<(heapgen::ir::Board, testbed::Kernel, PathBuf)> {
            let board = heapgen::load(board_file)
                .map_err(|d| anyhow::anyhow!("{} is not valid:\n{d}", board_file.display()))?
                .board;
            let kernel = testbed::kernel_for_board(&board)?;
            let work = repo_root().join("target/build").join(&stem);
            let _ = std::fs::remove_dir_all(&work);
            e2e::generate(board_file, &work.join("generated"))?;
            Ok((board, kernel, work))
        })();
        let (board, kernel, work) = match prepared {
            Ok(p) => p,
            Err(e) => {
                eprintln!("FAIL build/{stem}: {e:#}");
                cases.push(Case {
                    name: format!("build/{stem}"),
                    outcome: Outcome::Fail(format!("{e:#}")),
                });
                continue;
            }
        };
        let prefix = format!("build/{}/{stem}", kernel.arch.name());
        let generated = work.join("generated");
        let mut push = |name: String, outcome: Outcome| {
            if let Outcome::Fail(why) = &outcome {
                eprintln!("FAIL {name}: {why}");
            }
            cases.push(Case { name, outcome });
        };
        for style in invocation::Style::ALL {
            let built = invocation::build(&kernel, &generated, &work, &board.module, style, &[]);
            let name = format!("{prefix}/{}", style.name());
            match built {
                Ok(ko) => {
                    push(name, Outcome::Pass);
                    if style == invocation::Style::Kleaf {
                        push(
                            format!("{prefix}/kmi-symbols"),
                            e2e::kmi_symbols_outcome(&ko),
                        );
                    }
                }
                Err(e) => push(name, Outcome::Fail(format!("{e:#}"))),
            }
        }
        // The generated kernel config fragment holds for the kernel the module runs on.
        let fragment = (|| -> Result<()> {
            let fragment = generated.join(format!("{}-heaps.config", board.name));
            let missing = testbed::missing_options(
                &std::fs::read_to_string(kernel.build.join(".config"))?,
                &std::fs::read_to_string(&fragment)?,
            );
            if !missing.is_empty() {
                anyhow::bail!(
                    "{} asks for options the test-bed kernel does not have: {}",
                    fragment.display(),
                    missing.join(", ")
                );
            }
            Ok(())
        })();
        push(
            format!("{prefix}/config-fragment"),
            match fragment {
                Ok(()) => Outcome::Pass,
                Err(e) => Outcome::Fail(format!("{e:#}")),
            },
        );
    }
    cases
}

/// Generates the x86_64 test board once and builds that same tree, unchanged, against every
/// x86_64 kernel of the matrix: the generator takes no kernel version. A kernel without the dmem
/// cgroup controller must refuse the board's `accounting` with the generated message instead.
fn build_once_everywhere(specs: &[Spec]) -> Case {
    let name = "build/generated-once/qemu-x86_64".to_string();
    let result = (|| -> Result<()> {
        let work = repo_root().join("target/build-once");
        let _ = std::fs::remove_dir_all(&work);
        let generated = work.join("generated");
        let board = e2e::generate(
            &repo_root().join("board-configs/qemu-x86_64.toml"),
            &generated,
        )?;
        for spec in specs.iter().filter(|s| s.arch == Arch::X86_64) {
            let kernel = testbed::ensure(*spec)?;
            let dir = work.join(spec.label());
            util::run(Command::new("cp").arg("-a").arg(&generated).arg(&dir))?;
            if !spec.series.has_dmem_cgroup() && board.regions.iter().any(|r| r.accounting) {
                if let Outcome::Fail(why) = e2e::expect_no_dmem_error(&kernel, &dir, &board.module)
                {
                    anyhow::bail!("{}: {why}", spec.label());
                }
                continue;
            }
            e2e::build_module(&kernel, &dir, &board.module, &[])?;
        }
        Ok(())
    })();
    let outcome = match result {
        Ok(()) => Outcome::Pass,
        Err(e) => {
            eprintln!("FAIL {name}: {e:#}");
            Outcome::Fail(format!("{e:#}"))
        }
    };
    Case { name, outcome }
}

/// How many jobs `cargo xtask test` runs at once. Two: on the two-core machine CI runs on, a guest
/// keeps about one core busy (its tests are mostly one thread) and a build or a host step the
/// other; kernel builds never overlap (`testbed::ensure` takes one at a time).
const TEST_WORKERS: usize = 2;

/// One independent part of `cargo xtask test`: what it returns are its cases.
struct Job<'a> {
    name: String,
    /// Roughly how long it runs on a warm cache, in seconds: the longest start first, so that
    /// neither worker is left alone at the end. Only the order of starting depends on it.
    weight: u32,
    run: Box<dyn FnOnce() -> Vec<Case> + Send + 'a>,
}

impl<'a> Job<'a> {
    fn new(
        name: impl Into<String>,
        weight: u32,
        run: impl FnOnce() -> Vec<Case> + Send + 'a,
    ) -> Self {
        Job {
            name: name.into(),
            weight,
            run: Box::new(run),
        }
    }
}

/// Runs `jobs` on `workers` threads and returns their cases in the order of `jobs`, whatever the
/// order they finished in: the report is the same from run to run. A job that panics is a
/// failed case of its own.
fn run_jobs(jobs: Vec<Job<'_>>, workers: usize) -> Vec<Case> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].weight));
    let names: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
    let runs: Vec<Mutex<Option<_>>> = jobs.into_iter().map(|j| Mutex::new(Some(j.run))).collect();
    let results: Vec<Mutex<Vec<Case>>> = names.iter().map(|_| Mutex::new(Vec::new())).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let Some(run) = runs[i]
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take()
                    else {
                        continue;
                    };
                    let cases =
                        std::panic::catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|_| {
                            eprintln!("FAIL job/{}: panicked", names[i]);
                            vec![Case {
                                name: format!("job/{}", names[i]),
                                outcome: Outcome::Fail("the job panicked".into()),
                            }]
                        });
                    *results[i].lock().unwrap_or_else(PoisonError::into_inner) = cases;
                }
            });
        }
    });
    results
        .into_iter()
        .flat_map(|r| r.into_inner().unwrap_or_else(PoisonError::into_inner))
        .collect()
}

/// The host steps, in order: they share cargo's build directory, so they would only wait for
/// each other's lock on two workers.
fn host_steps() -> Vec<Case> {
    let mut report = Report::default();
    host_step(&mut report, "fmt", &["fmt", "--all", "--check"]);
    host_step(
        &mut report,
        "clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    );
    host_step(&mut report, "test", &["test", "--workspace"]);
    report.cases.push(Case {
        name: "host/bindings-fresh".to_string(),
        outcome: match bindings::check() {
            Ok(()) => Outcome::Pass,
            Err(e) => {
                eprintln!("FAIL host/bindings-fresh: {e:#}");
                Outcome::Fail(format!("{e:#}"))
            }
        },
    });
    // A bounded fuzzing run: a minute on one thread, the other jobs need the other core.
    host_step(
        &mut report,
        "fuzz",
        &["xtask", "fuzz", "--seconds", "60", "--threads", "1"],
    );
    report.cases
}

/// The rough warm-cache time of a matrix cell's guest run, for [`Job::weight`].
fn e2e_weight(spec: Spec) -> u32 {
    match (spec.variant, spec.arch) {
        (Variant::Debug16K, _) | (Variant::Debug, Arch::Arm64) => 120,
        (Variant::Debug, Arch::X86_64) => 75,
        (_, Arch::Arm64) => 45,
        (_, Arch::X86_64) => 20,
    }
}

/// A harness self-test's case, reported as it finishes.
fn selftest(case: Case) -> Vec<Case> {
    if let Outcome::Fail(why) = &case.outcome {
        eprintln!("FAIL {}: {why}", case.name);
    }
    vec![case]
}

fn cmd_test(full: bool) -> Result<()> {
    let boards = board_files()?;
    let extra = if full { FULL_MATRIX } else { &[] };
    let matrix: Vec<Spec> = TEST_MATRIX.iter().chain(extra).copied().collect();
    let boards = &boards;
    let matrix = &matrix;
    let mut jobs = vec![
        Job::new("host", 150, host_steps),
        Job::new("ecosystem", 20, ecosystem::run),
        // Every board's generated module builds against its architecture's test-bed kernel with
        // zero warnings (the test boards are also booted below).
        Job::new("build", 60, move || build_every_board(boards)),
        Job::new("devicetree", 10, move || {
            devicetree::check_boards(boards, &repo_root().join("target/dt"))
        }),
        Job::new("build-once", 30, move || {
            vec![build_once_everywhere(matrix)]
        }),
    ];
    for &spec in matrix {
        jobs.push(Job::new(
            format!("e2e/{}", spec.label()),
            e2e_weight(spec),
            move || match e2e::cmd_e2e(spec, &[]) {
                Ok(r) => r.cases,
                Err(e) => {
                    eprintln!("FAIL e2e/{}: {e:#}", spec.label());
                    vec![Case {
                        name: format!("e2e/{}", spec.label()),
                        outcome: Outcome::Fail(format!("{e:#}")),
                    }]
                }
            },
        ));
    }
    let x86 = |variant, cc| Spec {
        series: Series::V7_2,
        arch: Arch::X86_64,
        variant,
        cc,
    };
    // A module whose init fails leaves nothing behind (x86_64: booted without its `cma=` area).
    jobs.push(Job::new("failed-load", 15, move || {
        e2e::failed_load(x86(Variant::Default, Cc::Gcc))
    }));
    // The harness itself: a heap that does not zero must fail the suite (one kernel is enough;
    // the harness code is the same).
    jobs.extend([
        Job::new("selftest/no-zero", 15, || {
            selftest(e2e::selftest_no_zero(Arch::X86_64, Variant::Default))
        }),
        // And a real kernel warning, and a real lockdep report (the debug kernel has lockdep).
        Job::new("selftest/warn", 10, move || {
            selftest(e2e::selftest_kernel_report(
                x86(Variant::Default, Cc::Gcc),
                "warn",
                "cut here",
            ))
        }),
        Job::new("selftest/lockdep", 30, move || {
            selftest(e2e::selftest_kernel_report(
                x86(Variant::Debug, Cc::Llvm),
                "lockdep",
                "possible circular locking",
            ))
        }),
        // And a mistyped indirect call on the GKI-hardened kernel (kCFI).
        Job::new("selftest/cfi", 12, || {
            selftest(e2e::selftest_kernel_report(
                Spec {
                    series: Series::V6_12,
                    arch: Arch::Arm64,
                    variant: Variant::Gki,
                    cc: Cc::Llvm,
                },
                "cfi",
                "CFI failure",
            ))
        }),
    ]);
    finish(&Report {
        cases: run_jobs(jobs, TEST_WORKERS),
    })
}

/// `cargo xtask demo`: set up, generate the example board, build, boot, and show what its heaps
/// do next to upstream's.
fn cmd_demo() -> Result<()> {
    let board_file = repo_root().join("board-configs/qemu-x86_64.toml");
    let kernel = testbed::ensure_kernel(Arch::X86_64, Variant::Default)?;
    let work = repo_root().join("target/demo");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let module_dir = work.join("module");
    step(format!("generating {}", board_file.display()));
    let board = e2e::generate(&board_file, &module_dir)?;
    step(format!(
        "building {}.ko against Linux {}",
        board.module, kernel.release
    ));
    let ko = e2e::build_module(&kernel, &module_dir, &board.module, &[])?;
    let programs = work.join("programs");
    std::fs::create_dir_all(&programs)?;
    let mut cc = util::kernel_cmd(kernel.arch.guest_cc());
    cc.args(["-static", "-O2", "-Wall"])
        .arg(format!("-I{}", kernel.build.join("usr/include").display()))
        .arg("-o")
        .arg(programs.join("heapgen-demo"))
        .arg(repo_root().join("tests/demo/heapgen-demo.c"));
    util::run(&mut cc)?;
    let initrd = e2e::make_initramfs(
        kernel.arch,
        &work,
        &e2e::Initramfs {
            modules: vec![ko],
            programs: Some(&programs),
            init: repo_root().join("tests/demo/init.sh"),
            files: vec![],
        },
    )?;
    step("booting QEMU (x86_64, TCG)");
    let log = work.join("console.log");
    let (console, timed_out) = e2e::boot(
        &e2e::Boot {
            kernel: &kernel,
            initrd: &initrd,
            dtb: None,
            append: "",
            qemu_args: &[],
            cpus: 1,
        },
        &log,
    )?;
    let ours: Vec<&str> = board.heaps.iter().map(|h| h.name.as_str()).collect();
    let rows: Vec<Vec<String>> = console
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("DEMO "))
        .map(|l| {
            let mut cols: Vec<String> = l.split_whitespace().map(str::to_string).collect();
            let who = if ours.contains(&cols[0].as_str()) {
                format!("heapgen ({})", board.module)
            } else {
                "upstream".to_string()
            };
            cols.insert(1, who);
            cols
        })
        .collect();
    if rows.is_empty() || timed_out {
        bail!(
            "the demo guest printed no results; console: {}",
            log.display()
        );
    }
    println!();
    println!(
        "Heaps of board {} in Linux {} (QEMU, x86_64), one 1 MiB allocation each:",
        board.name, kernel.release
    );
    println!();
    println!(
        "{:<22} {:<28} {:>10}  {:<8} MMAP",
        "HEAP", "PROVIDED BY", "SIZE", "CONTENT"
    );
    for r in rows {
        let get = |i: usize| r.get(i).cloned().unwrap_or_default();
        println!(
            "{:<22} {:<28} {:>10}  {:<8} {}",
            get(0),
            get(1),
            get(2),
            get(3),
            get(4)
        );
    }
    println!();
    println!("console log: {}", log.display());
    Ok(())
}
