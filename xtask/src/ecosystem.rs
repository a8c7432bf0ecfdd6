//! The build-system files heapgen generates, checked by the build systems' own tools.
//!
//! Every board in board-configs/ is generated with all targets into
//! `target/ecosystem/<board>/`, then:
//!
//! - the Yocto recipes go through `oelint-adv` (no error or warning allowed),
//! - the Kleaf `BUILD.bazel` through `buildifier --mode=check --lint=warn`,
//!
//! and Documentation/ is built with `sphinx-build -W`. Linters are not builds: the modules are
//! built the ways the build systems invoke Kbuild in [`crate::invocation`], and BitBake,
//! Buildroot and Kleaf themselves run on these trees in `cargo xtask integration`
//! ([`crate::integration`]), given their sources. The tools are installed on first use, with
//! pinned versions, into the cache: a Python venv (`<cache>/venv`) for oelint-adv and Sphinx, and
//! `npm install --prefix <cache>/npm` for buildifier.

use anyhow::{bail, Context, Result};
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use crate::ktap::Case;
use crate::util::{self, cache_root, repo_root, step};

/// Pinned tool versions.
const OELINT_ADV: &str = "oelint-adv==9.11.2";
const SPHINX: &str = "sphinx==9.0.4";
const BUILDIFIER: &str = "@bazel/buildifier@8.2.1";

/// oelint-adv rules left out: `homepageping` fetches the HOMEPAGE over the network, which tests
/// must not need.
const OELINT_SUPPRESS: &[&str] = &["oelint.vars.homepageping"];

/// Generates every board with all targets, installs the tools and runs them: one case per board
/// and tool, plus one for the documentation.
pub fn run() -> Vec<Case> {
    let mut cases = Vec::new();
    let boards = match generate_all() {
        Ok(b) => b,
        Err(e) => {
            cases.push(Case::checked("ecosystem/generate", Err(e)));
            return cases;
        }
    };
    let venv = install_venv();
    let buildifier = install_buildifier();
    for (stem, dir) in &boards {
        let name = |tool: &str| format!("ecosystem/{stem}/{tool}");
        cases.push(Case::checked(
            name("oelint-adv"),
            venv.as_ref()
                .map_err(|e| anyhow::anyhow!("{e:#}"))
                .and_then(|v| oelint(v, dir)),
        ));
        cases.push(Case::checked(
            name("buildifier"),
            buildifier
                .as_ref()
                .map_err(|e| anyhow::anyhow!("{e:#}"))
                .and_then(|b| run_buildifier(b, dir)),
        ));
    }
    cases.push(Case::checked(
        "ecosystem/sphinx-build",
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
        let ir = heapgen::load(&board)
            .map_err(|d| anyhow::anyhow!("{d}"))?
            .board;
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
