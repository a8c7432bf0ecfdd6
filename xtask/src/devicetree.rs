//! Checks of the generated `reserved-memory.dtsi` by the device-tree tools themselves: dtc
//! compiles it without a warning, and the kernel's dt-schema validator (`dt-validate` from
//! PyPI's `dtschema`, which ships the reserved-memory schemas) accepts it.

use crate::{
    ktap::{Case, Outcome},
    util::{self, cache_root, run, step},
};
use anyhow::{bail, Context, Result};
use std::{fs, path::Path, path::PathBuf, process::Command};

/// The dtschema release the checks are pinned to.
const DTSCHEMA_VERSION: &str = "2026.9";

/// A minimal arm64 root node for checking a board's reserved-memory fragment on its own (QEMU's
/// dumped tree decompiles with numeric phandles that dtc and dt-schema complain about).
const ROOT: &str = "/dts-v1/;
/ {
\t#address-cells = <2>;
\t#size-cells = <2>;
\tmodel = \"heapgen reserved-memory check\";
\tcompatible = \"linux,dummy-virt\";
\tmemory@40000000 {
\t\tdevice_type = \"memory\";
\t\treg = <0x0 0x40000000 0x1 0x00000000>;
\t};
};
";

/// Installs dtschema into a venv under the cache; returns `dt-validate`.
pub fn ensure_dt_validate() -> Result<PathBuf> {
    let venv = cache_root().join(format!("venv-dtschema-{DTSCHEMA_VERSION}"));
    let bin = venv.join("bin/dt-validate");
    if bin.is_file() {
        return Ok(bin);
    }
    step(format!(
        "installing dtschema {DTSCHEMA_VERSION} into {}",
        venv.display()
    ));
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("dtschema=={DTSCHEMA_VERSION}")))?;
    if !bin.is_file() {
        bail!("dtschema installed no dt-validate");
    }
    Ok(bin)
}

/// Compiles `dtsi` under a minimal root with dtc (warnings fail) and runs dt-validate on it
/// (any report fails).
pub fn check_fragment(dtsi: &Path, work: &Path) -> Result<()> {
    fs::create_dir_all(work)?;
    let dts = work.join("reserved-memory-check.dts");
    let text = fs::read_to_string(dtsi).with_context(|| format!("reading {}", dtsi.display()))?;
    fs::write(&dts, format!("{ROOT}\n{text}"))?;
    let dtb = work.join("reserved-memory-check.dtb");
    let out = run(Command::new("dtc")
        .args(["-I", "dts", "-O", "dtb", "-o"])
        .arg(&dtb)
        .arg(&dts))?;
    if !out.trim().is_empty() {
        bail!("dtc reported on {}:\n{out}", dts.display());
    }
    let out = run(Command::new(ensure_dt_validate()?).arg(&dtb))?;
    if !out.trim().is_empty() {
        bail!("dt-validate rejected {}:\n{out}", dts.display());
    }
    Ok(())
}

/// Generates every board of `boards` that reserves memory and checks its fragment.
pub fn check_boards(boards: &[PathBuf], work: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    for board_file in boards {
        let stem = util::file_stem(board_file);
        let dir = work.join(&stem);
        let result = (|| -> Result<bool> {
            let _ = fs::remove_dir_all(&dir);
            crate::e2e::generate(board_file, &dir.join("module"))?;
            let dtsi = dir.join("module/reserved-memory.dtsi");
            if !dtsi.is_file() {
                return Ok(false);
            }
            check_fragment(&dtsi, &dir)?;
            Ok(true)
        })();
        let outcome = match result {
            Ok(true) => Outcome::Pass,
            Ok(false) => continue,
            Err(e) => {
                eprintln!("FAIL dt/{stem}: {e:#}");
                Outcome::Fail(format!("{e:#}"))
            }
        };
        cases.push(Case {
            name: format!("dt/{stem}/dtc+dt-validate"),
            outcome,
        });
    }
    cases
}
