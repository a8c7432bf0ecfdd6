//! Building a generated module the way each build system that users build boards with invokes
//! Kbuild, against a test-bed kernel:
//!
//! - [`Style::Yocto`]: OE-core's `module.bbclass`: `oe_runmake` in the module directory with
//!   `KERNEL_SRC`, `O` (and `KBUILD_OUTPUT` in the environment), the default goal, then
//!   `modules_install` with `DEPMOD=echo MODLIB=<image>/lib/modules/<release>`.
//! - [`Style::Buildroot`]: Buildroot's `kernel-module` infrastructure: `make -C <linux>
//!   $(LINUX_MAKE_FLAGS) PWD=<dir> M=<dir> modules` and `modules_install`; our Makefile is never
//!   read.
//! - [`Style::Kleaf`]: Kleaf's `ddk_module`: only the files the generated `BUILD.bazel` lists,
//!   with the `Kbuild` and `Makefile` that Kleaf's `gen_makefiles.py` writes from them (our own
//!   are not used), built as `kernel_module` runs it (`M` relative to the kernel source,
//!   `KERNEL_SRC`, `O`, and `MO` on kernels that have it) and installed with `INSTALL_MOD_PATH`.
//!
//! Each build must be free of warnings and must install the module.

use crate::{
    testbed::Kernel,
    util::{kernel_cmd, run, tail},
};
use anyhow::{bail, Context, Result};
use std::{
    fs,
    path::{Component, Path, PathBuf},
};

/// A build system's way of building an out-of-tree module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// OE-core's `module.bbclass`.
    Yocto,
    /// Buildroot's `kernel-module` package infrastructure.
    Buildroot,
    /// Kleaf's `ddk_module`.
    Kleaf,
}

impl Style {
    /// Every style, in a fixed order.
    pub const ALL: [Style; 3] = [Style::Yocto, Style::Buildroot, Style::Kleaf];

    /// The name used in case names and directories.
    pub fn name(self) -> &'static str {
        match self {
            Style::Yocto => "yocto",
            Style::Buildroot => "buildroot",
            Style::Kleaf => "kleaf",
        }
    }
}

/// Builds the generated module tree `generated` against `kernel` the way `style` does, in
/// `work/<style>/`, with `extra` make variables; installs it and returns the installed `.ko`.
pub fn build(
    kernel: &Kernel,
    generated: &Path,
    work: &Path,
    module: &str,
    style: Style,
    extra: &[String],
) -> Result<PathBuf> {
    let root = work.join(style.name());
    let _ = fs::remove_dir_all(&root);
    let stage = root.join("image");
    let (out, ko) = match style {
        Style::Yocto => yocto(kernel, generated, &root, &stage, extra)?,
        Style::Buildroot => buildroot(kernel, generated, &root, &stage, extra)?,
        Style::Kleaf => kleaf(
            kernel,
            generated,
            &root,
            &stage,
            module,
            extra,
            &write_ddk_files,
        )?,
    };
    let warnings: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("warning") || l.contains("WARNING"))
        .collect();
    if !warnings.is_empty() {
        bail!(
            "the {} build of {module} against {} gave warnings:\n{}",
            style.name(),
            kernel.release,
            tail(&out, 60)
        );
    }
    if !ko.join(format!("{module}.ko")).is_file() {
        bail!("the {} build produced no {module}.ko", style.name());
    }
    find_file(&stage, &format!("{module}.ko"))?.with_context(|| {
        format!(
            "the {} modules_install put no {module}.ko under {}",
            style.name(),
            stage.display()
        )
    })
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    run(std::process::Command::new("cp").arg("-a").arg(from).arg(to))?;
    Ok(())
}

/// The first file named `name` under `dir`, searched depth first in name order.
fn find_file(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if let Some(found) = find_file(&path, name)? {
                return Ok(Some(found));
            }
        } else if path.file_name().and_then(|n| n.to_str()) == Some(name) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// `module.bbclass`: `module_do_compile` and `module_do_install` in the module's directory.
fn yocto(
    kernel: &Kernel,
    generated: &Path,
    root: &Path,
    stage: &Path,
    extra: &[String],
) -> Result<(String, PathBuf)> {
    let dir = root.join("src");
    fs::create_dir_all(root)?;
    copy_tree(generated, &dir)?;
    let common = |cmd: &mut std::process::Command| {
        // module-base.bbclass exports these; module.bbclass adds KERNEL_SRC to EXTRA_OEMAKE.
        cmd.env("KBUILD_OUTPUT", &kernel.build)
            .arg("-C")
            .arg(&dir)
            .arg(format!("KERNEL_SRC={}", kernel.src.display()))
            .arg(format!("O={}", kernel.build.display()))
            .args(kernel.make_vars())
            .args(extra);
    };
    let mut compile = kernel_cmd("make");
    common(&mut compile);
    compile
        .arg(format!("KERNEL_PATH={}", kernel.src.display()))
        .arg(format!("KERNEL_VERSION={}", kernel.release));
    let out = run(&mut compile).context("module_do_compile")?;
    let mut install = kernel_cmd("make");
    common(&mut install);
    install
        .arg("DEPMOD=echo")
        .arg(format!(
            "MODLIB={}/lib/modules/{}",
            stage.display(),
            kernel.release
        ))
        .arg(format!("INSTALL_FW_PATH={}/lib/firmware", stage.display()))
        .arg("modules_install");
    let out = out + &run(&mut install).context("module_do_install")?;
    Ok((out, dir))
}

/// Buildroot's `kernel-module` infrastructure, with `LINUX_MAKE_FLAGS` as `linux.mk` sets them
/// (the kernel is built in its own directory there; here `-C` names the test bed's build
/// directory, whose Makefile hands over to the source with `O=`).
fn buildroot(
    kernel: &Kernel,
    generated: &Path,
    root: &Path,
    stage: &Path,
    extra: &[String],
) -> Result<(String, PathBuf)> {
    let dir = root.join("build");
    fs::create_dir_all(root)?;
    copy_tree(generated, &dir)?;
    let mut out = String::new();
    for goal in ["modules", "modules_install"] {
        let mut cmd = kernel_cmd("make");
        cmd.arg("-C")
            .arg(&kernel.build)
            .args(kernel.make_vars())
            .args([
                "HOSTCC=gcc",
                "KCFLAGS=",
                "WERROR=0",
                "REGENERATE_PARSERS=1",
                "DEPMOD=true",
            ])
            .arg(format!("INSTALL_MOD_PATH={}", stage.display()))
            .args(extra)
            .arg(format!("PWD={}", dir.display()))
            .arg(format!("M={}", dir.display()))
            .arg(goal);
        out += &run(&mut cmd).with_context(|| format!("kernel-module {goal}"))?;
    }
    Ok((out, dir))
}

/// What `ddk_module` is given in the generated `BUILD.bazel`.
#[derive(Debug, PartialEq, Eq)]
pub struct DdkModule {
    /// `srcs`, in order.
    pub srcs: Vec<String>,
    /// `crate_root`.
    pub crate_root: String,
    /// `out`.
    pub out: String,
}

/// The quoted strings of `text`, in order.
fn quoted(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Reads the `ddk_module` call of a generated `BUILD.bazel` (its list attributes one string a
/// line, as heapgen writes and buildifier keeps them).
pub fn parse_build(text: &str) -> Result<DdkModule> {
    const CALL: &str = "\nddk_module(";
    let start = text
        .find(CALL)
        .context("BUILD.bazel has no ddk_module call")?
        + CALL.len();
    let call = text[start..].split("\n)").next().unwrap_or_default();
    let attr = |name: &str| -> Option<&str> {
        call.split(&format!("\n    {name} = "))
            .nth(1)
            .map(|rest| match rest.strip_prefix('[') {
                Some(list) => list.split(']').next().unwrap_or(""),
                None => rest.lines().next().unwrap_or(""),
            })
    };
    let one = |name: &str| -> Result<String> {
        quoted(attr(name).with_context(|| format!("ddk_module has no `{name}`"))?)
            .into_iter()
            .next()
            .with_context(|| format!("ddk_module's `{name}` is not a string"))
    };
    Ok(DdkModule {
        srcs: quoted(attr("srcs").context("ddk_module has no `srcs`")?),
        crate_root: one("crate_root")?,
        out: one("out")?,
    })
}

/// The Kbuild `gen_makefiles.py` writes for a `ddk_module` with these `srcs` and `crate_root`
/// and no conditional sources, defines, includes or options (as ours): every C source, the crate
/// root (other `.rs` files are inputs only) and `ddk_modinfo.c`, which Kleaf adds to modules of
/// more than one source, are objects of the module; every source object (built or not) reads the
/// module's `.cflags` file.
pub fn ddk_kbuild(ddk: &DdkModule) -> Result<String> {
    let module = ddk
        .out
        .strip_suffix(".ko")
        .context("ddk_module's `out` does not end with .ko")?;
    let crate_root = ddk
        .crate_root
        .strip_suffix(".rs")
        .context("crate_root is not a .rs file")?;
    let object = |src: &str| -> Option<String> {
        [".c", ".rs", ".S"]
            .iter()
            .find_map(|ext| src.strip_suffix(ext))
            .map(|stem| format!("{stem}.o"))
    };
    let mut built: Vec<String> = ddk
        .srcs
        .iter()
        .filter_map(|s| s.strip_suffix(".c").map(|stem| format!("{stem}.o")))
        .collect();
    built.push(format!("{crate_root}.o"));
    built.push("ddk_modinfo.o".to_string());
    let mut flagged: Vec<String> = Vec::new();
    for o in ddk
        .srcs
        .iter()
        .chain([&ddk.crate_root])
        .filter_map(|s| object(s))
        .chain(["ddk_modinfo.o".to_string()])
    {
        if !flagged.contains(&o) {
            flagged.push(o);
        }
    }
    let mut kbuild = format!(
        "# SPDX-License-Identifier: GPL-2.0\n\n# Build {module}.ko\nobj-m += {module}.o\n\n"
    );
    for o in &built {
        kbuild += &format!("{module}-y += {o}\n");
    }
    kbuild += &format!("\n# Common flags for {module}.o\n");
    for o in &flagged {
        kbuild +=
            &format!("CFLAGS_{o} += @$(obj)/{module}.cflags\n$(obj)/{o}: $(obj)/{module}.cflags\n");
    }
    Ok(kbuild)
}

/// The top-level Makefile `gen_makefiles.py` writes for a module with no dependencies.
pub const DDK_MAKEFILE: &str = "\
# SPDX-License-Identifier: GPL-2.0

ifneq ($(origin EXTRA_SYMBOLS), undefined)
$(error EXTRA_SYMBOLS cannot be set for DDK targets. Use the deps attribute instead.)
endif
modules modules_install clean compile_commands.json:
\t$(MAKE) -C $(KERNEL_SRC) M=$(M) $(KBUILD_OPTIONS) \\
\t    KBUILD_EXTRA_SYMBOLS=\"$(EXTRA_SYMBOLS)\"       \\
\t    $(@)
";

/// `ddk_modinfo.c`, which Kleaf compiles into every module of more than one source.
const DDK_MODINFO: &str = "#include <linux/compiler.h>
static const char __UNIQUE_ID(built_with)[] __used __section(\".modinfo\") __aligned(1) = \"built_with=DDK\";
";

/// `path` relative to `base` (both absolute).
fn relative(path: &Path, base: &Path) -> PathBuf {
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &p[common..] {
        rel.push(c);
    }
    rel
}

/// Writes the files `gen_makefiles.py` writes for `ddk` into `package` (our rendition of them).
fn write_ddk_files(ddk: &DdkModule, package: &Path) -> Result<()> {
    let module = ddk.out.trim_end_matches(".ko");
    fs::write(package.join("Kbuild"), ddk_kbuild(ddk)?)?;
    fs::write(package.join("Makefile"), DDK_MAKEFILE)?;
    fs::write(package.join("ddk_modinfo.c"), DDK_MODINFO)?;
    // Kbuild makes `$(obj)/<module>.cflags` from it (the `_shipped` copy rule).
    fs::write(package.join(format!("{module}.cflags_shipped")), "\n")?;
    Ok(())
}

/// A function writing Kleaf's generated build files for a `ddk_module` into its package.
pub type DdkFiles<'a> = &'a dyn Fn(&DdkModule, &Path) -> Result<()>;

/// Like [`build`] in the Kleaf style, with the build files `ddk_files` writes (Kleaf's own
/// `gen_makefiles.py` in `cargo xtask integration`).
pub fn build_kleaf_with(
    kernel: &Kernel,
    generated: &Path,
    work: &Path,
    module: &str,
    ddk_files: DdkFiles<'_>,
) -> Result<PathBuf> {
    let root = work.join("kleaf");
    let _ = fs::remove_dir_all(&root);
    let stage = root.join("image");
    let (out, _) = kleaf(kernel, generated, &root, &stage, module, &[], ddk_files)?;
    if out
        .lines()
        .any(|l| l.contains("warning") || l.contains("WARNING"))
    {
        bail!(
            "the Kleaf build of {module} gave warnings:\n{}",
            tail(&out, 60)
        );
    }
    find_file(&stage, &format!("{module}.ko"))?.with_context(|| {
        format!(
            "modules_install put no {module}.ko under {}",
            stage.display()
        )
    })
}

/// Kleaf's `ddk_module` with `kernel_module`'s make invocations.
fn kleaf(
    kernel: &Kernel,
    generated: &Path,
    root: &Path,
    stage: &Path,
    module: &str,
    extra: &[String],
    ddk_files: DdkFiles<'_>,
) -> Result<(String, PathBuf)> {
    let build = fs::read_to_string(generated.join("BUILD.bazel"))
        .context("the generated tree has no BUILD.bazel")?;
    let ddk = parse_build(&build)?;
    if ddk.out != format!("{module}.ko") {
        bail!("BUILD.bazel builds {}, not {module}.ko", ddk.out);
    }
    // Only what the BUILD file lists reaches the build (Bazel's sandbox).
    let package = root.join("package");
    for src in ddk.srcs.iter().chain([&ddk.crate_root]) {
        let to = package.join(src);
        fs::create_dir_all(to.parent().unwrap_or(&package))?;
        fs::copy(generated.join(src), &to)
            .with_context(|| format!("BUILD.bazel lists {src}, which was not generated"))?;
    }
    ddk_files(&ddk, &package)?;
    let ext_mod_rel = relative(&package, &kernel.src);
    // Kernels with `MO=` (6.13 and later) build external modules in a directory of their own,
    // as Kleaf does there.
    let has_mo = fs::read_to_string(kernel.src.join("Makefile"))?.contains("origin MO");
    let objects = if has_mo {
        root.join("out")
    } else {
        package.clone()
    };
    let mut out = String::new();
    for goal in ["modules", "modules_install"] {
        let mut cmd = kernel_cmd("make");
        cmd.arg("-C")
            .arg(&package)
            .args(kernel.make_vars())
            .args(extra)
            .arg(format!("M={}", ext_mod_rel.display()))
            .arg(format!("O={}", kernel.build.display()))
            .arg(format!("KERNEL_SRC={}", kernel.src.display()));
        if has_mo {
            cmd.arg(format!("MO={}", objects.display()));
        }
        if goal == "modules_install" {
            cmd.arg("DEPMOD=true")
                .arg(format!("INSTALL_MOD_PATH={}", stage.display()))
                .arg("INSTALL_MOD_DIR=extra/heapgen");
        }
        cmd.arg(goal);
        out += &run(&mut cmd).with_context(|| format!("kernel_module {goal}"))?;
    }
    Ok((out, objects))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILD: &str = r#"load("@kleaf//build/kernel/kleaf:kernel.bzl", "ddk_module")

ddk_module(
    name = "x_heaps",
    srcs = [
        "a.rs",
        "heapgen_abi.h",
        "heapgen_helpers.c",
        "x_heaps_main.rs",
    ],
    out = "x_heaps.ko",
    crate_root = "x_heaps_main.rs",
    kernel_build = "@kleaf//common:kernel_aarch64",
)
"#;

    #[test]
    fn reads_the_ddk_module_call() {
        let ddk = parse_build(BUILD).unwrap();
        assert_eq!(
            ddk,
            DdkModule {
                srcs: vec![
                    "a.rs".into(),
                    "heapgen_abi.h".into(),
                    "heapgen_helpers.c".into(),
                    "x_heaps_main.rs".into()
                ],
                crate_root: "x_heaps_main.rs".into(),
                out: "x_heaps.ko".into(),
            }
        );
    }

    #[test]
    fn writes_kleafs_kbuild() {
        let kbuild = ddk_kbuild(&parse_build(BUILD).unwrap()).unwrap();
        assert!(kbuild.contains("obj-m += x_heaps.o\n"));
        assert!(kbuild.contains(
            "x_heaps-y += heapgen_helpers.o\nx_heaps-y += x_heaps_main.o\nx_heaps-y += ddk_modinfo.o\n"
        ));
        assert!(kbuild.contains("CFLAGS_x_heaps_main.o += @$(obj)/x_heaps.cflags\n"));
        // Non-root .rs files are inputs, not objects; Kleaf still gives them flags.
        assert!(!kbuild.contains("-y += a.o"));
        assert!(kbuild.contains("CFLAGS_a.o += @$(obj)/x_heaps.cflags\n"));
    }

    #[test]
    fn relative_paths_climb_to_the_common_prefix() {
        assert_eq!(
            relative(Path::new("/a/b/c"), Path::new("/a/x/y")),
            PathBuf::from("../../b/c")
        );
    }
}
