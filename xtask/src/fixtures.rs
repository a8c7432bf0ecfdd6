//! A cache of the test fixtures every guest run needs and that do not change from run to run:
//! the guest test programs and the test importer module, built once per kernel and per content
//! of their sources, under `$HEAPGEN_CACHE/fixtures/`. The module under test is never cached:
//! every run builds it.
//!
//! An entry's name is a hash of everything its build reads (the sources, the kernel build it is
//! for, the compiler's version); it is complete once its marker is written, and the least
//! recently used entries beyond [`KEEP_FIXTURES`] are pruned.

use crate::util::{cache_root, step};
use anyhow::{Context, Result};
use heapgen::render::sha256_hex;
use std::{
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
    time::SystemTime,
};

/// How many fixture builds the cache keeps (two kinds for each of the matrix's ten kernels).
const KEEP_FIXTURES: usize = 24;

/// The marker of a complete entry.
const COMPLETE: &str = ".heapgen-complete";

/// Every regular file directly in `dir`, as `(name, contents)`, sorted by name: key material.
pub fn dir_contents(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push((
                entry.file_name().to_string_lossy().into_owned(),
                fs::read(entry.path())?,
            ));
        }
    }
    files.sort();
    Ok(files)
}

/// The hash of key material given as named parts.
pub fn key(parts: &[(&str, &[u8])]) -> String {
    let mut material = Vec::new();
    for (name, bytes) in parts {
        // Length-prefixed, so that no two different lists hash alike.
        for field in [name.as_bytes(), bytes] {
            material.extend_from_slice(&field.len().to_le_bytes());
            material.extend_from_slice(field);
        }
    }
    sha256_hex(&material)[..16].to_string()
}

/// The directory of fixture `kind` with key `key`, built by `build` into an empty directory if
/// the cache does not have it complete. Two workers may build the same entry at once: the first
/// to finish keeps its directory, the other's is discarded.
pub fn cached(kind: &str, key: &str, build: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    let root = cache_root().join("fixtures");
    let dir = root.join(format!("{kind}-{key}"));
    let marker = dir.join(COMPLETE);
    if marker.is_file() {
        // Mark as used for the pruning.
        fs::write(&marker, "")?;
        return Ok(dir);
    }
    // A name of its own for each build (Kbuild takes no parentheses or spaces in `M=`).
    static BUILDS: AtomicUsize = AtomicUsize::new(0);
    let tmp = root.join(format!(
        ".{kind}-{key}.{}.{}",
        std::process::id(),
        BUILDS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    if let Err(e) = build(&tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    fs::write(tmp.join(COMPLETE), "")?;
    if fs::rename(&tmp, &dir).is_err() {
        // Built meanwhile by another worker (or left incomplete by a killed run).
        if marker.is_file() {
            let _ = fs::remove_dir_all(&tmp);
            return Ok(dir);
        }
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&tmp, &dir).with_context(|| format!("installing {}", dir.display()))?;
    }
    prune(&root)?;
    Ok(dir)
}

/// Keeps the [`KEEP_FIXTURES`] most recently used complete entries and removes the rest, and
/// any leftover of a build older than an hour.
fn prune(root: &Path) -> Result<()> {
    let mut entries: Vec<(SystemTime, PathBuf)> = Vec::new();
    for entry in fs::read_dir(root)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        match fs::metadata(path.join(COMPLETE)).and_then(|m| m.modified()) {
            Ok(t) => entries.push((t, path)),
            Err(_) if name.is_some_and(|n| n.starts_with('.')) => {
                let old = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > 3600);
                if old {
                    let _ = fs::remove_dir_all(&path);
                }
            }
            Err(_) => {}
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, path) in entries.into_iter().skip(KEEP_FIXTURES) {
        step(format!("pruning old test fixture {}", path.display()));
        let _ = fs::remove_dir_all(&path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_lists_apart() {
        assert_ne!(key(&[("a", b"bc")]), key(&[("ab", b"c")]));
        assert_ne!(key(&[("a", b"")]), key(&[("a", b""), ("", b"")]));
        assert_eq!(key(&[("a", b"b")]), key(&[("a", b"b")]));
    }
}
