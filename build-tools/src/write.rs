//! Writing a generated tree atomically, and comparing one with what is on disk (`--check`).
//!
//! The new tree is assembled in a temporary directory next to the target and renamed into place,
//! so a reader sees either the old tree or the new one, never a mix. On any error the temporary
//! directory is removed and an existing output directory is left as it was.
//!
//! Files whose content did not change are hard links to the old ones, so their modification time
//! is kept and Kbuild does not rebuild needlessly. Files the previous generation did not write
//! (build products such as `.o` and `.ko`, listed nowhere in the old manifest) are carried over
//! the same way; files the previous generation wrote and this one does not are dropped.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::render::MANIFEST;
use crate::Generation;

/// What [`write_atomic`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Generated files written with new content.
    pub written: Vec<String>,
    /// Generated files whose content was already on disk.
    pub unchanged: Vec<String>,
    /// Files of the previous generation that are no longer generated.
    pub removed: Vec<String>,
}

/// One difference between a generation and an output directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stale {
    /// The file would be created.
    Missing(String),
    /// The file's content differs.
    Changed(String),
    /// The previous generation wrote the file and this one does not.
    Extra(String),
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stale::Missing(p) => write!(f, "missing: {p}"),
            Stale::Changed(p) => write!(f, "changed: {p}"),
            Stale::Extra(p) => write!(f, "no longer generated: {p}"),
        }
    }
}

/// `path` as a relative path that stays below the output directory: `/`-separated names, none
/// empty, `.` or `..`. The generator only makes such paths; this keeps a library caller's
/// [`Generation`] from writing anywhere else.
fn below(path: &str) -> io::Result<&Path> {
    let ok = !path.is_empty()
        && !path.contains(['\\', '\0'])
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(Path::new(path))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "generated path `{}` does not stay below the output directory",
                path.escape_debug()
            ),
        ))
    }
}

/// The files a previous generation listed in its manifest (the manifest included).
fn previous_files(out: &Path) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    let Ok(text) = fs::read_to_string(out.join(MANIFEST)) else {
        return set;
    };
    set.insert(MANIFEST.to_string());
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
        if let Some(files) = json.get("files").and_then(|f| f.as_array()) {
            for f in files {
                if let Some(p) = f.get("path").and_then(|p| p.as_str()) {
                    if below(p).is_ok() {
                        set.insert(p.to_string());
                    }
                }
            }
        }
    }
    set
}

/// Whether the regular file `path` (not a link, FIFO or device) holds exactly `contents`. Only
/// a file of the right size is read, so what else sits in an output directory is never opened.
fn holds_exactly(path: &Path, contents: &[u8]) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.len() == contents.len() as u64 => Ok(fs::read(path)? == contents),
        Ok(_) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Compares `generation` with the directory `out`; an empty list means up to date.
pub fn check_output(generation: &Generation, out: &Path) -> io::Result<Vec<Stale>> {
    let mut stale = Vec::new();
    let mut current = BTreeSet::new();
    for f in &generation.files {
        below(&f.path)?;
    }
    for f in &generation.files {
        current.insert(f.path.clone());
        match holds_exactly(&out.join(&f.path), &f.contents) {
            Ok(true) => {}
            Ok(false) => stale.push(Stale::Changed(f.path.clone())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                stale.push(Stale::Missing(f.path.clone()))
            }
            Err(e) => return Err(e),
        }
    }
    for p in previous_files(out) {
        if !current.contains(&p) && out.join(&p).exists() {
            stale.push(Stale::Extra(p));
        }
    }
    Ok(stale)
}

fn link_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to)?;
    }
    Ok(())
}

/// Carries `from` (a file, symlink or directory of build products) over into `to`.
fn carry_over(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        #[cfg(unix)]
        std::os::unix::fs::symlink(fs::read_link(from)?, to)?;
        #[cfg(not(unix))]
        fs::copy(from, to)?;
    } else if meta.is_dir() {
        fs::create_dir(to)?;
        let mut entries: Vec<_> = fs::read_dir(from)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            carry_over(&e.path(), &to.join(e.file_name()))?;
        }
    } else {
        link_or_copy(from, to)?;
    }
    Ok(())
}

fn fill(generation: &Generation, out: &Path, tmp: &Path) -> io::Result<WriteSummary> {
    let mut summary = WriteSummary::default();
    let current: BTreeSet<&str> = generation.files.iter().map(|f| f.path.as_str()).collect();
    for f in &generation.files {
        let target = tmp.join(below(&f.path)?);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        let old = out.join(&f.path);
        if holds_exactly(&old, &f.contents).unwrap_or(false) {
            link_or_copy(&old, &target)?;
            summary.unchanged.push(f.path.clone());
        } else {
            fs::write(&target, &f.contents)?;
            summary.written.push(f.path.clone());
        }
    }
    if out.is_dir() {
        let previous = previous_files(out);
        carry_over_dir(out, tmp, "", &current, &previous, &mut summary)?;
    }
    Ok(summary)
}

/// Whether some generated path lies below the directory `dir` (`a/b` for `a/b/c`).
fn holds(paths: impl IntoIterator<Item = impl AsRef<str>>, dir: &str) -> bool {
    let prefix = format!("{dir}/");
    paths.into_iter().any(|p| p.as_ref().starts_with(&prefix))
}

/// Carries the entries of `out/<rel>` that are neither generated now nor were generated
/// before into `tmp/<rel>`, descending into the directories generated files live in.
fn carry_over_dir(
    out: &Path,
    tmp: &Path,
    rel: &str,
    current: &BTreeSet<&str>,
    previous: &BTreeSet<String>,
    summary: &mut WriteSummary,
) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(out.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if current.contains(path.as_str()) {
            continue;
        }
        if previous.contains(&path) {
            summary.removed.push(path);
            continue;
        }
        let is_dir = e.file_type()?.is_dir();
        if is_dir && (holds(current.iter(), &path) || holds(previous.iter(), &path)) {
            carry_over_dir(out, tmp, &path, current, previous, summary)?;
            continue;
        }
        let target = tmp.join(&path);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        carry_over(&e.path(), &target)?;
    }
    Ok(())
}

fn staging_dir(parent: &Path, what: &str) -> io::Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix(&format!(".heapgen-{what}-"))
        .tempdir_in(parent)?;
    Ok(dir.keep())
}

/// Writes `generation` to the directory `out`, atomically.
///
/// The parent of `out` is created if needed. Either the whole new tree is in place when this
/// returns `Ok`, or `out` is exactly as it was before.
pub fn write_atomic(generation: &Generation, out: &Path) -> io::Result<WriteSummary> {
    if out.exists() && !out.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("`{}` exists and is not a directory", out.display()),
        ));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent)?;
    let tmp = staging_dir(&parent, "new")?;
    let result = fill(generation, out, &tmp).and_then(|summary| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
        }
        if out.exists() {
            // Renaming a directory over an empty one is allowed, so the old tree moves to a
            // fresh empty directory and the new one takes its place.
            let old = staging_dir(&parent, "old")?;
            fs::rename(out, &old)?;
            if let Err(e) = fs::rename(&tmp, out) {
                fs::rename(&old, out)?;
                return Err(e);
            }
            fs::remove_dir_all(&old)?;
        } else {
            fs::rename(&tmp, out)?;
        }
        Ok(summary)
    });
    if result.is_err() && tmp.exists() {
        // Best effort: the error being returned matters more than a leftover directory.
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Writes one file atomically: the bytes go to a temporary file next to `path`, which is then
/// renamed over it, so a reader sees the old file or the new one. Missing parent directories
/// are created, as `write_atomic` creates the output directory.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".heapgen-")
        .tempfile_in(parent)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GeneratedFile;

    fn generation(files: &[(&str, &str)]) -> Generation {
        Generation {
            files: files
                .iter()
                .map(|(p, c)| GeneratedFile {
                    path: p.to_string(),
                    contents: c.as_bytes().to_vec(),
                })
                .collect(),
        }
    }

    fn manifest(paths: &[&str]) -> String {
        let files: Vec<_> = paths
            .iter()
            .map(|p| serde_json::json!({ "path": p, "sha256": "" }))
            .collect();
        serde_json::json!({ "files": files }).to_string()
    }

    #[test]
    fn writes_a_new_tree_and_reports_it_up_to_date() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a/b/out");
        let g = generation(&[("Kbuild", "k\n"), (MANIFEST, &manifest(&["Kbuild"]))]);
        let s = write_atomic(&g, &out).unwrap();
        assert_eq!(s.written, ["Kbuild", MANIFEST]);
        assert_eq!(fs::read_to_string(out.join("Kbuild")).unwrap(), "k\n");
        assert!(check_output(&g, &out).unwrap().is_empty());
        // Nothing but the output is left next to it.
        let names: Vec<_> = fs::read_dir(dir.path().join("a/b")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn one_file_goes_into_directories_that_do_not_exist_yet() {
        // `heapgen import --out board-configs/new.toml` in a BSP tree without board-configs/.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("board-configs/new.toml");
        write_file_atomic(&path, b"schema-version = 1\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"schema-version = 1\n");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["new.toml"], "no temporary file is left");
    }

    #[test]
    fn rewrites_only_changed_files_and_keeps_build_products() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let g1 = generation(&[
            ("a.rs", "a\n"),
            ("gone.rs", "g\n"),
            (MANIFEST, &manifest(&["a.rs", "gone.rs"])),
        ]);
        write_atomic(&g1, &out).unwrap();
        fs::write(out.join("a.o"), "obj").unwrap();
        fs::create_dir(out.join(".tmp")).unwrap();
        fs::write(out.join(".tmp/x"), "x").unwrap();
        let g2 = generation(&[
            ("a.rs", "a\n"),
            ("b.rs", "b\n"),
            (MANIFEST, &manifest(&["a.rs", "b.rs"])),
        ]);
        assert_eq!(
            check_output(&g2, &out).unwrap(),
            [
                Stale::Missing("b.rs".into()),
                Stale::Changed(MANIFEST.into()),
                Stale::Extra("gone.rs".into())
            ]
        );
        let s = write_atomic(&g2, &out).unwrap();
        assert_eq!(s.unchanged, ["a.rs"]);
        assert_eq!(s.written, ["b.rs", MANIFEST]);
        assert_eq!(s.removed, ["gone.rs"]);
        assert_eq!(fs::read_to_string(out.join("a.o")).unwrap(), "obj");
        assert_eq!(fs::read_to_string(out.join(".tmp/x")).unwrap(), "x");
        assert!(!out.join("gone.rs").exists());
        assert!(check_output(&g2, &out).unwrap().is_empty());
    }

    #[test]
    fn regenerates_nested_directories_and_keeps_what_others_put_there() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let g1 = generation(&[
            ("a.rs", "a\n"),
            ("yocto/x/a.bb", "a\n"),
            ("yocto/x/gone.bb", "g\n"),
            (
                MANIFEST,
                &manifest(&["a.rs", "yocto/x/a.bb", "yocto/x/gone.bb"]),
            ),
        ]);
        write_atomic(&g1, &out).unwrap();
        fs::write(out.join("yocto/x/mine.bbappend"), "m").unwrap();
        // Regenerating the same tree over itself works.
        let s = write_atomic(&g1, &out).unwrap();
        assert_eq!(s.unchanged.len(), 4);
        let g2 = generation(&[
            ("a.rs", "a\n"),
            ("yocto/x/a.bb", "a2\n"),
            (MANIFEST, &manifest(&["a.rs", "yocto/x/a.bb"])),
        ]);
        let s = write_atomic(&g2, &out).unwrap();
        assert_eq!(s.removed, ["yocto/x/gone.bb"]);
        assert_eq!(
            fs::read_to_string(out.join("yocto/x/a.bb")).unwrap(),
            "a2\n"
        );
        assert_eq!(
            fs::read_to_string(out.join("yocto/x/mine.bbappend")).unwrap(),
            "m"
        );
        assert!(!out.join("yocto/x/gone.bb").exists());
        assert!(check_output(&g2, &out).unwrap().is_empty());
    }

    #[test]
    fn a_failed_write_leaves_the_old_tree_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        write_atomic(&generation(&[("a.rs", "old\n")]), &out).unwrap();
        // A path that cannot be created (a file where a directory must go) makes the write fail.
        let bad = generation(&[("a.rs", "new\n"), ("a.rs/x", "y")]);
        assert!(write_atomic(&bad, &out).is_err());
        assert_eq!(fs::read_to_string(out.join("a.rs")).unwrap(), "old\n");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "staging directory left behind");
    }

    #[test]
    fn refuses_paths_that_leave_the_output_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a/out");
        for bad in [
            "../escape",
            "x/../../escape",
            "/tmp/escape",
            "",
            "a//b",
            "./a",
        ] {
            let g = generation(&[("ok", "1"), (bad, "2")]);
            assert!(write_atomic(&g, &out).is_err(), "{bad:?}");
            assert!(check_output(&g, &out).is_err(), "{bad:?}");
            assert!(!out.exists(), "{bad:?}");
            assert!(!dir.path().join("escape").exists(), "{bad:?}");
            assert!(!dir.path().join("a/escape").exists(), "{bad:?}");
        }
    }

    #[test]
    fn special_files_in_the_output_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let g = generation(&[("Kbuild", "k\n"), ("link", "secret\n")]);
        write_atomic(&g, &out).unwrap();
        fs::remove_file(out.join("Kbuild")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(out.join("Kbuild"))
            .status()
            .unwrap();
        assert!(made.success());
        fs::write(dir.path().join("secret"), "secret\n").unwrap();
        fs::remove_file(out.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), out.join("link")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (g2, out2) = (g.clone(), out.clone());
        std::thread::spawn(move || {
            let stale = check_output(&g2, &out2).map(|s| s.len());
            let written = write_atomic(&g2, &out2).map(|s| s.written);
            let _ = tx.send((stale, written));
        });
        let (stale, written) = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a FIFO in the output directory blocked");
        assert_eq!(stale.unwrap(), 2);
        assert_eq!(written.unwrap(), ["Kbuild", "link"]);
        assert!(out.join("link").symlink_metadata().unwrap().is_file());
    }

    #[test]
    fn refuses_to_replace_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        fs::write(&out, "x").unwrap();
        assert!(write_atomic(&generation(&[("a", "b")]), &out).is_err());
        assert_eq!(fs::read_to_string(&out).unwrap(), "x");
    }
}
