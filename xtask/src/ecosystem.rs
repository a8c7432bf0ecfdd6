//! The build-system files heapgen generates, checked by the build systems' own tools.
//!
//! Every board in board-configs/ is generated with all targets into
//! `target/ecosystem/<board>/`, then:
//!
//! - the Yocto recipes go through `oelint-adv` (no error or warning allowed),
//! - the Kleaf `BUILD.bazel` through `buildifier --mode=check --lint=warn`,
//! - the Buildroot `.mk` and `Config.in` files through [`check_package`], the checks of
//!   Buildroot's `utils/check-package` that apply to them, reimplemented here because the script
//!   only comes with a Buildroot tree,
//!
//! and Documentation/ is built with `sphinx-build -W`. The tools are installed on first use, with
//! pinned versions, into the cache: a Python venv (`<cache>/venv`) for oelint-adv and Sphinx, and
//! `npm install --prefix <cache>/npm` for buildifier.

use anyhow::{bail, Context, Result};
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use crate::ktap::{Case, Outcome};
use crate::util::{self, cache_root, repo_root, step};

/// Pinned tool versions.
const OELINT_ADV: &str = "oelint-adv==9.11.2";
const SPHINX: &str = "sphinx==9.0.4";
const BUILDIFIER: &str = "@bazel/buildifier@8.2.1";

/// oelint-adv rules left out: `homepageping` fetches the HOMEPAGE over the network, which tests
/// must not need.
const OELINT_SUPPRESS: &[&str] = &["oelint.vars.homepageping"];

fn case(name: String, result: Result<()>) -> Case {
    let outcome = match result {
        Ok(()) => Outcome::Pass,
        Err(e) => {
            let why = format!("{e:#}");
            eprintln!("FAIL {name}: {why}");
            Outcome::Fail(why)
        }
    };
    Case { name, outcome }
}

/// Generates every board with all targets, installs the tools and runs them: one case per board
/// and tool, plus one for the documentation.
pub fn run() -> Vec<Case> {
    let mut cases = Vec::new();
    let boards = match generate_all() {
        Ok(b) => b,
        Err(e) => {
            cases.push(case("ecosystem/generate".into(), Err(e)));
            return cases;
        }
    };
    let venv = install_venv();
    let buildifier = install_buildifier();
    for (stem, dir) in &boards {
        let name = |tool: &str| format!("ecosystem/{stem}/{tool}");
        cases.push(case(
            name("oelint-adv"),
            venv.as_ref()
                .map_err(|e| anyhow::anyhow!("{e:#}"))
                .and_then(|v| oelint(v, dir)),
        ));
        cases.push(case(
            name("buildifier"),
            buildifier
                .as_ref()
                .map_err(|e| anyhow::anyhow!("{e:#}"))
                .and_then(|b| run_buildifier(b, dir)),
        ));
        cases.push(case(name("buildroot-check-package"), check_buildroot(dir)));
    }
    cases.push(case(
        "ecosystem/sphinx-build".into(),
        venv.as_ref()
            .map_err(|e| anyhow::anyhow!("{e:#}"))
            .and_then(|v| sphinx(v)),
    ));
    cases
}

/// Generates every board in board-configs/ into `target/ecosystem/<stem>/`.
fn generate_all() -> Result<Vec<(String, PathBuf)>> {
    let root = repo_root();
    let mut boards: Vec<PathBuf> = fs::read_dir(root.join("board-configs"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    boards.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    boards.sort();
    let mut out = Vec::new();
    for board in boards {
        let stem = board
            .file_stem()
            .context("board file name")?
            .to_string_lossy()
            .into_owned();
        let ir = heapgen::load(&board).map_err(|d| anyhow::anyhow!("{d}"))?;
        let generation = heapgen::generate(&ir, &heapgen::Options::default())?;
        let dir = root.join("target/ecosystem").join(&stem);
        heapgen::write_atomic(&generation, &dir)
            .with_context(|| format!("writing {}", dir.display()))?;
        out.push((stem, dir));
    }
    Ok(out)
}

/// The cache's Python venv with oelint-adv and Sphinx, created or completed when needed.
fn install_venv() -> Result<PathBuf> {
    let venv = cache_root().join("venv");
    let stamp = venv.join(".heapgen-requirements");
    let wanted = format!("{OELINT_ADV}\n{SPHINX}\n");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(venv);
    }
    step(format!(
        "installing {OELINT_ADV} and {SPHINX} into {}",
        venv.display()
    ));
    if !venv.join("bin/python3").exists() {
        util::run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    util::run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args([OELINT_ADV, SPHINX]),
    )?;
    fs::write(&stamp, wanted)?;
    Ok(venv)
}

/// buildifier from the npm registry under `<cache>/npm`, installed when needed.
fn install_buildifier() -> Result<PathBuf> {
    let prefix = cache_root().join("npm");
    let bin = prefix.join("node_modules/.bin/buildifier");
    let stamp = prefix.join(".heapgen-buildifier");
    if bin.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == BUILDIFIER) {
        return Ok(bin);
    }
    step(format!("installing {BUILDIFIER} into {}", prefix.display()));
    fs::create_dir_all(&prefix)?;
    util::run(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(BUILDIFIER),
    )?;
    fs::write(&stamp, BUILDIFIER)?;
    Ok(bin)
}

fn files_with(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if keep(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// oelint-adv on every recipe of the Yocto layer: any error or warning fails.
fn oelint(venv: &Path, dir: &Path) -> Result<()> {
    let recipes = files_with(&dir.join("yocto"), &|p| {
        p.extension().is_some_and(|e| e == "bb")
    })?;
    if recipes.is_empty() {
        bail!("no recipes in {}", dir.join("yocto").display());
    }
    let mut cmd = Command::new(venv.join("bin/oelint-adv"));
    cmd.arg("--quiet");
    for s in OELINT_SUPPRESS {
        cmd.args(["--suppress", s]);
    }
    cmd.args(&recipes);
    let out = cmd.output().context("running oelint-adv")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let findings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(":error:") || l.contains(":warning:"))
        .collect();
    if !findings.is_empty() {
        bail!("oelint-adv:\n{}", findings.join("\n"));
    }
    Ok(())
}

fn run_buildifier(bin: &Path, dir: &Path) -> Result<()> {
    let build = dir.join("BUILD.bazel");
    let out = Command::new(bin)
        .args(["--mode=check", "--lint=warn"])
        .arg(&build)
        .output()
        .context("running buildifier")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !text.trim().is_empty() {
        bail!("buildifier {}: {}\n{text}", build.display(), out.status);
    }
    Ok(())
}

fn sphinx(venv: &Path) -> Result<()> {
    let root = repo_root();
    let out = root.join("target/ecosystem/sphinx");
    util::run(
        Command::new(venv.join("bin/sphinx-build"))
            .args(["-W", "--keep-going", "-q", "-b", "html"])
            .arg(root.join("Documentation"))
            .arg(&out),
    )?;
    Ok(())
}

/// Buildroot's check-package rules over the br2-external tree of one generated board.
fn check_buildroot(dir: &Path) -> Result<()> {
    let tree = dir.join("buildroot");
    let files = files_with(&tree, &|p| {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        name.ends_with(".mk") || name.starts_with("Config.in")
    })?;
    let mut problems = Vec::new();
    for f in &files {
        let text = fs::read_to_string(f)?;
        let shown = f.strip_prefix(dir).unwrap_or(f).display().to_string();
        problems.extend(check_package(&shown, &text));
    }
    if files.len() < 5 {
        problems.push(format!("only {} Buildroot files found", files.len()));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(())
}

/// The check-package findings for one file, as `file:line: message` (empty when clean), by the
/// file's name: `external.mk` is skipped as check-package does, other `*.mk` files get the
/// `lib_mk` checks, `Config.in*` the `lib_config` ones; both get the common `lib` checks.
pub fn check_package(path: &str, text: &str) -> Vec<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let mut out = common_checks(path, text);
    if name == "external.mk" {
        return Vec::new();
    }
    if name.ends_with(".mk") {
        let pkg = name.trim_end_matches(".mk");
        out.extend(mk_checks(path, text, pkg));
    } else if name.starts_with("Config.in") {
        out.extend(config_checks(path, text));
    }
    out
}

/// `lib.py`: consecutive empty lines, empty last line, newline at end of file, trailing
/// whitespace, non-ASCII characters.
fn common_checks(path: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !text.ends_with('\n') {
        out.push(format!("{path}: missing newline at end of file"));
    }
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let n = i + 1;
        if l.ends_with(' ') || l.ends_with('\t') {
            out.push(format!("{path}:{n}: line contains trailing whitespace"));
        }
        if i > 0 && l.is_empty() && lines[i - 1].is_empty() {
            out.push(format!("{path}:{n}: consecutive empty lines"));
        }
        if !l.is_ascii() {
            out.push(format!("{path}:{n}: non-ASCII characters"));
        }
    }
    if lines.last().is_some_and(|l| l.trim().is_empty()) {
        out.push(format!("{path}:{}: empty line at end of file", lines.len()));
    }
    out
}

/// Variables a package's .mk may set that do not carry its prefix (from check-package).
const ALLOWED_FOREIGN_VARIABLES: &[&str] = &[
    "BR_NO_CHECK_HASH_FOR",
    "LINUX_EXTENSIONS",
    "LINUX_POST_PATCH_HOOKS",
    "LINUX_TOOLS",
    "PACKAGES_PERMISSIONS_TABLE",
    "TARGET_FINALIZE_HOOKS",
    "TARGETS_ROOTFS",
];

/// `lib_mk.py`: PackageHeader, Indent, SpaceBeforeBackslash, TrailingBackslash,
/// TypoInPackageVariable, UselessFlag, VariableWithBraces, OverriddenVariable, and the
/// package infrastructure's `$(eval $(...))` last.
fn mk_checks(path: &str, text: &str, pkg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let hashes = "#".repeat(80);
    let header = [
        hashes.as_str(),
        "#",
        &format!("# {pkg}"),
        "#",
        hashes.as_str(),
        "",
    ];
    for (i, want) in header.iter().enumerate() {
        if lines.get(i).map(|l| l.trim_end()) != Some(*want) {
            out.push(format!(
                "{path}:{}: package header: expected {want:?}",
                i + 1
            ));
        }
    }
    let var = pkg.to_ascii_uppercase().replace('-', "_");
    let prefixes = [format!("{var}_"), format!("HOST_{var}_")];
    let mut in_define = false;
    let mut continued = false;
    let mut assigned: Vec<String> = Vec::new();
    let mut cond_depth = 0usize;
    for (i, l) in lines.iter().enumerate() {
        let n = i + 1;
        let t = l.trim_start();
        let is_comment = t.starts_with('#');
        // Indent.
        if t.starts_with("endef") {
            in_define = false;
        }
        let expect_tab = in_define || continued;
        if !l.is_empty() && !is_comment {
            if expect_tab && !l.starts_with('\t') {
                out.push(format!("{path}:{n}: expected indent with tabs"));
            }
            if !expect_tab && l.starts_with(char::is_whitespace) {
                out.push(format!("{path}:{n}: unexpected indent"));
            }
        }
        if t.starts_with("define ") {
            in_define = true;
        }
        let ends_backslash = !is_comment && l.ends_with('\\');
        // SpaceBeforeBackslash.
        if ends_backslash {
            let before = &l[..l.len() - 1];
            if before.ends_with('\t') || before.ends_with("  ") {
                out.push(format!("{path}:{n}: use only one space before backslash"));
            }
        }
        // TrailingBackslash.
        if ends_backslash {
            let next = lines.get(i + 1).map(|s| s.trim());
            if matches!(next, None | Some("") | Some("endef")) {
                out.push(format!("{path}:{n}: remove trailing backslash"));
            }
        }
        // VariableWithBraces.
        if !is_comment {
            let bytes = l.as_bytes();
            for (j, w) in bytes.windows(2).enumerate() {
                if w == b"${" && (j == 0 || bytes[j - 1] != b'$') {
                    out.push(format!(
                        "{path}:{n}: use $() to delimit variables, not ${{}}"
                    ));
                    break;
                }
            }
        }
        // Conditionals, for OverriddenVariable.
        if t.starts_with("ifeq") || t.starts_with("ifneq") || t.starts_with("ifdef") {
            cond_depth += 1;
        } else if t.starts_with("endif") {
            cond_depth = cond_depth.saturating_sub(1);
        }
        // Assignments outside define blocks and continuations.
        if !in_define && !continued && !is_comment && !l.starts_with(char::is_whitespace) {
            if let Some((name, op)) = assignment(l) {
                if !prefixes.iter().any(|p| name.starts_with(p.as_str()))
                    && !ALLOWED_FOREIGN_VARIABLES.contains(&name)
                {
                    out.push(format!("{path}:{n}: possible typo: {name} -> *{var}*"));
                }
                let value = l.split_once('=').map_or("", |(_, v)| v.trim());
                let useless = [
                    ("_INSTALL_STAGING", "NO"),
                    ("_INSTALL_TARGET", "YES"),
                    ("_AUTORECONF", "NO"),
                    ("_LIBTOOL_PATCH", "YES"),
                ];
                if useless
                    .iter()
                    .any(|(suffix, v)| name.ends_with(suffix) && value == *v)
                {
                    out.push(format!("{path}:{n}: useless default value"));
                }
                if name.ends_with("_SOURCE") && value == format!("{pkg}-$({var}_VERSION).tar.gz") {
                    out.push(format!("{path}:{n}: remove default value of _SOURCE"));
                }
                if cond_depth == 0 {
                    if (op == "=" || op == ":=") && assigned.iter().any(|a| a == name) {
                        out.push(format!(
                            "{path}:{n}: conditional override of variable {name}"
                        ));
                    }
                    assigned.push(name.to_string());
                }
            }
        }
        continued = ends_backslash;
    }
    let last = lines.iter().rev().find(|l| !l.trim().is_empty());
    if !last.is_some_and(|l| l.starts_with("$(eval $(") && l.ends_with("))")) {
        out.push(format!(
            "{path}: the last line must call the package infrastructure: $(eval $(...))"
        ));
    }
    out
}

/// `NAME op value` with op one of `=`, `:=`, `+=`, `?=`.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let end = line
        .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(line.len());
    if end == 0 {
        return None;
    }
    let name = &line[..end];
    let rest = line[end..].trim_start();
    ["+=", ":=", "?=", "="]
        .into_iter()
        .find(|op| rest.starts_with(op))
        .map(|op| (name, op))
}

/// `lib_config.py`: Indent, AttributesOrder, HelpText, RedefinedConfig.
fn config_checks(path: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let entries = [
        "config",
        "menuconfig",
        "comment",
        "menu",
        "endmenu",
        "if",
        "endif",
        "choice",
        "endchoice",
        "source",
    ];
    let order = |attr: &str| match attr {
        "bool" | "prompt" | "string" | "int" | "hex" | "tristate" => Some(1),
        "default" => Some(2),
        "depends" => Some(3),
        "select" | "imply" => Some(4),
        "help" => Some(5),
        _ => None,
    };
    let mut in_help = false;
    let mut last_order = 0;
    let mut configs: Vec<String> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let n = i + 1;
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        let first = t.split_whitespace().next().unwrap_or_default();
        if in_help {
            if l.starts_with("\t  ") {
                let width = 8 + l.len() - 1;
                if width > 72 && !t.contains("://") {
                    out.push(format!("{path}:{n}: help text: <tab><2 spaces><62 chars>"));
                }
                continue;
            }
            in_help = false;
        }
        if t.starts_with('#') {
            if l.starts_with(char::is_whitespace) {
                out.push(format!("{path}:{n}: should not be indented"));
            }
            continue;
        }
        if entries.contains(&first) {
            if l.starts_with(char::is_whitespace) {
                out.push(format!("{path}:{n}: should not be indented"));
            }
            last_order = 0;
            if first == "config" || first == "menuconfig" {
                let sym = t.split_whitespace().nth(1).unwrap_or_default().to_string();
                if configs.contains(&sym) {
                    out.push(format!("{path}:{n}: config {sym} redefined"));
                }
                configs.push(sym);
            }
            continue;
        }
        if let Some(rank) = order(first) {
            if !l.starts_with('\t') || l.starts_with("\t ") || l.starts_with("\t\t") {
                out.push(format!("{path}:{n}: should be indented with one tab"));
            }
            if rank < last_order {
                out.push(format!(
                    "{path}:{n}: attributes order: type, default, depends on, select, help"
                ));
            }
            last_order = rank;
            if first == "help" {
                in_help = true;
            }
            continue;
        }
        out.push(format!("{path}:{n}: unexpected line: {t}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MK: &str =
        "################################################################################
#
# foo
#
################################################################################

FOO_VERSION = 1.0
FOO_SITE = $(BR2_EXTERNAL_X_PATH)/package/foo
FOO_SITE_METHOD = local

define FOO_CONFIGURE_CMDS
\ttrue \\
\t\t--x
endef

$(eval $(generic-package))
";

    #[test]
    fn a_clean_mk_passes() {
        assert_eq!(
            check_package("package/foo/foo.mk", MK),
            Vec::<String>::new()
        );
    }

    #[test]
    fn mk_rules_catch_what_check_package_catches() {
        let bad = MK
            .replace("FOO_SITE_METHOD", "BAR_SITE_METHOD")
            .replace("\ttrue \\", "    true\t\\")
            .replace(
                "FOO_VERSION = 1.0",
                "FOO_VERSION = 1.0 \nFOO_INSTALL_STAGING = NO\nFOO_VERSION = ${X}",
            )
            .replace(
                "$(eval $(generic-package))\n",
                "$(eval $(generic-package))\nFOO_X = 1\n",
            );
        let found = check_package("package/foo/foo.mk", &bad).join("\n");
        for what in [
            "possible typo: BAR_SITE_METHOD",
            "expected indent with tabs",
            "one space before backslash",
            "trailing whitespace",
            "useless default value",
            "use $()",
            "override of variable FOO_VERSION",
            "last line must call",
        ] {
            assert!(found.contains(what), "{what} not found in:\n{found}");
        }
    }

    #[test]
    fn config_rules() {
        let good = "config BR2_PACKAGE_FOO\n\tbool \"foo\"\n\tdepends on BR2_LINUX_KERNEL\n\tselect BR2_PACKAGE_BAR\n\thelp\n\t  Foo.\n\n\t  https://example.invalid/a/very/long/url/that/is/allowed/to/be/longer/than/the/limit\n\ncomment \"foo needs a kernel\"\n\tdepends on !BR2_LINUX_KERNEL\n";
        assert_eq!(check_package("Config.in", good), Vec::<String>::new());
        let bad = "config BR2_PACKAGE_FOO\n  bool \"foo\"\n\thelp\n\t  x\n\tdepends on A\n\t  This help line is far too long for Buildroot's sixty-two chars.\nconfig BR2_PACKAGE_FOO\n\tbool \"x\"\n";
        let found = check_package("Config.in", bad).join("\n");
        for what in [
            "indented with one tab",
            "attributes order",
            "redefined",
            "unexpected line",
        ] {
            assert!(found.contains(what), "{what} not found in:\n{found}");
        }
    }

    /// The whole run, with the tools (network on first use): `cargo test -p xtask -- --ignored`.
    #[test]
    #[ignore]
    fn every_board_passes_every_validator() {
        let cases = run();
        let failed: Vec<_> = cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
            .collect();
        assert!(failed.is_empty(), "{failed:#?}");
        assert!(cases.len() >= 13, "{cases:#?}");
    }

    #[test]
    fn external_mk_is_skipped_like_check_package_does() {
        assert!(check_package("external.mk", "include x \n").is_empty());
    }
}
