//! `cargo xtask`: the project's development tasks (the rust-analyzer pattern).
//!
//! The commands and their options are declared once, in [`Cmd`]: `cargo xtask --help` lists the
//! commands and `cargo xtask <command> --help` their options.

mod bench;
mod bindings;
mod bring_up;
mod deny;
mod devicetree;
mod e2e;
mod ecosystem;
mod fixtures;
mod fuzz;
mod import_corpus;
mod integration;
mod invocation;
mod ktap;
mod testbed;
mod util;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use ktap::{Case, Outcome, Report};
use std::{
    panic::AssertUnwindSafe,
    path::PathBuf,
    process::Command,
    sync::{Mutex, PoisonError},
};
use testbed::{Arch, Cc, Series, Spec, Variant};
use util::{repo_root, step};

/// The project's development tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// The commands of `cargo xtask`.
#[derive(Debug, Subcommand)]
enum Cmd {
    /// Install and build the kernel test bed (packages, bindgen, the kernel source, a kernel).
    Testbed(KernelArgs),
    /// Generate each test board's module, build it, boot QEMU and run the guest tests.
    E2e {
        #[command(flatten)]
        kernel: KernelArgs,
        /// A board file to test instead of the test board of --arch (repeatable).
        #[arg(long = "board", value_name = "FILE")]
        boards: Vec<PathBuf>,
    },
    /// Every test: host tests, clippy, fmt, fuzzing, builds, then e2e on the kernel matrix.
    Test {
        /// Add the kernels of the full matrix.
        #[arg(long)]
        full: bool,
    },
    /// Generate the example board, boot it in QEMU and show its heaps next to upstream's.
    Demo,
    /// Our heap against upstream's CMA heap in the same boot, emulated.
    Bench {
        /// The architecture (the benchmark runs on x86_64 only).
        #[arg(long, value_enum, default_value = "x86_64")]
        arch: Arch,
        #[command(flatten)]
        options: bench::Options,
    },
    /// Regenerate the runtime's raw bindings from `heapgen_abi.h`.
    Bindings,
    /// Check the crate graph with cargo-deny (deny.toml): one version of each crate, crates.io
    /// only.
    Deny,
    /// Build every board's module (or the given ones) the ways Yocto, Buildroot and Kleaf build
    /// it, without booting.
    Build {
        /// A board file to build instead of every board in board-configs/ (repeatable).
        #[arg(long = "board", value_name = "FILE")]
        boards: Vec<PathBuf>,
    },
    /// Run the build systems' own tools on every board's generated files.
    Integration(integration::Trees),
    /// Fuzz the generator in process (Documentation/fuzzing.rst).
    Fuzz(fuzz::Options),
    /// Run Documentation/bring-up.rst as written: import, generate, build, and the on-target
    /// suite on the imx8mp-media board booted in QEMU.
    BringUp,
    /// `heapgen import` over a kernel tree's arm64 device trees: how many import and pass
    /// `heapgen check`, and why not.
    ImportCorpus(import_corpus::Options),
}

/// Which test-bed kernel: the options of `testbed` and `e2e`.
#[derive(Clone, Copy, Debug, clap::Args)]
struct KernelArgs {
    /// The architecture.
    #[arg(long, value_enum, default_value = "x86_64")]
    arch: Arch,
    /// The kernel series.
    #[arg(long = "kernel", value_enum, default_value = "7.2")]
    series: Series,
    /// The compiler (kernels of the debug, debug-16k and gki variants are always LLVM-built).
    #[arg(long, value_enum, default_value = "gcc")]
    cc: Cc,
    /// The kernel variant.
    #[arg(long, value_enum, default_value = "default")]
    variant: Variant,
    /// The same as --variant debug.
    #[arg(long, conflicts_with = "variant")]
    debug_kernel: bool,
}

impl KernelArgs {
    /// The kernel the arguments select.
    fn spec(&self) -> Spec {
        Spec {
            series: self.series,
            arch: self.arch,
            variant: if self.debug_kernel {
                Variant::Debug
            } else {
                self.variant
            },
            cc: self.cc,
        }
    }
}

/// The kernels `cargo xtask test` runs end to end: 7.2 on x86_64 and arm64 with GCC; the debug
/// checkers (KASAN, lockdep, kmemleak; LLVM) on x86_64 and on arm64 with 16 KiB pages; 6.12 LTS
/// with the GKI exports, on x86_64 with GCC and on arm64 with GKI's kCFI and shadow call stacks
/// (LLVM); and the next kernel, 7.3, on x86_64.
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
    let cli = Cli::parse();
    if let Err(e) = run(cli.cmd) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Testbed(kernel) => testbed::cmd_testbed(kernel.spec()),
        Cmd::E2e { kernel, boards } => {
            let report = e2e::cmd_e2e(kernel.spec(), &boards)?;
            finish(&report)
        }
        Cmd::Test { full } => cmd_test(full),
        Cmd::Bench { arch, options } => bench::run_bench(arch, &options),
        Cmd::Demo => cmd_demo(),
        Cmd::Bindings => bindings::cmd_bindings(),
        Cmd::Deny => deny::deny_check(),
        Cmd::Integration(trees) => finish(&integration::cmd_integration(&trees)?),
        Cmd::Build { boards } => {
            let boards = if boards.is_empty() {
                board_files()?
            } else {
                boards
            };
            let report = Report {
                cases: build_every_board(&boards),
            };
            finish(&report)
        }
        Cmd::Fuzz(options) => fuzz::cmd_fuzz(options),
        Cmd::ImportCorpus(options) => import_corpus::cmd_import_corpus(&options),
        Cmd::BringUp => finish(&bring_up::cmd_bring_up()?),
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
        // The runtime and the generated crate under the kernel's own clippy (`make CLIPPY=1`,
        // with the lints the kernel sets), warning-free.
        let clippy = (|| -> Result<()> {
            let dir = work.join("clippy");
            let _ = std::fs::remove_dir_all(&dir);
            util::run(Command::new("cp").arg("-a").arg(&generated).arg(&dir))?;
            e2e::build_module(&kernel, &dir, &board.module, &["CLIPPY=1".to_string()])?;
            Ok(())
        })();
        push(format!("{prefix}/clippy"), outcome_of(clippy));
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
        push(format!("{prefix}/config-fragment"), outcome_of(fragment));
    }
    cases
}

/// A check's outcome: passed, or failed with the error's chain.
fn outcome_of(result: Result<()>) -> Outcome {
    match result {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(format!("{e:#}")),
    }
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
    Case::checked(name, result)
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
    /// Whether it boots a guest (one runs at a time, see `e2e::boot`): while one runs, a free
    /// worker starts a job that does not, if any is left, rather than wait for the guest.
    boots: bool,
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
            boots: false,
            run: Box::new(run),
        }
    }

    /// Marks the job as one that boots a guest.
    fn boots(mut self) -> Self {
        self.boots = true;
        self
    }
}

/// Runs `jobs` on `workers` threads and returns their cases in the order of `jobs`, whatever the
/// order they finished in: the report is the same from run to run. A job that panics is a
/// failed case of its own.
fn run_jobs(jobs: Vec<Job<'_>>, workers: usize) -> Vec<Case> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].weight));
    let names: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
    let boots: Vec<bool> = jobs.iter().map(|j| j.boots).collect();
    let runs: Vec<Mutex<Option<_>>> = jobs.into_iter().map(|j| Mutex::new(Some(j.run))).collect();
    let results: Vec<Mutex<Vec<Case>>> = names.iter().map(|_| Mutex::new(Vec::new())).collect();
    let left = Mutex::new(order);
    // The longest job left, or, while a guest runs, the longest that boots none, if any.
    let next = || {
        let mut left = left.lock().unwrap_or_else(PoisonError::into_inner);
        let busy = e2e::guest_running();
        let at = left
            .iter()
            .position(|&i| !(busy && boots[i]))
            .or((!left.is_empty()).then_some(0))?;
        Some(left.remove(at))
    };
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(i) = next() {
                    let Some(run) = runs[i]
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take()
                    else {
                        continue;
                    };
                    let started = std::time::Instant::now();
                    let cases =
                        std::panic::catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|_| {
                            eprintln!("FAIL job/{}: panicked", names[i]);
                            vec![Case {
                                name: format!("job/{}", names[i]),
                                outcome: Outcome::Fail("the job panicked".into()),
                            }]
                        });
                    step(format!(
                        "job {} done in {}s",
                        names[i],
                        started.elapsed().as_secs()
                    ));
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
    report
        .cases
        .push(Case::checked("host/bindings-fresh", bindings::check()));
    // A bounded fuzzing run: 30 seconds on one thread (the other jobs need the other core),
    // seeded by the commit under test, so that every commit explores other inputs and a finding
    // replays with the seed the run prints.
    let seed = commit_seed().to_string();
    host_step(
        &mut report,
        "fuzz",
        &[
            "xtask",
            "fuzz",
            "--seconds",
            "30",
            "--threads",
            "1",
            "--seed",
            &seed,
        ],
    );
    report.cases
}

/// A fuzzing seed from the commit under test (its first 16 hex digits), or a fixed one outside
/// a git checkout.
fn commit_seed() -> u64 {
    Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()
        .and_then(|o| u64::from_str_radix(String::from_utf8_lossy(&o.stdout).get(..16)?, 16).ok())
        .unwrap_or(0x6865_6170_6765_6e00)
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

/// Cargo's target directory for `cargo xtask test`'s own builds, shared by every clone of the
/// repository on the machine, so that a fresh clone (as CI runs) builds the dependencies once,
/// not once per profile per clone. Emptied when it outgrows `SHARED_TARGET_MAX` bytes (each
/// clone adds its own copy of the workspace's crates).
const SHARED_TARGET_MAX: u64 = 6 << 30;

/// Points cargo at the shared target directory for the rest of the run (before any worker
/// starts), holding the lock that keeps a second `cargo xtask test` from using it at the same
/// time (the binaries in it have fixed paths). Returns the lock.
fn use_shared_target() -> Result<std::fs::File> {
    let cache = util::cache_root();
    std::fs::create_dir_all(&cache)?;
    let lock = std::fs::File::create(cache.join("cargo-target.lock"))?;
    if lock.try_lock().is_err() {
        step("waiting for another cargo xtask test to finish with the shared cargo target");
        lock.lock()?;
    }
    let target = cache.join("cargo-target");
    let size = util::run(Command::new("du").arg("-sb").arg(&target))
        .ok()
        .and_then(|out| out.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    if size > SHARED_TARGET_MAX {
        step(format!(
            "emptying {} ({} MiB, over {} MiB)",
            target.display(),
            size >> 20,
            SHARED_TARGET_MAX >> 20
        ));
        let _ = std::fs::remove_dir_all(&target);
    }
    // No thread runs yet: nothing reads the environment concurrently.
    std::env::set_var("CARGO_TARGET_DIR", &target);
    Ok(lock)
}

fn cmd_test(full: bool) -> Result<()> {
    let _shared_target = use_shared_target()?;
    let boards = board_files()?;
    let extra = if full { FULL_MATRIX } else { &[] };
    let matrix: Vec<Spec> = TEST_MATRIX.iter().chain(extra).copied().collect();
    let boards = &boards;
    let matrix = &matrix;
    let mut jobs = vec![
        Job::new("host", 150, host_steps),
        Job::new("ecosystem", 20, ecosystem::run),
        // One version of each crate, crates.io as the only source (cargo-deny, `deny.toml`).
        Job::new("deny", 5, || {
            vec![Case::checked("host/deny", deny::deny_check())]
        }),
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
        jobs.push(
            Job::new(
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
            )
            .boots(),
        );
    }
    // The bring-up guide, run as written, ending with the on-target suite on its board.
    jobs.push(Job::new("bring-up", 60, bring_up::run).boots());
    let x86 = |variant, cc| Spec {
        series: Series::V7_2,
        arch: Arch::X86_64,
        variant,
        cc,
    };
    // A module whose init fails leaves nothing behind (x86_64: booted without its `cma=` area).
    jobs.push(
        Job::new("failed-load", 15, move || {
            e2e::failed_load(x86(Variant::Default, Cc::Gcc))
        })
        .boots(),
    );
    // The harness itself: a heap that does not zero must fail the suite (one kernel is enough;
    // the harness code is the same).
    jobs.extend([
        Job::new("selftest/no-zero", 15, || {
            selftest(e2e::selftest_no_zero(Arch::X86_64, Variant::Default))
        })
        .boots(),
        // And a real kernel warning, and a real lockdep report (the debug kernel has lockdep).
        Job::new("selftest/warn", 10, move || {
            selftest(e2e::selftest_kernel_report(
                x86(Variant::Default, Cc::Gcc),
                "warn",
                "cut here",
            ))
        })
        .boots(),
        Job::new("selftest/lockdep", 30, move || {
            selftest(e2e::selftest_kernel_report(
                x86(Variant::Debug, Cc::Llvm),
                "lockdep",
                "possible circular locking",
            ))
        })
        .boots(),
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
        })
        .boots(),
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
            userland: e2e::Userland::Busybox,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, ValueEnum};

    fn parse(line: &str) -> Result<Cmd, clap::Error> {
        Cli::try_parse_from(std::iter::once("xtask").chain(line.split_whitespace())).map(|c| c.cmd)
    }

    #[test]
    fn the_parser_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command line the README, Documentation/, .ci/run, CHANGELOG.md and xtask itself
    /// give still parses.
    #[test]
    fn the_documented_command_lines_parse() {
        for line in [
            "testbed",
            "testbed --arch arm64",
            "testbed --arch x86_64 --kernel 6.12 --cc llvm --debug-kernel",
            "testbed --kernel 7.3",
            "e2e",
            "e2e --arch arm64",
            "e2e --arch arm64 --board board-configs/my-board.toml",
            "e2e --board a.toml --board b.toml",
            "e2e --kernel 6.12",
            "e2e --kernel 6.12 --arch arm64 --variant gki",
            "e2e --arch arm64 --variant debug-16k",
            "e2e --arch arm64 --variant 16k",
            "e2e --kernel 7.3",
            "e2e --kernel 7.2 --cc llvm",
            "e2e --debug-kernel",
            "e2e --arch arm64 --debug-kernel",
            "test",
            "test --full",
            "demo",
            "bindings",
            "deny",
            "bench",
            "bench --arch x86_64 --mode icount --boots 1",
            "bench --mode tcg --boots 5",
            "bench --accounting",
            "build",
            "build --board board-configs/qemu-arm64.toml --board board-configs/qemu-x86_64.toml",
            "integration",
            "integration --kleaf k --buildroot b --oe-core o --bitbake bb",
            "fuzz",
            "fuzz --minutes 90",
            "fuzz --seconds 60 --threads 1",
            "fuzz --replay target/fuzz/findings/x.toml --source board.toml",
            "fuzz --limits",
            "import-corpus",
            "import-corpus --kernel-src /tmp/linux --jobs 4",
        ] {
            if let Err(e) = parse(line) {
                panic!("`cargo xtask {line}` does not parse:\n{e}");
            }
        }
    }

    #[test]
    fn each_command_rejects_the_others_options() {
        for line in [
            "",
            "frobnicate",
            "test --board a.toml",
            "bench --board a.toml",
            "bench --boots 0",
            "bench --mode fast",
            "demo --arch arm64",
            "build --arch arm64",
            "testbed --board a.toml",
            "e2e --variant 16k --debug-kernel",
            "e2e --variant debug16k",
            "e2e --kernel 6.13",
            "e2e --arch riscv64",
            "e2e --cc msvc",
            "integration --oe-core o",
            "integration --bitbake b",
            "fuzz --minutes 1 --seconds 1",
            "fuzz --threads 0",
            "fuzz --replay x.toml --limits",
            "fuzz --arch arm64",
            "import-corpus --jobs 0",
        ] {
            assert!(parse(line).is_err(), "`cargo xtask {line}` parses");
        }
    }

    #[test]
    fn the_kernel_options_select_the_documented_kernel() {
        let spec = |line: &str| match parse(line).expect("parses") {
            Cmd::Testbed(k) | Cmd::E2e { kernel: k, .. } => k.spec(),
            other => panic!("{other:?}"),
        };
        assert_eq!(spec("e2e"), Spec::new(Arch::X86_64, Variant::Default));
        assert_eq!(
            spec("e2e --arch arm64 --debug-kernel"),
            Spec::new(Arch::Arm64, Variant::Debug)
        );
        assert_eq!(
            spec("testbed --kernel 6.12 --arch arm64 --variant gki --cc llvm"),
            Spec {
                series: Series::V6_12,
                arch: Arch::Arm64,
                variant: Variant::Gki,
                cc: Cc::Llvm,
            }
        );
        // Every kernel of the matrix can be named on the command line, by its own label.
        for &k in TEST_MATRIX.iter().chain(FULL_MATRIX) {
            let line = format!(
                "e2e --arch {} --kernel {} --variant {} --cc {}",
                k.arch.name(),
                k.series.name(),
                k.variant.name().unwrap_or("default"),
                if k.cc == Cc::Llvm { "llvm" } else { "gcc" },
            );
            assert_eq!(spec(&line), k, "{line}");
        }
    }

    /// A `cargo xtask test --full` run finds every kernel it boots in the cache the next time.
    #[test]
    fn the_cache_keeps_every_kernel_of_the_matrix() {
        let labels: std::collections::BTreeSet<String> = TEST_MATRIX
            .iter()
            .chain(FULL_MATRIX)
            .map(Spec::label)
            .collect();
        assert_eq!(labels.len(), TEST_MATRIX.len() + FULL_MATRIX.len());
        assert!(labels.len() <= testbed::KEEP_KERNELS, "{labels:?}");
    }

    /// The spellings the command line accepts are the names the test bed uses in cache keys,
    /// labels and board files.
    #[test]
    fn the_value_names_are_the_test_bed_names() {
        let name =
            |v: Option<clap::builder::PossibleValue>| v.expect("named").get_name().to_owned();
        for a in Arch::value_variants() {
            assert_eq!(name(a.to_possible_value()), a.name());
            assert_eq!(Arch::parse(a.name()).expect("parses"), *a);
        }
        for s in Series::value_variants() {
            assert_eq!(name(s.to_possible_value()), s.name());
        }
        for v in Variant::value_variants() {
            assert_eq!(name(v.to_possible_value()), v.name().unwrap_or("default"));
        }
    }

    #[test]
    fn bench_boots_once_with_icount_and_five_times_with_tcg() {
        let boots = |line: &str| match parse(line).expect("parses") {
            Cmd::Bench { options, .. } => (options.mode, options.boots(), options.accounting),
            other => panic!("{other:?}"),
        };
        assert_eq!(boots("bench"), (bench::Mode::Icount, 1, false));
        assert_eq!(boots("bench --mode tcg"), (bench::Mode::Tcg, 5, false));
        assert_eq!(
            boots("bench --mode tcg --boots 7 --accounting"),
            (bench::Mode::Tcg, 7, true)
        );
    }

    /// The debug xtask runs the release one with `Options::args()`, and the minimiser runs
    /// itself with `--replay`: both command lines parse back to the same options.
    #[test]
    fn the_fuzzer_options_survive_its_own_command_lines() {
        let fuzz = |line: &str| match parse(line).expect("parses") {
            Cmd::Fuzz(o) => o,
            other => panic!("{other:?}"),
        };
        for line in [
            "fuzz",
            "fuzz --minutes 3 --threads 2 --seed 9 --execs 100 --no-binary --out /tmp/f",
            "fuzz --replay x.toml --source other.toml --heapgen /bin/heapgen",
            "fuzz --limits",
        ] {
            let o = fuzz(line);
            let again = fuzz(&format!("fuzz {}", o.args().join(" ")));
            // `args()` leaves out `--heapgen`: the debug xtask passes the one it built.
            let (a, b) = (&again, &o);
            assert_eq!(
                (
                    a.duration(),
                    a.execs,
                    a.threads,
                    a.seed,
                    &a.out,
                    a.binary,
                    a.limits
                ),
                (
                    b.duration(),
                    b.execs,
                    b.threads,
                    b.seed,
                    &b.out,
                    b.binary,
                    b.limits
                ),
                "{line}"
            );
            assert_eq!((&a.replay, &a.source), (&b.replay, &b.source), "{line}");
        }
        let o = fuzz("fuzz");
        assert_eq!(o.duration(), std::time::Duration::from_secs(60));
        assert_eq!(o.source, "board.toml");
        assert!(o.binary && !o.limits);
        assert_eq!(fuzz("fuzz --minutes 90").duration().as_secs(), 90 * 60);
    }
}
