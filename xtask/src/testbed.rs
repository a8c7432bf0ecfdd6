//! The kernel test bed: packages, bindgen, the kernel source package and cached kernel builds.
//!
//! Everything lives under one cache root (`$HEAPGEN_CACHE`, default `~/.cache/heapgen`) and every
//! step is idempotent: a warm run only checks markers and takes seconds.

use crate::util::{cache_root, have, kernel_cmd, repo_root, run, run_logged, step};
use anyhow::{bail, Context, Result};
use heapgen::render::sha256_hex;
use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::SystemTime,
};

/// Debian packages the test bed needs (installed with `--no-install-recommends`).
const PACKAGES: &[&str] = &[
    "rustc-web",
    "rust-web-src",
    "rustfmt-web",
    // clippy-driver of the same release, for the kernel's `make CLIPPY=1`.
    "rust-web-clippy",
    "libclang-19-dev",
    "clang-19",
    "lld-19",
    "llvm-19",
    "flex",
    "bison",
    "bc",
    "libelf-dev",
    "libssl-dev",
    "cpio",
    "busybox-static",
    "qemu-system-x86",
    "qemu-system-arm",
    "make",
    "dwarves",
    "rsync",
    "gcc-aarch64-linux-gnu",
    "libc6-dev-arm64-cross",
    "device-tree-compiler",
    // depmod, which `make modules_install` runs (the bring-up guide installs the module so).
    "kmod",
    // Android's userland tools, for the 6.12 x86_64 guest (`e2e::Userland::Android`).
    "mksh",
    "toybox",
    "original-awk",
];

const BINDGEN_VERSION: &str = "0.72.1";
/// How many kernel builds the cache keeps (least recently used ones are pruned): the seven of the
/// test matrix (7.2 x86_64, arm64, x86_64 debug and arm64 debug 16K; 6.12 x86_64 and arm64 GKI;
/// 7.3 x86_64) and the three `--full` adds (7.2 arm64 debug, arm64 16K, x86_64 LLVM), which are
/// also every kernel `build`, `integration`, `bench` and `demo` use.
pub const KEEP_KERNELS: usize = 10;

/// A kernel series of the test bed, from Debian's `linux-source-<series>` package (`--kernel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Series {
    /// Linux 6.12 LTS (Debian trixie), with the exports of Android's common kernel patched in.
    #[value(name = "6.12")]
    V6_12,
    /// Linux 7.2 (Debian sid), the default.
    #[value(name = "7.2")]
    V7_2,
    /// Linux 7.3 (Debian trixie-backports): the next kernel, to find API changes early.
    #[value(name = "7.3")]
    V7_3,
}

impl Series {
    /// Whether the series has the dmem cgroup controller (Linux 6.14 and later), which regions
    /// with `accounting = true` need.
    pub fn has_dmem_cgroup(self) -> bool {
        self != Series::V6_12
    }

    /// The series as Debian names its source package.
    pub fn name(self) -> &'static str {
        match self {
            Series::V6_12 => "6.12",
            Series::V7_2 => "7.2",
            Series::V7_3 => "7.3",
        }
    }

    /// Patches (under `tests/kernel/`) applied to the source tree before building.
    ///
    /// Stock 6.12 exports neither the dma-heap registration nor the CMA allocator to modules, so
    /// no out-of-tree heap module can load on it; Android's common kernel (GKI) exports them, and
    /// the patch adds those `EXPORT_SYMBOL_GPL` lines so that the test kernel stands for a GKI one.
    fn patches(self) -> &'static [&'static str] {
        match self {
            Series::V6_12 => &["linux-6.12-gki-exports.patch"],
            Series::V7_2 | Series::V7_3 => &[],
        }
    }
}

/// The compiler a kernel (and every module built against it) is built with (`--cc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Cc {
    /// GCC (the default; `aarch64-linux-gnu-gcc` for arm64).
    Gcc,
    /// Debian's LLVM 19 (`LLVM=-19`), as Android builds its kernels.
    Llvm,
}

/// Which test-bed kernel to use: series, architecture, variant and compiler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Kernel series.
    pub series: Series,
    /// Architecture.
    pub arch: Arch,
    /// Variant.
    pub variant: Variant,
    /// Compiler; the debug variant is always built with LLVM.
    pub cc: Cc,
}

impl Spec {
    /// The default kernel (7.2, GCC) of `arch` and `variant`.
    pub fn new(arch: Arch, variant: Variant) -> Self {
        Self {
            series: Series::V7_2,
            arch,
            variant,
            cc: Cc::Gcc,
        }
    }

    /// Whether the kernel is built with LLVM.
    pub fn llvm(&self) -> bool {
        self.cc == Cc::Llvm || self.variant.llvm()
    }

    /// A short name for logs and work directories: `x86_64` for the default kernel, else
    /// `x86_64-6.12`, `x86_64-llvm`, `x86_64-debug`, ...
    pub fn label(&self) -> String {
        let mut s = self.arch.name().to_string();
        if self.series != Series::V7_2 {
            s += "-";
            s += self.series.name();
        }
        match self.variant.name() {
            Some(name) => {
                s += "-";
                s += name;
            }
            None if self.cc == Cc::Llvm => s += "-llvm",
            None => {}
        }
        s
    }
}

/// A test-bed architecture (`--arch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// x86-64: one `cma=` area, QEMU `pc`.
    #[value(name = "x86_64")]
    X86_64,
    /// arm64: device-tree regions, QEMU `virt`.
    Arm64,
}

impl Arch {
    /// Parses a board file's architecture name (the command line's `--arch` takes the same).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "x86_64" => Ok(Arch::X86_64),
            "arm64" => Ok(Arch::Arm64),
            _ => bail!("unknown architecture `{s}` (expected x86_64 or arm64)"),
        }
    }

    /// The name used in board files.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// Make variables selecting the architecture and cross compiler.
    pub fn make_vars(self) -> Vec<String> {
        match self {
            Arch::X86_64 => vec!["ARCH=x86_64".into()],
            Arch::Arm64 => vec![
                "ARCH=arm64".into(),
                "CROSS_COMPILE=aarch64-linux-gnu-".into(),
            ],
        }
    }

    /// The C compiler for static guest programs.
    pub fn guest_cc(self) -> &'static str {
        match self {
            Arch::X86_64 => "gcc",
            Arch::Arm64 => "aarch64-linux-gnu-gcc",
        }
    }

    fn image(self) -> &'static str {
        match self {
            Arch::X86_64 => "arch/x86/boot/bzImage",
            Arch::Arm64 => "arch/arm64/boot/Image",
        }
    }

    fn image_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "bzImage",
            Arch::Arm64 => "Image",
        }
    }
}

/// A kernel variant (`--variant`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// The default test kernel.
    Default,
    /// KASAN, lockdep, kmemleak, DEBUG_VM and fault injection on top. Built with LLVM: the
    /// kernel only allows KASAN together with Rust in clang-built kernels.
    Debug,
    /// arm64 with 16 KiB pages (`CONFIG_ARM64_16K_PAGES`), as Android's `kernel_aarch64_16k`.
    #[value(name = "16k")]
    Pages16K,
    /// The hardening of Android's GKI kernels that changes how a module is built or called:
    /// kCFI (`CONFIG_CFI_CLANG`, not permissive) and shadow call stacks. Built with LLVM, as
    /// GKI kernels are.
    Gki,
    /// The checkers of the debug variant on an arm64 kernel with 16 KiB pages: the page-size
    /// arithmetic under KASAN, in one kernel build instead of two (the CI time budget).
    #[value(name = "debug-16k")]
    Debug16K,
}

impl Variant {
    /// Whether kernels of this variant are built with LLVM.
    pub fn llvm(self) -> bool {
        matches!(self, Variant::Debug | Variant::Gki | Variant::Debug16K)
    }

    /// The fragments (under `tests/kernel/`) the variant adds.
    fn fragments(self) -> &'static [&'static str] {
        match self {
            Variant::Default => &[],
            Variant::Debug => &["debug.config"],
            Variant::Pages16K => &["arm64-16k.config"],
            Variant::Gki => &["gki.config"],
            Variant::Debug16K => &["arm64-16k.config", "debug.config"],
        }
    }

    /// The variant's name in cache keys and labels (`-<name>`), if any.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Variant::Default => None,
            Variant::Debug => Some("debug"),
            Variant::Pages16K => Some("16k"),
            Variant::Gki => Some("gki"),
            Variant::Debug16K => Some("debug-16k"),
        }
    }

    /// The kernel's page size, in bytes.
    pub fn page_size(self) -> u64 {
        match self {
            Variant::Pages16K | Variant::Debug16K => 16 << 10,
            _ => 4 << 10,
        }
    }
}

/// The make variable selecting Debian's LLVM 19 toolchain.
const LLVM: &str = "LLVM=-19";

/// A built test-bed kernel.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// Architecture.
    pub arch: Arch,
    /// Source tree.
    pub src: PathBuf,
    /// Build (`O=`) directory, also `KDIR` for modules.
    pub build: PathBuf,
    /// Boot image.
    pub image: PathBuf,
    /// Kernel release (`make kernelrelease`).
    pub release: String,
    /// bindgen binary.
    pub bindgen: PathBuf,
    /// Built with clang/LLVM (`LLVM=-19`) rather than GCC.
    pub llvm: bool,
    /// What was asked for.
    pub spec: Spec,
}

impl Kernel {
    /// The make variables every build against this kernel uses.
    pub fn make_vars(&self) -> Vec<String> {
        let mut vars = self.arch.make_vars();
        vars.extend([
            "RUSTC=/usr/bin/rustc".to_string(),
            "HOSTRUSTC=/usr/bin/rustc".to_string(),
            "RUSTDOC=/usr/bin/rustdoc".to_string(),
            "RUST_LIB_SRC=/usr/lib/rustlib/src/rust/library".to_string(),
            format!("BINDGEN={}", self.bindgen.display()),
        ]);
        if self.llvm {
            vars.push(LLVM.to_string());
        }
        vars
    }

    /// Builds the out-of-tree module in `dir` with extra make variables; returns the output.
    pub fn build_module(&self, dir: &Path, extra: &[String]) -> Result<String> {
        let mut cmd = kernel_cmd("make");
        cmd.arg("-C")
            .arg(&self.build)
            .arg(format!("M={}", dir.display()))
            .args(self.make_vars())
            .args(extra)
            .arg("modules");
        run(&mut cmd).with_context(|| format!("building the module in {}", dir.display()))
    }
}

fn dpkg_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// One kernel build at a time: a build takes every core, and `cargo xtask test` runs its jobs
/// on two workers ([`ensure`] holds it). Lock order: `KERNELS`, then a tool's lock in
/// `INSTALLS`, then `TOOLS`.
static KERNELS: Mutex<()> = Mutex::new(());

/// One apt run or download into the cache at a time (packages, busybox).
static TOOLS: Mutex<()> = Mutex::new(());

/// A lock per tool `cargo install`s into the cache ([`ensure_cargo_tool`]).
static INSTALLS: Mutex<BTreeMap<String, Arc<Mutex<()>>>> = Mutex::new(BTreeMap::new());

/// Takes a setup lock; a worker that panicked while holding it left nothing half-done that the
/// markers do not catch (every step is complete only once its marker file is written).
fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Installs missing Debian packages (as root), or says what to run.
pub fn ensure_packages() -> Result<()> {
    let _tools = lock(&TOOLS);
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let command = format!(
        "apt-get update && apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() {
        bail!(
            "missing packages: {}\nrun as root: {command}",
            missing.join(" ")
        );
    }
    let log = cache_root().join("apt-install.log");
    fs::create_dir_all(cache_root())?;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(&command)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run_logged(&mut cmd, &format!("installing {}", missing.join(" ")), &log)
}

/// Installs the pinned bindgen-cli into the cache.
pub fn ensure_bindgen() -> Result<PathBuf> {
    ensure_cargo_tool("bindgen-cli", BINDGEN_VERSION, "bindgen")
}

/// Installs version `version` of the crates.io package `name` into the cache
/// (`tools/<name>-<version>`, with `cargo install --locked`), once, and returns the path of its
/// binary `bin`. The install is logged to `<name>-install.log` in the cache.
pub fn ensure_cargo_tool(name: &str, version: &str, bin: &str) -> Result<PathBuf> {
    // One install of each tool at a time; different tools install side by side (a cold run
    // builds cargo-deny while a kernel build waits for bindgen only).
    let tool_lock = {
        let mut installs = INSTALLS.lock().unwrap_or_else(PoisonError::into_inner);
        installs
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(())))
            .clone()
    };
    let _tool = lock(&tool_lock);
    let root = cache_root().join(format!("tools/{name}-{version}"));
    let path = root.join("bin").join(bin);
    if path.is_file() {
        return Ok(path);
    }
    // The first thing a cold run builds (the host checks come before any kernel): the cache
    // and the packages (cargo's C toolchain, bindgen's libclang) may not be there yet.
    ensure_packages()?;
    fs::create_dir_all(cache_root())?;
    let log = cache_root().join(format!("{name}-install.log"));
    let mut cmd = Command::new("cargo");
    cmd.args(["install", name, "--locked", "--version", version, "--root"])
        .arg(&root)
        .env_remove("CARGO_TARGET_DIR");
    run_logged(&mut cmd, &format!("installing {name} {version}"), &log)?;
    if !path.is_file() {
        bail!("installing {name} {version} gave no {}", path.display());
    }
    Ok(path)
}

/// Options for apt that use a private sources list and lists directory under the cache, so the
/// machine's own apt configuration is never touched.
fn private_apt_opts(dir: &Path, arch: Option<&str>) -> Vec<String> {
    let mut opts = vec![
        format!(
            "-oDir::Etc::sourcelist={}",
            dir.join("sources.list").display()
        ),
        "-oDir::Etc::sourceparts=-".to_string(),
        format!("-oDir::State::Lists={}", dir.join("lists").display()),
        format!("-oDir::Cache={}", dir.display()),
        "-oAPT::Sandbox::User=root".to_string(),
    ];
    if let Some(arch) = arch {
        opts.push(format!("-oAPT::Architecture={arch}"));
        opts.push(format!("-oAPT::Architectures={arch}"));
    }
    opts
}

/// Downloads a Debian package through a private apt configuration into `dest`; returns the .deb.
fn download_deb(suite: &str, arch: Option<&str>, package: &str, dest: &Path) -> Result<PathBuf> {
    let dir = cache_root().join(format!("apt-{suite}-{}", arch.unwrap_or("native")));
    fs::create_dir_all(dir.join("lists/partial"))?;
    fs::create_dir_all(dir.join("archives/partial"))?;
    fs::write(
        dir.join("sources.list"),
        format!("deb http://deb.debian.org/debian {suite} main\n"),
    )?;
    let opts = private_apt_opts(&dir, arch);
    run(Command::new("apt-get").args(&opts).arg("update"))
        .with_context(|| format!("apt-get update for {suite}"))?;
    fs::create_dir_all(dest)?;
    run(Command::new("apt-get")
        .args(&opts)
        .arg("download")
        .arg(package)
        .current_dir(dest))?;
    let deb = fs::read_dir(dest)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
        })
        .with_context(|| format!("apt-get download {package} produced no .deb"))?;
    Ok(deb)
}

/// Unpacks `linux-source-<series>` from Debian into the cache; returns the source tree.
pub fn ensure_source(series: &str) -> Result<PathBuf> {
    let tree = cache_root().join(format!("src/linux-source-{series}"));
    let marker = tree.join(".heapgen-complete");
    if marker.is_file() {
        return Ok(tree);
    }
    let suite = match series {
        "7.2" => "sid",
        "7.3" => "trixie-backports",
        "6.12" => "trixie",
        _ => bail!("no Debian suite known for linux-source-{series}"),
    };
    step(format!(
        "fetching linux-source-{series} from Debian {suite}"
    ));
    let dl = cache_root().join("src/download");
    let _ = fs::remove_dir_all(&dl);
    let deb = download_deb(suite, None, &format!("linux-source-{series}"), &dl)?;
    let tmp = cache_root().join(format!("src/.unpack-{series}"));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let script = format!(
        "dpkg-deb --fsys-tarfile '{}' | tar -xO ./usr/src/linux-source-{series}.tar.xz | tar -xJ -C '{}'",
        deb.display(),
        tmp.display()
    );
    run_logged(
        Command::new("sh").arg("-c").arg(script),
        &format!("unpacking linux-source-{series}"),
        &cache_root().join("src/unpack.log"),
    )?;
    let _ = fs::remove_dir_all(&tree);
    fs::rename(tmp.join(format!("linux-source-{series}")), &tree)?;
    let _ = fs::remove_dir_all(&tmp);
    let _ = fs::remove_dir_all(&dl);
    fs::write(&marker, "")?;
    Ok(tree)
}

/// Static busybox for the guest: the host's for x86_64, Debian's arm64 package otherwise.
pub fn ensure_busybox(arch: Arch) -> Result<PathBuf> {
    match arch {
        Arch::X86_64 => {
            let p = PathBuf::from("/bin/busybox");
            if !p.is_file() {
                bail!("/bin/busybox missing (package busybox-static)");
            }
            Ok(p)
        }
        Arch::Arm64 => {
            let _tools = lock(&TOOLS);
            let dir = cache_root().join("busybox-arm64");
            let bin = dir.join("bin/busybox");
            if bin.is_file() {
                return Ok(bin);
            }
            let dl = dir.join("download");
            let deb = download_deb("bookworm", Some("arm64"), "busybox-static", &dl)?;
            run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir))?;
            let _ = fs::remove_dir_all(&dl);
            if !bin.is_file() {
                bail!("busybox-static for arm64 has no bin/busybox");
            }
            Ok(bin)
        }
    }
}

pub fn tool_version(cmd: &str, arg: &str) -> String {
    kernel_cmd(cmd)
        .arg(arg)
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

/// The config fragment(s) of a kernel: the architecture's, the dmem cgroup controller's where
/// the series has it, plus the variant's.
fn fragments(arch: Arch, variant: Variant, series: Series) -> Vec<PathBuf> {
    let dir = repo_root().join("tests/kernel");
    let mut v = vec![dir.join(format!("{}.config", arch.name()))];
    if series.has_dmem_cgroup() {
        v.push(dir.join("cgroup-dmem.config"));
    }
    v.extend(variant.fragments().iter().map(|f| dir.join(f)));
    v
}

/// Checks that every option of `fragment` survived `olddefconfig`.
fn check_config(config: &str, fragment: &str) -> Result<()> {
    let dropped = missing_options(config, fragment);
    if !dropped.is_empty() {
        bail!(
            "kernel options did not survive olddefconfig (a dependency is missing):\n  {}",
            dropped.join("\n  ")
        );
    }
    Ok(())
}

/// The options of the config fragment `fragment` that the kernel configuration `config` does not
/// have as the fragment says.
pub fn missing_options(config: &str, fragment: &str) -> Vec<String> {
    let mut dropped = Vec::new();
    for line in fragment.lines().map(str::trim) {
        if let Some(opt) = line
            .strip_prefix("# ")
            .and_then(|l| l.strip_suffix(" is not set"))
        {
            if config.lines().any(|l| l.starts_with(&format!("{opt}="))) {
                dropped.push(format!("{opt} (wanted unset)"));
            }
        } else if line.starts_with("CONFIG_") && !config.lines().any(|l| l.trim() == line) {
            dropped.push(line.to_string());
        }
    }
    dropped
}

/// Applies `spec`'s patches to the cached source tree, idempotently (a patch that reverses
/// cleanly is already applied); returns their text for the cache key.
fn ensure_patches(src: &Path, series: Series) -> Result<String> {
    let mut text = String::new();
    for name in series.patches() {
        let patch = repo_root().join("tests/kernel").join(name);
        text +=
            &fs::read_to_string(&patch).with_context(|| format!("reading {}", patch.display()))?;
        let patch_cmd = |args: &[&str]| {
            let mut cmd = Command::new("patch");
            cmd.current_dir(src)
                .args(["-p1", "-s", "-f", "-i"])
                .arg(&patch)
                .args(args);
            cmd
        };
        if run(&mut patch_cmd(&["-R", "--dry-run"])).is_ok() {
            continue;
        }
        step(format!("applying {name} to linux-source-{}", series.name()));
        run(&mut patch_cmd(&["-N"])).with_context(|| format!("applying {}", patch.display()))?;
    }
    Ok(text)
}

/// Sets up everything and builds (or reuses) the default test-bed kernel (7.2, GCC) for `arch`.
pub fn ensure_kernel(arch: Arch, variant: Variant) -> Result<Kernel> {
    ensure(Spec::new(arch, variant))
}

/// The test-bed kernel a board's module is built against outside the matrix runs (`cargo xtask
/// build`, `cargo xtask integration`): the default 7.2 kernel of its architecture, or for a
/// 16 KiB-page board the matrix's 16 KiB-page kernel (the debug one, LLVM), so that no kernel is
/// built for these steps alone.
pub fn kernel_for_board(board: &heapgen::ir::Board) -> Result<Kernel> {
    let arch = Arch::parse(board.arch.as_str())?;
    if board.page_size == Variant::Debug16K.page_size() {
        ensure(Spec {
            series: Series::V7_2,
            arch,
            variant: Variant::Debug16K,
            cc: Cc::Llvm,
        })
    } else {
        ensure_kernel(arch, Variant::Default)
    }
}

/// Sets up everything and builds (or reuses) the test-bed kernel `spec`.
pub fn ensure(spec: Spec) -> Result<Kernel> {
    let _kernels = lock(&KERNELS);
    let Spec { arch, variant, .. } = spec;
    let llvm = spec.llvm();
    ensure_packages()?;
    let bindgen = ensure_bindgen()?;
    let src = ensure_source(spec.series.name())?;
    let frags = fragments(arch, variant, spec.series);
    let mut key_material = ensure_patches(&src, spec.series)?;
    for f in &frags {
        key_material +=
            &fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
    }
    key_material += &tool_version("/usr/bin/rustc", "--version");
    key_material += &tool_version(bindgen.to_str().unwrap_or("bindgen"), "--version");
    key_material += &if llvm {
        tool_version("clang-19", "--version")
    } else {
        let cc = if arch == Arch::Arm64 {
            "aarch64-linux-gnu-gcc"
        } else {
            "gcc"
        };
        tool_version(cc, "--version")
    };
    let version = fs::read_to_string(src.join("Makefile"))?
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| ["VERSION ", "PATCHLEVEL ", "SUBLEVEL "].contains(k))
        .map(|(_, v)| v.trim().to_string())
        .collect::<Vec<_>>()
        .join(".");
    let key = format!(
        "{}-{}-{}-{}",
        version,
        arch.name(),
        match (variant.name(), spec.cc) {
            (Some(name), _) => name,
            (None, Cc::Gcc) => "default",
            (None, Cc::Llvm) => "llvm",
        },
        &sha256_hex(key_material.as_bytes())[..12]
    );
    let kernels = cache_root().join("kernels");
    let build = kernels.join(&key);
    let marker = build.join(".heapgen-complete");
    let image = build.join(arch.image());
    if !marker.is_file() {
        fs::create_dir_all(&build)?;
        let make = |args: &[&str]| {
            let mut cmd = kernel_cmd("make");
            cmd.current_dir(&src)
                .arg(format!("O={}", build.display()))
                .args(arch.make_vars())
                .args([
                    "RUSTC=/usr/bin/rustc",
                    "HOSTRUSTC=/usr/bin/rustc",
                    "RUSTDOC=/usr/bin/rustdoc",
                    "RUST_LIB_SRC=/usr/lib/rustlib/src/rust/library",
                ])
                .arg(format!("BINDGEN={}", bindgen.display()))
                .args(llvm.then_some(LLVM))
                .args(args);
            cmd
        };
        run(&mut make(&["tinyconfig"]))?;
        let mut merge = kernel_cmd("scripts/kconfig/merge_config.sh");
        merge
            .current_dir(&src)
            .env(
                "ARCH",
                if arch == Arch::Arm64 {
                    "arm64"
                } else {
                    "x86_64"
                },
            )
            .envs(llvm.then_some(("LLVM", "-19")))
            .arg("-m")
            .arg("-O")
            .arg(&build)
            .arg(build.join(".config"))
            .args(&frags);
        run(&mut merge)?;
        run(&mut make(&["olddefconfig"]))?;
        let config = fs::read_to_string(build.join(".config"))?;
        for f in &frags {
            check_config(&config, &fs::read_to_string(f)?)?;
        }
        let jobs = format!(
            "-j{}",
            std::thread::available_parallelism().map_or(2, |n| n.get())
        );
        run_logged(
            &mut make(&[&jobs, arch.image_target(), "modules", "headers"]),
            &format!("building Linux {version} for {}", spec.label()),
            &kernels.join(format!("{key}.log")),
        )?;
        if !image.is_file() {
            bail!("kernel build produced no {}", image.display());
        }
        fs::write(&marker, "")?;
    }
    // Mark as used for the LRU pruning.
    fs::write(&marker, "")?;
    prune_kernels(&kernels)?;
    let release = fs::read_to_string(build.join("include/config/kernel.release"))
        .unwrap_or_default()
        .trim()
        .to_string();
    Ok(Kernel {
        arch,
        src,
        build,
        image,
        release,
        bindgen,
        llvm,
        spec,
    })
}

/// Keeps the `KEEP_KERNELS` most recently used kernel builds and removes the rest (and any
/// incomplete build older than an hour).
fn prune_kernels(kernels: &Path) -> Result<()> {
    let mut builds: Vec<(SystemTime, PathBuf)> = Vec::new();
    for entry in fs::read_dir(kernels)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let marker = path.join(".heapgen-complete");
        match fs::metadata(&marker).and_then(|m| m.modified()) {
            Ok(t) => builds.push((t, path)),
            Err(_) => {
                let age = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok());
                if age.is_some_and(|a| a.as_secs() > 3600) {
                    step(format!(
                        "pruning incomplete kernel build {}",
                        path.display()
                    ));
                    let _ = fs::remove_dir_all(&path);
                }
            }
        }
    }
    builds.sort_by_key(|b| std::cmp::Reverse(b.0));
    for (_, path) in builds.into_iter().skip(KEEP_KERNELS) {
        step(format!("pruning old kernel build {}", path.display()));
        let _ = fs::remove_dir_all(&path);
        let _ = fs::remove_file(path.with_extension("log"));
    }
    Ok(())
}

/// `cargo xtask testbed`: set up everything for `spec` and print where it is.
pub fn cmd_testbed(spec: Spec) -> Result<()> {
    let arch = spec.arch;
    let k = ensure(spec)?;
    if !have(match arch {
        Arch::X86_64 => "qemu-system-x86_64",
        Arch::Arm64 => "qemu-system-aarch64",
    }) {
        bail!("QEMU for {} is missing", arch.name());
    }
    ensure_busybox(arch)?;
    println!(
        "kernel {} ({}): {}",
        k.release,
        arch.name(),
        k.build.display()
    );
    println!("image: {}", k.image.display());
    Ok(())
}
