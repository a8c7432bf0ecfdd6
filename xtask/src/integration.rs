//! `cargo xtask integration`: the build systems' own tools on every board's generated files.
//!
//! The tools are not in any registry CI can install from, so this runs when given their
//! sources (the `fetch` of a public repository, or an integrator's checkout):
//!
//! - `--kleaf DIR` (a checkout of Kleaf, `build/kernel`): Kleaf's own `gen_makefiles.py` writes
//!   the Kbuild, Makefile and flag files of every board's `ddk_module` from the generated
//!   `BUILD.bazel`, exactly as the `ddk_module` rule passes them; the module is built with them
//!   against the test-bed kernel of its architecture; the Kbuild must equal the one `cargo xtask
//!   test` writes in Kleaf's style; and every attribute the BUILD file passes must be a parameter
//!   of Kleaf's `ddk_module` macro.
//! - `--buildroot DIR`: Buildroot's `utils/check-package` on every br2-external tree, then
//!   Buildroot configured with all of them at once, every heap package enabled, and
//!   `<pkg>-show-info` and `printvars` read back.
//! - `--oe-core DIR --bitbake DIR`: a build directory with every generated layer; `bitbake -p`,
//!   `bitbake -e <module recipe>` and `yocto-check-layer` on each layer, as an unprivileged
//!   user (BitBake refuses root), offline (`BB_NO_NETWORK`).
//!
//! Whatever was not given is reported as skipped, with the flag that would run it.

use crate::{
    e2e,
    invocation::{self, DdkModule},
    ktap::{Case, Outcome, Report},
    testbed,
    util::{self, cache_root, repo_root, run, step},
};
use anyhow::{bail, Context, Result};
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

/// Where the build systems' sources are (the options of `cargo xtask integration`); a build
/// system whose sources are not given is skipped.
#[derive(Debug, Default, clap::Args)]
pub struct Trees {
    /// A Kleaf checkout (`build/kernel`, with `kleaf/impl/ddk/`).
    #[arg(long, value_name = "DIR")]
    pub kleaf: Option<PathBuf>,
    /// A Buildroot checkout.
    #[arg(long, value_name = "DIR")]
    pub buildroot: Option<PathBuf>,
    /// An OpenEmbedded-Core checkout (with --bitbake).
    #[arg(long = "oe-core", value_name = "DIR", requires = "bitbake")]
    pub oe_core: Option<PathBuf>,
    /// A BitBake checkout (with --oe-core).
    #[arg(long, value_name = "DIR", requires = "oe_core")]
    pub bitbake: Option<PathBuf>,
}

/// Pinned Python packages the tools need: Kleaf's scripts use absl.
const ABSL_PY: &str = "absl-py==2.3.1";

/// The version of a source tree: `git describe`, else "unknown".
fn describe(dir: &Path) -> String {
    run(Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["describe", "--always", "--tags", "--dirty"]))
    .map(|s| s.trim().to_string())
    .unwrap_or_else(|_| "unknown".to_string())
}

fn skipped(name: &str, why: &str) -> Case {
    println!("skip {name}: {why}");
    Case {
        name: name.to_string(),
        outcome: Outcome::Skip(why.to_string()),
    }
}

/// A Python venv under the cache with `packages`, created or completed when needed.
fn venv(name: &str, packages: &[&str]) -> Result<PathBuf> {
    let venv = cache_root().join(name);
    let stamp = venv.join(".heapgen-requirements");
    let wanted = packages.join("\n");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(venv);
    }
    step(format!(
        "installing {} into {}",
        packages.join(" "),
        venv.display()
    ));
    if !venv.join("bin/python3").exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(packages))?;
    fs::write(&stamp, wanted)?;
    Ok(venv)
}

/// Every board in board-configs/, generated with every target into `target/integration/`.
fn generate_boards() -> Result<Vec<(String, heapgen::ir::Board, PathBuf)>> {
    let mut out = Vec::new();
    let mut boards: Vec<PathBuf> = fs::read_dir(repo_root().join("board-configs"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    boards.sort();
    for board_file in boards {
        let stem = util::file_stem(&board_file);
        let dir = repo_root().join("target/integration").join(&stem);
        let _ = fs::remove_dir_all(&dir);
        let board = e2e::generate(&board_file, &dir)?;
        out.push((stem, board, dir));
    }
    Ok(out)
}

/// `cargo xtask integration`.
pub fn cmd_integration(trees: &Trees) -> Result<Report> {
    let boards = generate_boards()?;
    let mut report = Report::default();
    match &trees.kleaf {
        Some(dir) => report.cases.extend(kleaf(dir, &boards)),
        None => report.cases.push(skipped(
            "integration/kleaf",
            "no --kleaf DIR (a Kleaf checkout) given",
        )),
    }
    match &trees.buildroot {
        Some(dir) => report.cases.extend(buildroot(dir, &boards)),
        None => report.cases.push(skipped(
            "integration/buildroot",
            "no --buildroot DIR (a Buildroot checkout) given",
        )),
    }
    match (&trees.oe_core, &trees.bitbake) {
        (Some(oe_core), Some(bitbake)) => report.cases.extend(yocto(oe_core, bitbake, &boards)),
        _ => report.cases.push(skipped(
            "integration/yocto",
            "no --oe-core DIR and --bitbake DIR (OpenEmbedded-Core and BitBake checkouts) given",
        )),
    }
    Ok(report)
}

/// The parameters of Kleaf's `ddk_module` macro, read from its definition.
fn ddk_module_parameters(kleaf: &Path) -> Result<Vec<String>> {
    let path = kleaf.join("kleaf/impl/ddk/ddk_module.bzl");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let def = text
        .split("\ndef ddk_module(")
        .nth(1)
        .context("ddk_module.bzl defines no ddk_module")?;
    let params = def.split("):").next().unwrap_or_default();
    Ok(params
        .split(',')
        .map(|p| p.split('=').next().unwrap_or_default().trim().to_string())
        .filter(|p| !p.is_empty())
        .collect())
}

/// The attributes a generated BUILD file passes to `ddk_module`.
fn build_attributes(build: &str) -> Vec<String> {
    build
        .split("\nddk_module(")
        .nth(1)
        .and_then(|call| call.split("\n)").next())
        .map(|call| {
            call.lines()
                .filter_map(|l| l.strip_prefix("    "))
                .filter(|l| !l.starts_with(' '))
                .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Kleaf's `gen_makefiles.py` on one board's `ddk_module`, as the rule runs it: the sources as
/// `<package>/<file>` (headers left out), no options. Writes into `out`.
fn gen_makefiles(python: &Path, kleaf: &Path, ddk: &DdkModule, out: &Path) -> Result<()> {
    const PACKAGE: &str = "vendor/heapgen";
    let work = out.with_extension("inputs");
    let _ = fs::remove_dir_all(&work);
    let _ = fs::remove_dir_all(out);
    fs::create_dir_all(&work)?;
    let in_package = |f: &String| format!("{PACKAGE}/{f}");
    let srcs: Vec<String> = ddk
        .srcs
        .iter()
        .filter(|f| !f.ends_with(".h"))
        .map(in_package)
        .collect();
    let json = serde_json::json!([
        { "files": srcs },
        { "files": [in_package(&ddk.crate_root)], "type": "crate_root" },
    ]);
    fs::write(work.join("srcs.json"), serde_json::to_string_pretty(&json)?)?;
    for f in ["copts", "removed_copts", "asopts", "linkopts"] {
        fs::write(work.join(format!("{f}.json")), "[]")?;
    }
    run(Command::new(python)
        .arg(kleaf.join("kleaf/impl/ddk/gen_makefiles.py"))
        .arg("--kernel-module-srcs-json")
        .arg(work.join("srcs.json"))
        .arg("--kernel-module-out")
        .arg(&ddk.out)
        .arg("--output-makefiles")
        .arg(out)
        .arg("--package")
        .arg(PACKAGE)
        .arg("--produce-top-level-makefile")
        .arg("--copts-file")
        .arg(work.join("copts.json"))
        .arg("--removed-copts-file")
        .arg(work.join("removed_copts.json"))
        .arg("--asopts-file")
        .arg(work.join("asopts.json"))
        .arg("--linkopts-file")
        .arg(work.join("linkopts.json")))
    .context("running Kleaf's gen_makefiles.py")?;
    Ok(())
}

/// Lines that are neither blank nor comments.
fn significant(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn kleaf(dir: &Path, boards: &[(String, heapgen::ir::Board, PathBuf)]) -> Vec<Case> {
    println!("Kleaf: {} ({})", dir.display(), describe(dir));
    let mut cases = Vec::new();
    let python = match venv("venv-integration", &[ABSL_PY]) {
        Ok(v) => v.join("bin/python3"),
        Err(e) => return vec![Case::checked("integration/kleaf/setup", Err(e))],
    };
    let params = ddk_module_parameters(dir);
    for (stem, board, generated) in boards {
        let name = |what: &str| format!("integration/kleaf/{stem}/{what}");
        let build = match fs::read_to_string(generated.join("BUILD.bazel")) {
            Ok(b) => b,
            Err(e) => {
                cases.push(Case::checked(name("BUILD.bazel"), Err(e.into())));
                continue;
            }
        };
        cases.push(Case::checked(
            name("ddk_module-attributes"),
            params
                .as_ref()
                .map_err(|e| anyhow::anyhow!("{e:#}"))
                .and_then(|params| {
                    let unknown: Vec<String> = build_attributes(&build)
                        .into_iter()
                        // Common to every Bazel rule (Kleaf's macro passes **kwargs on).
                        .filter(|a| a != "visibility" && !params.contains(a))
                        .collect();
                    if unknown.is_empty() {
                        Ok(())
                    } else {
                        bail!("ddk_module has no parameter {}", unknown.join(", "))
                    }
                }),
        ));
        let ddk = match invocation::parse_build(&build) {
            Ok(d) => d,
            Err(e) => {
                cases.push(Case::checked(name("BUILD.bazel"), Err(e)));
                continue;
            }
        };
        let made = generated.with_extension("kleaf-makefiles");
        let result = gen_makefiles(&python, dir, &ddk, &made);
        let ok = result.is_ok();
        cases.push(Case::checked(name("gen_makefiles"), result));
        if !ok {
            continue;
        }
        cases.push(Case::checked(
            name("kbuild-as-in-cargo-xtask-test"),
            (|| -> Result<()> {
                let real = fs::read_to_string(made.join("Kbuild"))?;
                let ours = invocation::ddk_kbuild(&ddk)?;
                if significant(&real) != significant(&ours) {
                    bail!("Kleaf writes\n{real}\ncargo xtask test writes\n{ours}");
                }
                Ok(())
            })(),
        ));
        let built = (|| -> Result<()> {
            let kernel = testbed::kernel_for_board(board)?;
            let copy_made = |_: &DdkModule, package: &Path| -> Result<()> {
                run(Command::new("cp")
                    .arg("-a")
                    .arg(format!("{}/.", made.display()))
                    .arg(package))?;
                Ok(())
            };
            let work = generated.with_extension("kleaf-build");
            let ko =
                invocation::build_kleaf_with(&kernel, generated, &work, &board.module, &copy_made)?;
            step(format!("{stem}: Kleaf's files built {}", ko.display()));
            Ok(())
        })();
        cases.push(Case::checked(name("build"), built));
    }
    cases
}

/// Python packages Buildroot's `utils/check-package` imports (it runs flake8 on Python files and
/// python-magic to tell file types); `shellcheck` comes from Debian.
const CHECK_PACKAGE_PY: &[&str] = &["flake8==7.3.0", "python-magic==0.4.27"];

/// The Debian packages Buildroot's own dependency check and check-package need here.
const BUILDROOT_DEBS: &[&str] = &[
    "bc",
    "cpio",
    "file",
    "libmagic1",
    "patch",
    "perl",
    "python3-venv",
    "rsync",
    "shellcheck",
    "unzip",
    "wget",
];

/// Installs missing Debian packages (as root).
fn ensure_debs(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(format!("installing {}", missing.join(" ")));
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    Ok(())
}

/// Every file below `dir`, relative to it, sorted.
fn files_below(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir)?.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `make` in the Buildroot tree `br` with output `out`, offline: in a network namespace of its
/// own when that can be made (root), so that a download would fail rather than happen.
fn br_make(br: &Path, out: &Path, dl: &Path, args: &[String]) -> Result<String> {
    run(&mut br_command(br, out, dl, args))
}

/// The command [`br_make`] runs.
fn br_command(br: &Path, out: &Path, dl: &Path, args: &[String]) -> Command {
    let offline = Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let mut cmd = if offline {
        let mut c = Command::new("unshare");
        c.args(["-n", "make"]);
        c
    } else {
        Command::new("make")
    };
    cmd.args(["-s", "--no-print-directory", "-C"])
        .arg(br)
        .arg(format!("O={}", out.display()))
        .arg(format!("BR2_DL_DIR={}", dl.display()))
        .args(args)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS");
    cmd
}

/// The default configuration of Buildroot's QEMU board of an architecture.
fn br_defconfig(arch: heapgen::ir::Arch) -> &'static str {
    match arch.as_str() {
        "arm64" => "qemu_aarch64_virt_defconfig",
        _ => "qemu_x86_64_defconfig",
    }
}

fn buildroot(dir: &Path, boards: &[(String, heapgen::ir::Board, PathBuf)]) -> Vec<Case> {
    println!("Buildroot: {} ({})", dir.display(), describe(dir));
    let mut cases = Vec::new();
    let setup = (|| -> Result<PathBuf> {
        ensure_debs(BUILDROOT_DEBS)?;
        venv("venv-check-package", CHECK_PACKAGE_PY)
    })();
    let venv = match setup {
        Ok(v) => v,
        Err(e) => return vec![Case::checked("integration/buildroot/setup", Err(e))],
    };
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (stem, _, generated) in boards {
        let tree = generated.join("buildroot");
        cases.push(Case::checked(
            format!("integration/buildroot/{stem}/check-package"),
            (|| -> Result<()> {
                let out = run(Command::new(venv.join("bin/python3"))
                    .arg(dir.join("utils/check-package"))
                    .arg("-b")
                    .args(files_below(&tree)?)
                    .current_dir(&tree)
                    .env("PATH", &path))?;
                if !out.lines().any(|l| l.trim() == "0 warnings generated") {
                    bail!("check-package:\n{out}");
                }
                Ok(())
            })(),
        ));
    }
    // One configuration per architecture, with every tree of it at once (as an integrator with
    // several boards would), every heap package enabled.
    let mut arches: Vec<heapgen::ir::Arch> = boards.iter().map(|(_, b, _)| b.arch).collect();
    arches.sort_by_key(|a| a.as_str());
    arches.dedup();
    for arch in arches {
        let ours: Vec<&(String, heapgen::ir::Board, PathBuf)> =
            boards.iter().filter(|(_, b, _)| b.arch == arch).collect();
        let name = |what: &str| format!("integration/buildroot/{}/{what}", arch.as_str());
        let work = repo_root()
            .join("target/integration/buildroot")
            .join(arch.as_str());
        let (out, dl) = (work.join("output"), work.join("dl"));
        let configured = (|| -> Result<()> {
            let _ = fs::remove_dir_all(&work);
            fs::create_dir_all(&dl)?;
            // Buildroot runs git in external trees inside a git work tree: use copies.
            let mut externals = Vec::new();
            for (stem, _, generated) in &ours {
                let copy = work.join("external").join(stem);
                fs::create_dir_all(copy.parent().unwrap_or(&work))?;
                run(Command::new("cp")
                    .arg("-a")
                    .arg(generated.join("buildroot"))
                    .arg(&copy))?;
                externals.push(copy.display().to_string());
            }
            br_make(
                dir,
                &out,
                &dl,
                &[
                    format!("BR2_EXTERNAL={}", externals.join(":")),
                    br_defconfig(arch).to_string(),
                ],
            )?;
            let config = out.join(".config");
            let mut text = fs::read_to_string(&config)?;
            // Every package with its test suite option.
            let symbols: Vec<String> = ours
                .iter()
                .flat_map(|(_, board, _)| {
                    let package = format!("BR2_PACKAGE_{}", board.module.to_ascii_uppercase());
                    [format!("{package}=y"), format!("{package}_TESTS=y")]
                })
                .collect();
            for symbol in &symbols {
                text += &format!("{symbol}\n");
            }
            fs::write(&config, text)?;
            br_make(dir, &out, &dl, &["olddefconfig".to_string()])?;
            let text = fs::read_to_string(&config)?;
            for symbol in &symbols {
                if !text.lines().any(|l| l == symbol) {
                    bail!("{symbol} did not survive olddefconfig (a dependency is not met)");
                }
            }
            br_make(dir, &out, &dl, &["dependencies".to_string()])?;
            Ok(())
        })();
        let ok = configured.is_ok();
        cases.push(Case::checked(name("configure"), configured));
        if !ok {
            continue;
        }
        let mut packages: Vec<String> = ours
            .iter()
            .map(|(_, b, _)| format!("{}-heaps", b.name))
            .collect();
        packages.push("host-heapgen-rust-src".to_string());
        for package in &packages {
            cases.push(Case::checked(
                name(&format!("{package}-show-info")),
                (|| -> Result<()> {
                    let text = br_make(dir, &out, &dl, &[format!("{package}-show-info")])?;
                    let info: serde_json::Value = serde_json::from_str(&text)
                        .with_context(|| format!("{package}-show-info is not JSON:\n{text}"))?;
                    let entry = &info[package.as_str()];
                    let deps: Vec<&str> = entry["dependencies"]
                        .as_array()
                        .map(|d| d.iter().filter_map(|v| v.as_str()).collect())
                        .unwrap_or_default();
                    if package.starts_with("host-") {
                        let source = entry["downloads"][0]["source"].as_str().unwrap_or("");
                        if !source.starts_with("rustc-") || !source.ends_with("-src.tar.xz") {
                            bail!("{package} does not download rustc's source tarball: {source}");
                        }
                    } else if !deps.contains(&"linux") {
                        bail!("{package} does not depend on linux: {deps:?}");
                    }
                    Ok(())
                })(),
            ));
        }
        // Buildroot's own expansion of its variables.
        let printvars = |vars: &str| {
            br_make(
                dir,
                &out,
                &dl,
                &["printvars".to_string(), format!("VARS={vars}")],
            )
        };
        // The test suite option: the package builds the suite in test/ against the kernel's
        // tree, then installs what it built, read back from Buildroot's variables.
        for (_, board, _) in &ours {
            let upper = board.module.to_ascii_uppercase();
            cases.push(Case::checked(
                name(&format!("{}-heaps-tests-option", board.name)),
                (|| -> Result<()> {
                    let vars =
                        printvars(&format!("{upper}_BUILD_CMDS {upper}_INSTALL_TARGET_CMDS"))?;
                    let (build, install) = vars
                        .split_once(&format!("{upper}_INSTALL_TARGET_CMDS="))
                        .context(format!("no {upper}_INSTALL_TARGET_CMDS:\n{vars}"))?;
                    if !build.contains("/test ") || !build.contains("KERNEL_SRC=") {
                        bail!("{upper}_BUILD_CMDS does not build the suite:\n{vars}");
                    }
                    if !install.contains(" install") || install.contains("KERNEL_SRC=") {
                        bail!("{upper}_INSTALL_TARGET_CMDS does not install the suite as built:\n{vars}");
                    }
                    Ok(())
                })(),
            ));
        }
        cases.push(Case::checked(
            name("linux-rust"),
            (|| -> Result<()> {
                // The kernel's configuration waits for the Rust tools, and its build finds
                // libclang: read back from Buildroot's own make database and variables.
                let vars = printvars("LINUX_MAKE_ENV LINUX_DIR HOST_HEAPGEN_RUST_SRC_HASH_FILES")?;
                if !vars.contains("LIBCLANG_PATH=") {
                    bail!("LINUX_MAKE_ENV has no LIBCLANG_PATH:\n{vars}");
                }
                if !vars.contains("package/rust/rust.hash") {
                    bail!("host-heapgen-rust-src is not checked against rust.hash:\n{vars}");
                }
                let linux_dir = vars
                    .lines()
                    .find_map(|l| l.strip_prefix("LINUX_DIR="))
                    .context("no LINUX_DIR")?
                    .to_string();
                // `-q` only asks whether the goal is up to date (its exit status says no);
                // `-p` prints the rules make read.
                let db = br_command(
                    dir,
                    &out,
                    &dl,
                    &["-p".into(), "-q".into(), "linux-show-info".into()],
                )
                .output()?;
                let db = String::from_utf8_lossy(&db.stdout);
                let rule = db
                    .lines()
                    .find(|l| l.starts_with(&format!("{linux_dir}/.stamp_dotconfig:")))
                    .context("no rule for the kernel's .stamp_dotconfig")?;
                for tool in ["host-rustc", "host-rust-bindgen", "host-heapgen-rust-src"] {
                    if !rule.split_whitespace().any(|w| w == tool) {
                        bail!("the kernel's configuration does not wait for {tool}: {rule}");
                    }
                }
                Ok(())
            })(),
        ));
        cases.push(Case::checked(
            name("offline"),
            (|| -> Result<()> {
                if fs::read_dir(&dl)?.next().is_some() {
                    bail!("something was downloaded into {}", dl.display());
                }
                Ok(())
            })(),
        ));
    }
    cases
}

/// The Debian packages BitBake's and OE-core's sanity checks need, and `locales`.
const YOCTO_DEBS: &[&str] = &[
    "build-essential",
    "bzip2",
    "chrpath",
    "cpio",
    "diffstat",
    "file",
    "gawk",
    "git",
    "locales",
    "lz4",
    "patch",
    "rpcsvc-proto",
    "wget",
    "xz-utils",
    "zstd",
];

/// The unprivileged user BitBake runs as (it refuses root).
const YOCTO_USER: &str = "heapgen-bitbake";

/// `local.conf` for parsing and signatures without a network.
const LOCAL_CONF: &str = r#"# written by cargo xtask integration
CONF_VERSION = "2"
MACHINE = "qemuarm64"
BB_NUMBER_THREADS = "2"
BB_NUMBER_PARSE_THREADS = "2"
# Offline: no fetch, no connectivity check, no uninative download.
BB_NO_NETWORK = "1"
CONNECTIVITY_CHECK_URIS = ""
SANITY_TESTED_DISTROS = ""
INHERIT_DISTRO:remove = "uninative"
# module-rust.bbclass skips module recipes unless the kernel is built with Rust.
KERNEL_FEATURES:append = " rust"
# The module recipes' test suite is their -ptest package (ptest.bbclass).
DISTRO_FEATURES:append = " ptest"
"#;

/// The test suite's package as `bitbake -e` of the module recipe shows it, with ptest in
/// DISTRO_FEATURES: ptest.bbclass enabled, `<recipe>-ptest` among the packages, holding the
/// runner, and ptest.bbclass's compile and install tasks calling the recipe's functions.
fn ptest_packaged(env: &str, recipe: &str, var: &dyn Fn(&str) -> String) -> Result<()> {
    if var("PTEST_ENABLED") != "1" {
        bail!(
            "PTEST_ENABLED={} with ptest in DISTRO_FEATURES",
            var("PTEST_ENABLED")
        );
    }
    let package = format!("{recipe}-ptest");
    if !var("PACKAGES").split_whitespace().any(|p| p == package) {
        bail!("{package} is not in PACKAGES={}", var("PACKAGES"));
    }
    let files = var(&format!("FILES:{package}"));
    for path in [
        "/usr/bin/heapgen-test",
        "/usr/libexec/heapgen",
        "/usr/share/heapgen",
    ] {
        if !files.split_whitespace().any(|f| f == path) {
            bail!("FILES:{package} lacks {path}: {files}");
        }
    }
    // A shell function's body as bitbake -e prints it: from `name() {` to the closing `}`.
    let body = |name: &str| -> Option<String> {
        let start = env.find(&format!("\n{name}() {{\n"))?;
        let rest = &env[start + 1..];
        Some(rest[..rest.find("\n}\n")?].to_string())
    };
    for (task, function, needle) in [
        ("do_compile_ptest_base", "do_compile_ptest", "-C ${S}/test"),
        ("do_install_ptest_base", "do_install_ptest", "run-ptest"),
    ] {
        let base = body(task).with_context(|| format!("bitbake -e shows no {task}"))?;
        if !base.lines().any(|l| l.trim() == function) {
            bail!("{task} does not call {function}:\n{base}");
        }
        let ours = body(function).with_context(|| format!("bitbake -e shows no {function}"))?;
        let expanded = needle.replace("${S}", &var("S"));
        if !ours.contains(&expanded) {
            bail!("{function} does not contain `{expanded}`:\n{ours}");
        }
    }
    Ok(())
}

/// The machine set up for BitBake: packages, the en_US.UTF-8 locale, the user.
fn yocto_setup() -> Result<()> {
    ensure_debs(YOCTO_DEBS)?;
    let locales = run(Command::new("locale").arg("-a"))?;
    if !locales
        .lines()
        .any(|l| l.eq_ignore_ascii_case("en_US.utf8"))
    {
        step("generating the en_US.UTF-8 locale");
        let gen = "/etc/locale.gen";
        let text = fs::read_to_string(gen).unwrap_or_default();
        fs::write(gen, format!("{text}\nen_US.UTF-8 UTF-8\n"))?;
        run(&mut Command::new("locale-gen"))?;
    }
    if !Command::new("id")
        .arg(YOCTO_USER)
        .output()
        .is_ok_and(|o| o.status.success())
    {
        step(format!(
            "creating the user {YOCTO_USER} (BitBake refuses to run as root)"
        ));
        run(Command::new("useradd").args(["-m", "-s", "/bin/bash", YOCTO_USER]))?;
    }
    Ok(())
}

/// A command run as [`YOCTO_USER`] in an OE build environment (`oe-init-build-env`), with a
/// clean environment. `PYTHONHASHSEED=0` keeps set-derived variables in a stable order, so that
/// the parse cache is reused from one command to the next.
fn as_builder(oe_core: &Path, bitbake: &Path, build: &Path, args: &[String]) -> Command {
    let script = r#"cd "$0" && . ./oe-init-build-env "$1" "$2" >/dev/null || exit 2
export BB_ENV_PASSTHROUGH_ADDITIONS="$BB_ENV_PASSTHROUGH_ADDITIONS PYTHONHASHSEED"
shift 2; exec "$@""#;
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", YOCTO_USER, "--", "env", "-i"])
        .arg(format!("HOME=/home/{YOCTO_USER}"))
        .arg(format!("USER={YOCTO_USER}"))
        .args([
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "LANG=en_US.UTF-8",
            "LC_ALL=en_US.UTF-8",
            "PYTHONHASHSEED=0",
            "bash",
            "-c",
            script,
        ])
        .arg(oe_core)
        .arg(build)
        .arg(bitbake)
        .args(args);
    cmd
}

/// Writes `bblayers.conf` with OE-core's `meta` and `layers`.
fn write_bblayers(oe_core: &Path, build: &Path, layers: &[PathBuf]) -> Result<()> {
    let mut text = format!(
        "# written by cargo xtask integration\nBBPATH = \"${{TOPDIR}}\"\nBBFILES ?= \"\"\nBBLAYERS ?= \" \\\n  {}/meta \\\n",
        oe_core.display()
    );
    for l in layers {
        text += &format!("  {} \\\n", l.display());
    }
    text += "  \"\n";
    fs::write(build.join("conf/bblayers.conf"), text)?;
    Ok(())
}

fn yocto(
    oe_core: &Path,
    bitbake: &Path,
    boards: &[(String, heapgen::ir::Board, PathBuf)],
) -> Vec<Case> {
    println!(
        "OE-core: {} ({}); BitBake: {} ({})",
        oe_core.display(),
        describe(oe_core),
        bitbake.display(),
        describe(bitbake)
    );
    // Outside the repository (whose directories the build user may not enter): the system's
    // temporary directory, kept between runs for BitBake's parse cache.
    let work = std::env::temp_dir().join("heapgen-integration-yocto");
    let build = work.join("build");
    let layers_dir = work.join("layers");
    // The layers, copied where the unprivileged user can read them, and the build directory.
    let prepared = (|| -> Result<Vec<PathBuf>> {
        yocto_setup()?;
        let _ = fs::remove_dir_all(&layers_dir);
        fs::create_dir_all(build.join("conf"))?;
        let mut layers = Vec::new();
        for (stem, _, generated) in boards {
            let layer = layers_dir.join(format!("meta-{stem}-heaps"));
            fs::create_dir_all(&layers_dir)?;
            run(Command::new("cp")
                .arg("-a")
                .arg(generated.join("yocto"))
                .arg(&layer))?;
            layers.push(layer);
        }
        fs::write(build.join("conf/local.conf"), LOCAL_CONF)?;
        write_bblayers(oe_core, &build, &layers)?;
        // Readable and writable by the build user, the way down included.
        run(Command::new("chown")
            .arg("-R")
            .arg(format!("{YOCTO_USER}:"))
            .arg(&work))?;
        Ok(layers)
    })();
    let layers = match prepared {
        Ok(l) => l,
        Err(e) => return vec![Case::checked("integration/yocto/setup", Err(e))],
    };
    let bb = |args: &[&str]| -> Result<String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        run(&mut as_builder(oe_core, bitbake, &build, &args))
    };
    let mut cases = Vec::new();
    cases.push(Case::checked(
        "integration/yocto/bitbake-p",
        bb(&["bitbake", "-p"]).and_then(|out| {
            let problems: Vec<&str> = out
                .lines()
                .filter(|l| l.starts_with("ERROR") || l.starts_with("WARNING"))
                .collect();
            if problems.is_empty() {
                Ok(())
            } else {
                bail!("bitbake -p:\n{}", problems.join("\n"))
            }
        }),
    ));
    for (stem, board, _) in boards {
        let recipe = format!("{}-heaps", board.name);
        cases.push(Case::checked(
            format!("integration/yocto/{stem}/bitbake-e"),
            bb(&["bitbake", "-e", &recipe]).and_then(|env| {
                let var = |name: &str| {
                    env.lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}=")))
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_string()
                };
                let src_uri = var("SRC_URI");
                if src_uri.is_empty()
                    || src_uri
                        .split_whitespace()
                        .any(|u| !u.starts_with("file://"))
                {
                    bail!("the module recipe fetches more than its own files: SRC_URI={src_uri}");
                }
                if var("S") != var("UNPACKDIR") {
                    bail!("S={} is not UNPACKDIR={}", var("S"), var("UNPACKDIR"));
                }
                if !var("DEPENDS")
                    .split_whitespace()
                    .any(|d| d == "rust-native")
                {
                    bail!(
                        "the module recipe does not build with rust-native: DEPENDS={}",
                        var("DEPENDS")
                    );
                }
                ptest_packaged(&env, &recipe, &var)
            }),
        ));
    }
    cases.push(Case::checked(
        "integration/yocto/heapgen-native-skipped",
        (|| -> Result<()> {
            // Without HEAPGEN_SRC_URI the build-time generator is skipped, with our reason.
            let out = as_builder(
                oe_core,
                bitbake,
                &build,
                &["bitbake".into(), "-e".into(), "heapgen-native".into()],
            )
            .output()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            if !text.contains("HEAPGEN_SRC_URI is not set") {
                bail!(
                    "heapgen-native is not skipped for want of HEAPGEN_SRC_URI:\n{}",
                    util::tail(&text, 20)
                );
            }
            Ok(())
        })(),
    ));
    // yocto-check-layer adds each layer itself: only OE-core in BBLAYERS.
    let checked = (|| -> Result<()> {
        write_bblayers(oe_core, &build, &[])?;
        run(Command::new("chown")
            .arg(format!("{YOCTO_USER}:"))
            .arg(build.join("conf/bblayers.conf")))?;
        let mut args = vec![
            "yocto-check-layer".to_string(),
            "-o".to_string(),
            work.join("yocto-check-layer.log").display().to_string(),
        ];
        args.extend(layers.iter().map(|l| l.display().to_string()));
        let out = as_builder(oe_core, bitbake, &build, &args).output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("yocto-check-layer:\n{}", util::tail(&text, 60));
        }
        Ok(())
    })();
    cases.push(Case::checked(
        "integration/yocto/yocto-check-layer",
        checked,
    ));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_attributes_passed_to_ddk_module() {
        let build = "load(\"x\", \"ddk_module\")\n\nddk_module(\n    name = \"m\",\n    srcs = [\n        \"a.c\",\n    ],\n    out = \"m.ko\",\n)\n";
        assert_eq!(build_attributes(build), ["name", "srcs", "out"]);
    }
}
