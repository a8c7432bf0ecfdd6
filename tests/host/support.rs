// SPDX-License-Identifier: GPL-2.0

//! Shared helpers: paths, the binary, blessing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("build-tools has a parent")
        .to_path_buf()
}

/// Whether expected outputs are to be overwritten.
pub fn bless() -> bool {
    std::env::var_os("HEAPGEN_BLESS").is_some_and(|v| v != "0")
}

/// Runs the heapgen binary in `cwd`.
pub fn heapgen(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heapgen"))
        .current_dir(cwd)
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("heapgen runs")
}

/// The board files in board-configs/, sorted.
pub fn boards() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("board-configs"))
        .expect("board-configs/ exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    assert!(v.len() >= 4, "expected at least four boards, found {v:?}");
    v
}

/// Compares `actual` with the file `expected`, or overwrites it when blessing.
/// Returns a description of the mismatch, if any.
pub fn compare(expected: &Path, actual: &[u8]) -> Option<String> {
    if bless() {
        std::fs::create_dir_all(expected.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(expected, actual).expect("bless");
        return None;
    }
    match std::fs::read(expected) {
        Ok(e) if e == actual => None,
        Ok(e) => Some(format!(
            "{} differs:\n--- expected\n{}\n--- actual\n{}",
            expected.display(),
            String::from_utf8_lossy(&e),
            String::from_utf8_lossy(actual)
        )),
        Err(_) => Some(format!(
            "{} is missing (run with HEAPGEN_BLESS=1)",
            expected.display()
        )),
    }
}
