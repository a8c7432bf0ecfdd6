//! End-to-end runs: generate a board's module, build it and the guest tests against the test-bed
//! kernel, boot QEMU with an initramfs that runs the tests, and parse what the guest printed.

use crate::{
    fixtures,
    invocation::{self, Style},
    ktap::{self, Case, Outcome, Report},
    testbed::{self, Arch, Kernel, Spec, Variant},
    util::{self, kernel_cmd, repo_root, run, step, tail},
};
use anyhow::{bail, Context, Result};
use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// How long a guest may run before it counts as hung. Generous: a normal run takes seconds.
const GUEST_TIMEOUT: Duration = Duration::from_secs(900);

/// One guest at a time. A guest's vCPUs are host threads (QEMU's multi-threaded TCG); two
/// two-vCPU guests on the two-core machine CI runs on preempt each other's vCPUs while they hold
/// guest spinlocks or wait for IPIs, which burns CPU time for nothing: measured, the arm64
/// debug 16K guest ran 99 s alone and 247 s beside another guest. Builds and host steps still
/// run beside a guest.
static GUESTS: Mutex<()> = Mutex::new(());

/// Holds the guest lock: for a guest booted other than by [`boot`] (the bring-up guide's).
pub fn one_guest() -> std::sync::MutexGuard<'static, ()> {
    GUESTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a guest is running now (for the order `cargo xtask test` starts its jobs in).
pub fn guest_running() -> bool {
    GUESTS.try_lock().is_err()
}

/// Size of the `cma=` area on x86_64 boots.
pub const X86_CMA: &str = "128M";

/// Where e2e artefacts of one board go: `target/e2e/<kernel label>/<board>`.
pub fn work_dir(spec: &Spec, board: &str) -> PathBuf {
    repo_root()
        .join("target/e2e")
        .join(spec.label())
        .join(board)
}

/// Generates `board_file`'s module with the heapgen CLI into `dir`.
pub fn generate(board_file: &Path, dir: &Path) -> Result<heapgen::ir::Board> {
    let board = heapgen::load(board_file)
        .map_err(|d| anyhow::anyhow!("{} is not a valid board file:\n{d}", board_file.display()))?
        .board;
    let heapgen_bin = util::cargo_target_dir().join("debug/heapgen");
    run(Command::new("cargo")
        .args(["build", "--quiet", "-p", "heapgen"])
        .current_dir(repo_root()))?;
    let rel = board_file.strip_prefix(repo_root()).unwrap_or(board_file);
    run(Command::new(&heapgen_bin)
        .arg("generate")
        .arg(rel)
        .arg("--out")
        .arg(dir)
        .current_dir(repo_root()))?;
    Ok(board)
}

/// Builds a generated module; a warning of any kind fails the build.
pub fn build_module(
    kernel: &Kernel,
    dir: &Path,
    module: &str,
    extra: &[String],
) -> Result<PathBuf> {
    let out = kernel.build_module(dir, extra)?;
    let warnings: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("warning") || l.contains("WARNING"))
        .collect();
    if !warnings.is_empty() {
        bail!(
            "building {} against {} gave warnings:\n{}",
            module,
            kernel.release,
            tail(&out, 60)
        );
    }
    let ko = dir.join(format!("{module}.ko"));
    if !ko.is_file() {
        bail!("the build produced no {}", ko.display());
    }
    Ok(ko)
}

/// Builds the test importer module (`tests/kernel/importer`) for `kernel`, or takes it from the
/// fixture cache ([`fixtures`]); copies it to `work/importer/`.
pub fn build_importer(kernel: &Kernel, work: &Path) -> Result<PathBuf> {
    let sources = repo_root().join("tests/kernel/importer");
    let uapi = repo_root().join("tests/guest");
    let mut parts: Vec<(String, Vec<u8>)> = vec![(
        "kernel".into(),
        kernel.build.to_string_lossy().into_owned().into_bytes(),
    )];
    parts.extend(fixtures::dir_contents(&sources)?);
    parts.extend(
        fixtures::dir_contents(&uapi)?
            .into_iter()
            .filter(|(name, _)| name.ends_with(".h"))
            .map(|(name, bytes)| (format!("uapi/{name}"), bytes)),
    );
    let key = fixtures::key(&borrowed(&parts));
    let built = fixtures::cached("importer", &key, |dir| {
        copy_dir(&sources, dir)?;
        let uapi = format!("HEAPGEN_UAPI_DIR={}", uapi.display());
        build_module(kernel, dir, "heapgen_importer", &[uapi]).map(drop)
    })?;
    let dir = work.join("importer");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let ko = dir.join("heapgen_importer.ko");
    fs::copy(built.join("heapgen_importer.ko"), &ko)?;
    Ok(ko)
}

/// Key material as the borrowed pairs [`fixtures::key`] takes.
fn borrowed(parts: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    parts
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// Builds every guest test program and the kernel's dmabuf-heaps selftest for `kernel`, or
/// takes them from the fixture cache ([`fixtures`]); copies them to `out`.
fn guest_programs(kernel: &Kernel, out: &Path) -> Result<()> {
    let guest = repo_root().join("tests/guest");
    let selftest = kernel
        .src
        .join("tools/testing/selftests/dmabuf-heaps/dmabuf-heap.c");
    let mut parts: Vec<(String, Vec<u8>)> = vec![
        (
            "kernel".into(),
            kernel.build.to_string_lossy().into_owned().into_bytes(),
        ),
        (
            "cc".into(),
            testbed::tool_version(kernel.arch.guest_cc(), "--version").into_bytes(),
        ),
        ("dmabuf-heap.c".into(), fs::read(&selftest)?),
    ];
    parts.extend(fixtures::dir_contents(&guest)?);
    let key = fixtures::key(&borrowed(&parts));
    let built = fixtures::cached("programs", &key, |dir| build_guest_programs(kernel, dir))?;
    fs::create_dir_all(out)?;
    for (name, _) in fixtures::dir_contents(&built)? {
        if !name.starts_with('.') {
            let to = out.join(&name);
            fs::copy(built.join(&name), &to)?;
            set_exec(&to)?;
        }
    }
    Ok(())
}

/// Builds every guest test program and the kernel's dmabuf-heaps selftest, statically.
fn build_guest_programs(kernel: &Kernel, out: &Path) -> Result<()> {
    fs::create_dir_all(out)?;
    let guest = repo_root().join("tests/guest");
    let mut sources: Vec<(String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(&guest)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "c") {
            let name = path
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .replace('_', "-");
            sources.push((name, path));
        }
    }
    sources.sort();
    sources.push((
        "dmabuf-heap".to_string(),
        kernel
            .src
            .join("tools/testing/selftests/dmabuf-heaps/dmabuf-heap.c"),
    ));
    for (name, src) in sources {
        let mut cmd = kernel_cmd(kernel.arch.guest_cc());
        cmd.args(["-static", "-O2", "-Wall"])
            .arg(format!("-I{}", kernel.build.join("usr/include").display()))
            .arg(format!(
                "-I{}",
                kernel.src.join("tools/testing/selftests").display()
            ))
            .arg(format!("-I{}", guest.display()))
            .arg("-o")
            .arg(out.join(&name))
            .arg(&src);
        let output =
            run(&mut cmd).with_context(|| format!("building guest program {}", src.display()))?;
        // The suite is built by users' compilers too (the generated test/Makefile, -Wall): a
        // warning in its own sources fails here. The kernel's headers are not ours to fix.
        let ours = format!("{}/", guest.display());
        let warnings: Vec<&str> = output
            .lines()
            .filter(|l| l.starts_with(&ours) && l.contains("warning:"))
            .collect();
        if !warnings.is_empty() {
            bail!(
                "building guest program {}: warnings:\n{}",
                src.display(),
                warnings.join("\n")
            );
        }
    }
    Ok(())
}

/// Packs `root` into a gzip'd newc cpio archive.
fn pack_initramfs(root: &Path, out: &Path) -> Result<()> {
    let script = format!(
        "find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1 > '{}'",
        out.display()
    );
    run(Command::new("sh").arg("-c").arg(script).current_dir(root))?;
    Ok(())
}

/// The guest's userland tools: the shell and utilities `/init` and the on-target runner run
/// under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Userland {
    /// Static busybox (`/bin/busybox`, `/bin/sh`), as Yocto and Buildroot images have it.
    Busybox,
    /// Android's: mksh as `/system/bin/sh`, toybox for the utilities and BWK awk (Android's
    /// `/system/bin/awk`), from Debian's `mksh` (its static klibc build), `toybox` and
    /// `original-awk`, with the shared libraries they need. `/bin/sh` points at mksh. x86_64
    /// only (the host's packages).
    Android,
}

impl Userland {
    /// The userland a matrix cell's guest runs: Android's on 6.12 x86_64, so that the runner is
    /// proven under the `sh` Documentation/integration/android.rst runs it with; busybox
    /// elsewhere.
    pub fn of(spec: &Spec) -> Self {
        if spec.series == testbed::Series::V6_12 && spec.arch == Arch::X86_64 {
            Userland::Android
        } else {
            Userland::Busybox
        }
    }
}

/// Installs Android's userland tools (see [`Userland::Android`]) into `root`.
fn install_android_userland(root: &Path) -> Result<()> {
    let bin = root.join("system/bin");
    fs::create_dir_all(&bin)?;
    let tools = [
        ("/usr/lib/klibc/bin/mksh", "sh"),
        ("/usr/bin/toybox", "toybox"),
        ("/usr/bin/original-awk", "awk"),
    ];
    for (from, to) in tools {
        fs::copy(from, bin.join(to)).with_context(|| format!("copying {from}"))?;
        // The shared libraries, at the paths the dynamic loader looks for them.
        let ldd = Command::new("ldd").arg(from).output()?;
        for lib in String::from_utf8_lossy(&ldd.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
        {
            let dest = root.join(lib.trim_start_matches('/'));
            fs::create_dir_all(dest.parent().unwrap_or(root))?;
            fs::copy(lib, &dest).with_context(|| format!("copying {lib}"))?;
        }
    }
    let applets = run(&mut Command::new("/usr/bin/toybox"))?;
    for applet in applets.split_whitespace() {
        let link = bin.join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("toybox", link)?;
        }
    }
    std::os::unix::fs::symlink("/system/bin/sh", root.join("bin/sh"))?;
    Ok(())
}

/// The pieces of an initramfs.
pub struct Initramfs<'a> {
    /// Modules to load (the guest's /init decides the order).
    pub modules: Vec<PathBuf>,
    /// Directory of guest programs, installed under /tests.
    pub programs: Option<&'a Path>,
    /// The /init script.
    pub init: PathBuf,
    /// Extra files: (path inside the guest, contents); a file that starts with `#!` is made
    /// executable.
    pub files: Vec<(String, String)>,
    /// The shell and utilities.
    pub userland: Userland,
}

/// Builds an initramfs in `work`; returns its path.
pub fn make_initramfs(arch: Arch, work: &Path, spec: &Initramfs<'_>) -> Result<PathBuf> {
    let root = work.join("initramfs");
    let _ = fs::remove_dir_all(&root);
    for d in [
        "bin",
        "sbin",
        "proc",
        "sys",
        "dev",
        "tmp",
        "lib/modules",
        "tests",
        "etc/heapgen",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    match spec.userland {
        Userland::Busybox => {
            fs::copy(testbed::ensure_busybox(arch)?, root.join("bin/busybox"))?;
            std::os::unix::fs::symlink("busybox", root.join("bin/sh"))?;
        }
        Userland::Android if arch == Arch::X86_64 => install_android_userland(&root)?,
        Userland::Android => bail!("Android's userland tools are installed for x86_64 only"),
    }
    let init = root.join("init");
    fs::copy(&spec.init, &init)?;
    set_exec(&init)?;
    for ko in &spec.modules {
        fs::copy(ko, root.join("lib/modules").join(ko.file_name().unwrap()))?;
    }
    if let Some(programs) = spec.programs {
        for entry in fs::read_dir(programs)? {
            let entry = entry?;
            let dest = root.join("tests").join(entry.file_name());
            fs::copy(entry.path(), &dest)?;
            set_exec(&dest)?;
        }
    }
    for (path, contents) in &spec.files {
        let dest = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap())?;
        fs::write(&dest, contents)?;
        if contents.starts_with("#!") {
            set_exec(&dest)?;
        }
    }
    let out = work.join("initramfs.cpio.gz");
    pack_initramfs(&root, &out)?;
    Ok(out)
}

fn set_exec(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// QEMU options for a boot.
pub struct Boot<'a> {
    /// Kernel.
    pub kernel: &'a Kernel,
    /// Initramfs.
    pub initrd: &'a Path,
    /// Device tree (arm64).
    pub dtb: Option<&'a Path>,
    /// Extra kernel command-line arguments.
    pub append: &'a str,
    /// Extra QEMU arguments (e.g. icount for benchmarks).
    pub qemu_args: &'a [&'a str],
    /// Virtual CPUs.
    pub cpus: u32,
}

/// The guests' virtual CPUs for the tests: SMP on both architectures, so that the races the
/// tests provoke run on two CPUs at once.
pub const TEST_CPUS: u32 = 2;

/// QEMU's machine options per architecture (also used to dump the arm64 device tree).
pub fn qemu_base(arch: Arch, variant: Variant) -> (&'static str, Vec<&'static str>) {
    match arch {
        Arch::X86_64 => (
            "qemu-system-x86_64",
            vec!["-accel", "tcg", "-cpu", "qemu64", "-m", "1G"],
        ),
        Arch::Arm64 => (
            "qemu-system-aarch64",
            vec![
                "-M",
                "virt",
                "-cpu",
                // The Cortex-A57 model has no 16K translation granule; the implementation-defined
                // pointer-authentication algorithm is the fast one under TCG.
                if variant.page_size() != 4 << 10 {
                    "max,pauth-impdef=on"
                } else {
                    "cortex-a57"
                },
                "-m",
                "1G",
            ],
        ),
    }
}

/// Boots QEMU, writes the console to `log`, returns (console, timed out).
pub fn boot(b: &Boot<'_>, log: &Path) -> Result<(String, bool)> {
    let (qemu, base) = qemu_base(b.kernel.arch, b.kernel.spec.variant);
    let console = match b.kernel.arch {
        Arch::X86_64 => format!("console=ttyS0 cma={X86_CMA}"),
        Arch::Arm64 => "console=ttyAMA0".to_string(),
    };
    let mut cmd = Command::new(qemu);
    cmd.args(base)
        .arg("-smp")
        .arg(b.cpus.to_string())
        .args(["-nographic", "-no-reboot", "-kernel"])
        .arg(&b.kernel.image)
        .arg("-initrd")
        .arg(b.initrd)
        .args(b.qemu_args);
    if let Some(dtb) = b.dtb {
        cmd.arg("-dtb").arg(dtb);
    }
    cmd.arg("-append")
        // Every message level reaches the console the harness scans: warnings, WARN splats
        // and lockdep reports are KERN_WARNING or lower. A log buffer that holds a whole run,
        // so that the on-target runner's kernel-log check always sees its start mark (with the
        // default buffer, a debug run wrapped it and the check skipped, or not, by chance).
        .arg(format!(
            "{console} panic=-1 ignore_loglevel log_buf_len=16M heapgen.cpus={} {}",
            b.cpus, b.append
        ));
    let _one_guest = one_guest();
    for attempt in 1.. {
        let file = fs::File::create(log)?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start {qemu}"))?;
        // Once, a guest stalls before /init: then none of our code has run yet (the module is
        // in the initramfs), and it is booted again.
        let mut reached_init = false;
        let mut stalled = false;
        let status = util::wait_or_kill(&mut child, false, |t| {
            if attempt == 1 && !reached_init && t > INIT_DEADLINE {
                reached_init = fs::read_to_string(log).is_ok_and(|c| c.contains(RUN_INIT));
                stalled = !reached_init;
            }
            stalled || t > GUEST_TIMEOUT
        })?;
        if stalled {
            let kept = log.with_extension("log.stalled");
            fs::rename(log, &kept)?;
            step(format!(
                "{qemu}: no `{RUN_INIT}` after {} s, before any of our code ran: booting again \
                 (console of the stalled boot: {})",
                INIT_DEADLINE.as_secs(),
                kept.display()
            ));
            continue;
        }
        let mut text = String::new();
        fs::File::open(log)?.read_to_string(&mut text)?;
        return Ok((text, status.is_none()));
    }
    unreachable!("the loop returns")
}

/// What the kernel prints when it starts the initramfs's /init.
const RUN_INIT: &str = "Run /init as init process";

/// How long a guest may take to reach /init before it counts as stalled (TCG once stalled an
/// x86_64 debug guest in ACPI set-up, 1.5 s into its boot, for good). Reaching /init takes
/// seconds, under a minute on a busy machine.
const INIT_DEADLINE: Duration = Duration::from_secs(240);

/// Builds the arm64 device tree of a board: QEMU's own `virt` tree (same machine options as the
/// boot) merged with the generated `reserved-memory.dtsi`, compiled by dtc.
pub fn make_dtb(module_dir: &Path, work: &Path, variant: Variant) -> Result<PathBuf> {
    let (qemu, base) = qemu_base(Arch::Arm64, variant);
    let virt = work.join("virt.dtb");
    let mut args: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    let m = args
        .iter()
        .position(|a| a == "-M")
        .context("no -M in the QEMU options")?;
    args[m + 1] = format!("{},dumpdtb={}", args[m + 1], virt.display());
    run(Command::new(qemu)
        .args(&args)
        .args(["-smp", &TEST_CPUS.to_string()])
        .args(["-nographic", "-display", "none"]))?;
    let virt_dts = work.join("virt.dts");
    run(Command::new("dtc")
        .args(["-q", "-I", "dtb", "-O", "dts", "-o"])
        .arg(&virt_dts)
        .arg(&virt))?;
    let dtsi = module_dir.join("reserved-memory.dtsi");
    let mut merged = fs::read_to_string(&virt_dts)?;
    merged.push_str("\n/* heapgen: the board's generated reserved-memory nodes */\n");
    merged.push_str(
        &fs::read_to_string(&dtsi).with_context(|| format!("reading {}", dtsi.display()))?,
    );
    let merged_dts = work.join("board.dts");
    fs::write(&merged_dts, merged)?;
    let dtb = work.join("board.dtb");
    let out = run(Command::new("dtc")
        .args(["-p", "4096", "-I", "dts", "-O", "dtb", "-o"])
        .arg(&dtb)
        .arg(&merged_dts))?;
    // QEMU's dumped tree decompiles with numeric phandles, which dtc warns about; those are not
    // ours. A warning about our nodes fails (the fragment alone is checked warning-free and by
    // dt-validate in `devicetree::check_fragment`).
    let ours: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("reserved-memory") || l.contains("ERROR"))
        .collect();
    if !ours.is_empty() {
        bail!(
            "dtc reported on the reserved-memory nodes of {}:\n{}",
            merged_dts.display(),
            ours.join("\n")
        );
    }
    crate::devicetree::check_fragment(&module_dir.join("reserved-memory.dtsi"), work)?;
    Ok(dtb)
}

/// The module in `module_dir` built as Buildroot's `kernel-module` infrastructure and as Kleaf's
/// `ddk_module` build it (the booted one is built as Yocto does); then `heapgen kmi-symbols` must
/// read the kernel symbols the Kleaf-built module needs (the Android symbol list).
fn other_invocations(
    kernel: &Kernel,
    module_dir: &Path,
    work: &Path,
    board: &str,
    module: &str,
) -> Vec<ktap::Case> {
    let label = kernel.spec.label();
    let mut cases = Vec::new();
    for style in [Style::Buildroot, Style::Kleaf] {
        let built = invocation::build(
            kernel,
            module_dir,
            &work.join("invocations"),
            module,
            style,
            &[],
        );
        cases.push(ktap::Case {
            name: format!("build/{label}/{board}/{}", style.name()),
            outcome: match &built {
                Ok(_) => Outcome::Pass,
                Err(e) => Outcome::Fail(format!("{e:#}")),
            },
        });
        if let (Style::Kleaf, Ok(ko)) = (style, built) {
            cases.push(ktap::Case {
                name: format!("build/{label}/{board}/kmi-symbols"),
                outcome: kmi_symbols_outcome(&ko),
            });
        }
    }
    cases
}

/// Whether `heapgen kmi-symbols` finds the kernel functions every heapgen module calls in `ko`.
pub fn kmi_symbols_outcome(ko: &Path) -> Outcome {
    match run(Command::new(util::cargo_target_dir().join("debug/heapgen"))
        .arg("kmi-symbols")
        .arg(ko))
    {
        Ok(out) => {
            let missing: Vec<&str> = ["cma_alloc", "cma_release", "dma_heap_add", "dma_buf_export"]
                .into_iter()
                .filter(|sym| !out.lines().any(|l| l.trim() == *sym))
                .collect();
            if missing.is_empty() {
                Outcome::Pass
            } else {
                Outcome::Fail(format!("kmi-symbols misses {}:\n{out}", missing.join(", ")))
            }
        }
        Err(e) => Outcome::Fail(format!("{e:#}")),
    }
}

/// What the generated crate root says when a board with `accounting` is built against a kernel
/// without the dmem cgroup controller.
pub const NO_DMEM_ERROR: &str = "which needs a kernel with the dmem cgroup controller";

/// `board_file` with its `accounting` keys removed, for kernels without the dmem cgroup
/// controller (Linux 6.12): written to `dir` next to copies of its hook files, whose paths are
/// relative to the board file. The lines are dropped as text (our test boards write
/// `accounting = ...` on lines of their own); loading the result checks that nothing is left.
pub fn without_accounting(
    board_file: &Path,
    board: &heapgen::ir::Board,
    dir: &Path,
) -> Result<PathBuf> {
    let text = fs::read_to_string(board_file)?;
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            !l.trim_start()
                .strip_prefix("accounting")
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .collect();
    fs::create_dir_all(dir)?;
    let from = board_file.parent().unwrap_or(Path::new("."));
    for h in &board.hook_files {
        let to = dir.join(&h.source);
        fs::create_dir_all(to.parent().unwrap_or(dir))?;
        fs::copy(from.join(&h.source), &to)?;
    }
    let out = dir.join(board_file.file_name().unwrap_or_default());
    fs::write(&out, kept.join("\n") + "\n")?;
    let stripped = heapgen::load(&out)
        .map_err(|d| anyhow::anyhow!("{} is not a valid board file:\n{d}", out.display()))?
        .board;
    if stripped.regions.iter().any(|r| r.accounting) {
        bail!("{}: `accounting` is still set", out.display());
    }
    Ok(out)
}

/// Builds `module_dir` (a board with `accounting`) against a kernel without the dmem cgroup
/// controller: the build must fail with the generated crate root's message.
pub fn expect_no_dmem_error(kernel: &Kernel, module_dir: &Path, module: &str) -> Outcome {
    match build_module(kernel, module_dir, module, &[]) {
        Ok(_) => Outcome::Fail(format!(
            "{module} uses `accounting` but built against {} (no CONFIG_CGROUP_DMEM)",
            kernel.release
        )),
        Err(e) if format!("{e:#}").contains(NO_DMEM_ERROR) => Outcome::Pass,
        Err(e) => Outcome::Fail(format!(
            "the build failed, but not with \"{NO_DMEM_ERROR}\": {e:#}"
        )),
    }
}

/// What a guest run is for, besides the board's own suite.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Run<'a> {
    /// The board's guest suite.
    Suite,
    /// A harness self-test: the runtime built with `--cfg heapgen_fault_<name>`.
    Fault(&'a str),
    /// Booted without the board's CMA areas (x86_64: `cma=0`), so that the module fails to
    /// load: the guest checks that it left nothing behind (`heapgen.suite=failed-load`).
    FailedLoad,
}

/// Runs the guest suite for one board; returns its report.
pub fn run_board(kernel: &Kernel, board_file: &Path, run: Run<'_>) -> Result<Report> {
    let fault = match run {
        Run::Fault(name) => Some(name),
        Run::Suite | Run::FailedLoad => None,
    };
    let mut name = util::file_stem(board_file);
    if run == Run::FailedLoad {
        name = format!("{name}-failed-load");
    }
    if let Some(fault) = fault {
        name = format!("{name}-fault-{fault}");
    }
    let work = work_dir(&kernel.spec, &name);
    // Progress lines name the kernel too: `cargo xtask test` runs two boards at once.
    let tag = format!("{} {name}", kernel.spec.label());
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let module_dir = work.join("module");
    step(format!("{tag}: generating"));
    let mut board = generate(board_file, &module_dir)?;
    if board.arch.as_str() != kernel.arch.name() {
        bail!(
            "{} is an {} board, not {}",
            board_file.display(),
            board.arch.as_str(),
            kernel.arch.name()
        );
    }
    // A kernel without the dmem cgroup controller refuses the board's accounting at build time,
    // with a message of ours; everything else runs from the board without `accounting`.
    let mut extra_cases = Vec::new();
    let mut board_file = board_file.to_path_buf();
    if !kernel.spec.series.has_dmem_cgroup() && board.regions.iter().any(|r| r.accounting) {
        step(format!(
            "{tag}: checking that `accounting` is refused by {}",
            kernel.release
        ));
        extra_cases.push(Case {
            name: format!("build/{}/{name}/accounting-needs-dmem", kernel.spec.label()),
            outcome: expect_no_dmem_error(kernel, &module_dir, &board.module),
        });
        board_file = without_accounting(&board_file, &board, &work.join("board"))?;
        fs::remove_dir_all(&module_dir)?;
        board = generate(&board_file, &module_dir)?;
    }
    step(format!(
        "{tag}: building {}.ko against {}",
        board.module, kernel.release
    ));
    // A fault build (harness self-test) compiles the runtime with `--cfg heapgen_fault_<name>`.
    let extra: Vec<String> = fault
        .map(|f| {
            vec![format!(
                "RUSTFLAGS_MODULE=--cfg heapgen_fault_{}",
                f.replace('-', "_")
            )]
        })
        .unwrap_or_default();
    // Built as Yocto's module.bbclass builds it (the other build systems' ways below).
    let ko = invocation::build(
        kernel,
        &module_dir,
        &work.join("invocations"),
        &board.module,
        Style::Yocto,
        &extra,
    )?;
    let importer = build_importer(kernel, &work)?;
    let programs = work.join("programs");
    guest_programs(kernel, &programs)?;
    let rules = format!("99-{}-heaps.rules", board.name);
    // The generated test suite's runner and heaps.conf, as a board installs them: the guest's
    // /init runs the on-target runner unchanged.
    let generated = |path: &str| {
        fs::read_to_string(module_dir.join(path))
            .with_context(|| format!("reading the generated {path}"))
    };
    let initrd = make_initramfs(
        kernel.arch,
        &work,
        &Initramfs {
            modules: vec![importer, ko],
            programs: Some(&programs),
            init: repo_root().join("tests/guest/init.sh"),
            files: vec![
                (
                    "etc/heapgen/heaps.conf".into(),
                    generated("test/heaps.conf")?,
                ),
                ("bin/heapgen-test".into(), generated("test/heapgen-test")?),
                // The generated device rules, where udev reads them: the guest checks that they
                // close every heap upstream makes over the board's areas.
                (format!("etc/udev/rules.d/{rules}"), generated(&rules)?),
            ],
            userland: Userland::of(&kernel.spec),
        },
    )?;
    let dtb = match kernel.arch {
        Arch::Arm64 => Some(make_dtb(&module_dir, &work, kernel.spec.variant)?),
        Arch::X86_64 => None,
    };
    let log = work.join("console.log");
    step(format!("{tag}: booting QEMU"));
    let start = Instant::now();
    let (console, timed_out) = boot(
        &Boot {
            kernel,
            initrd: &initrd,
            dtb: dtb.as_deref(),
            // The kernel-report faults fire when the module loads: the guest suite would only
            // add minutes (on the debug kernel) to what the self-test looks for.
            append: match run {
                Run::Fault(f) if f != "no-zero" => "heapgen.suite=load",
                Run::FailedLoad => "heapgen.suite=failed-load cma=0",
                _ => "",
            },
            qemu_args: &[],
            cpus: TEST_CPUS,
        },
        &log,
    )?;
    let guest_secs = start.elapsed().as_secs();
    let mut report = ktap::parse(&console, timed_out);
    report.cases.extend(extra_cases);
    if run == Run::Suite {
        report.cases.extend(other_invocations(
            kernel,
            &module_dir,
            &work,
            &name,
            &board.module,
        ));
    }
    step(format!(
        "{tag}: guest ran {}s: {} passed, {} failed, {} skipped (console: {})",
        guest_secs,
        report.passed(),
        report.failed(),
        report.skipped(),
        log.display()
    ));
    Ok(report)
}

/// Prints failures (and skips) of a report with a prefix.
pub fn print_report(prefix: &str, report: &Report) {
    for case in &report.cases {
        match &case.outcome {
            Outcome::Fail(why) => eprintln!("FAIL {prefix}{}: {why}", case.name),
            Outcome::Skip(why) => eprintln!("skip {prefix}{}: {why}", case.name),
            Outcome::Pass => {}
        }
    }
}

/// The test board of a test-bed kernel: `qemu-<arch>`, or `qemu-arm64-16k` for the 16 KiB-page
/// kernel.
pub fn test_boards(spec: Spec) -> Vec<PathBuf> {
    let stem = if spec.variant.page_size() == 16 << 10 {
        "qemu-arm64-16k".to_string()
    } else {
        format!("qemu-{}", spec.arch.name())
    };
    vec![repo_root().join(format!("board-configs/{stem}.toml"))]
}

/// `cargo xtask e2e`.
pub fn cmd_e2e(spec: Spec, boards: &[PathBuf]) -> Result<Report> {
    let label = spec.label();
    let kernel = testbed::ensure(spec)?;
    let boards = if boards.is_empty() {
        test_boards(spec)
    } else {
        boards.to_vec()
    };
    let mut all = Report::default();
    for board in boards {
        let board = if board.is_absolute() {
            board
        } else {
            std::env::current_dir()?.join(board)
        };
        match run_board(&kernel, &board, Run::Suite) {
            Ok(r) => {
                print_report(&format!("{label}: "), &r);
                // Case names carry the kernel, so that the matrix's summary tells them apart.
                all.cases.extend(r.cases.into_iter().map(|c| ktap::Case {
                    name: format!("{label}/{}", c.name),
                    ..c
                }));
            }
            Err(e) => {
                eprintln!("FAIL {label}: {}: {e:#}", board.display());
                all.cases.push(ktap::Case {
                    name: format!("{label}/{}", board.display()),
                    outcome: Outcome::Fail(format!("{e:#}")),
                });
            }
        }
    }
    Ok(all)
}

/// Harness self-test: a module built to trigger a real kernel report (`--cfg heapgen_fault_warn`,
/// a `WARN_ON`, or `--cfg heapgen_fault_lockdep`, a lock-order inversion on a lockdep kernel)
/// must make the run fail with a console case naming the report.
pub fn selftest_kernel_report(spec: Spec, fault: &str, report: &str) -> ktap::Case {
    let name = format!("harness/{}/detects-a-{fault}-report", spec.label());
    let result =
        testbed::ensure(spec).and_then(|k| run_board(&k, &test_boards(spec)[0], Run::Fault(fault)));
    let outcome = match result {
        Ok(r) => {
            let caught = r.cases.iter().find(|c| {
                c.name == "kernel/console"
                    && matches!(&c.outcome, Outcome::Fail(why) if why.contains(report))
            });
            match caught {
                Some(c) => {
                    step(format!("harness self-test: {fault} caught: {:?}", c.outcome));
                    Outcome::Pass
                }
                None => Outcome::Fail(format!(
                    "a module that triggers a {fault} report passed: no console failure naming `{report}`"
                )),
            }
        }
        Err(e) => Outcome::Fail(format!("{e:#}")),
    };
    ktap::Case { name, outcome }
}

/// A module whose init fails leaves nothing behind: the x86_64 board booted without its CMA
/// area (`cma=0`), so that its module refuses to load after it registered its cache-maintenance
/// device; the guest checks that the device, the heaps and the debugfs directories are gone
/// (`failed_load.*` cases). The run's cases, named after the kernel.
pub fn failed_load(spec: Spec) -> Vec<ktap::Case> {
    let label = spec.label();
    let result =
        testbed::ensure(spec).and_then(|k| run_board(&k, &test_boards(spec)[0], Run::FailedLoad));
    match result {
        Ok(r) => {
            print_report(&format!("{label}/failed-load: "), &r);
            r.cases
                .into_iter()
                .map(|c| ktap::Case {
                    name: format!("{label}/failed-load/{}", c.name),
                    ..c
                })
                .collect()
        }
        Err(e) => {
            eprintln!("FAIL {label}/failed-load: {e:#}");
            vec![ktap::Case {
                name: format!("{label}/failed-load"),
                outcome: Outcome::Fail(format!("{e:#}")),
            }]
        }
    }
}

/// Harness self-test: a heap built not to zero its buffers must make the suite fail, and the
/// failure must name zeroing. Returns a case for the summary.
pub fn selftest_no_zero(arch: Arch, variant: Variant) -> ktap::Case {
    let name = format!("harness/{}/detects-a-heap-that-does-not-zero", arch.name());
    let result = testbed::ensure_kernel(arch, variant).and_then(|k| {
        run_board(
            &k,
            &test_boards(Spec::new(arch, variant))[0],
            Run::Fault("no-zero"),
        )
    });
    let outcome = match result {
        Ok(r) => {
            let caught: Vec<&str> = r
                .cases
                .iter()
                .filter(|c| matches!(c.outcome, Outcome::Fail(_)) && c.name.contains("zero"))
                .map(|c| c.name.as_str())
                .collect();
            if caught.is_empty() {
                Outcome::Fail("a heap that does not zero passed the guest suite".into())
            } else {
                step(format!(
                    "harness self-test: the no-zero heap failed {}",
                    caught.join(", ")
                ));
                Outcome::Pass
            }
        }
        Err(e) => Outcome::Fail(format!("{e:#}")),
    };
    ktap::Case { name, outcome }
}
