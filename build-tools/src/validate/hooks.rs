//! Rules of a region's strategy hook file (`region.hooks`): its path, and the file itself.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use super::Validator;
use crate::diag::Rule;
use crate::ir;
use crate::MAX_HOOK_FILE;

/// Rule: a hook file path heapgen cannot use.
pub const HOOKS_PATH: Rule = Rule {
    name: "hooks-path",
    summary: "a hook file is a relative `[a-z0-9_.-]` path to `<identifier>.rs`, one per name",
    docs: "region.hooks",
};

/// Rule: a hook file that cannot be read or may not be copied.
pub const HOOKS_FILE: Rule = Rule {
    name: "hooks-file",
    summary: "a hook file is a regular file of at most 1 MiB inside the board file's directory",
    docs: "region.hooks",
};

/// The rules of this family.
pub const RULES: &[Rule] = &[HOOKS_PATH, HOOKS_FILE];

/// A hook file the board names, before it is read.
#[derive(Clone, Debug)]
pub(super) struct HookRef {
    /// The path as written in the board file.
    source: String,
    /// Its path in the generated tree: `hooks/<file name>`.
    path: String,
    /// The file stem (`acme_protect`).
    stem: String,
    /// Where `hooks` was first written with this path.
    span: Range<usize>,
    /// The key path of that `hooks` (`region[2].hooks`).
    key_path: String,
}

impl HookRef {
    /// The static holding the file's ops table: `HOOKS_<STEM>`.
    fn ops_static(&self) -> String {
        format!("HOOKS_{}", self.stem.to_ascii_uppercase())
    }
}

/// What is wrong with an unusable path, if anything.
fn unusable_path(hooks: &str) -> Option<&'static str> {
    let parts: Vec<&str> = hooks.split('/').collect();
    let file = parts.last().copied().unwrap_or("");
    let stem = file.strip_suffix(".rs").unwrap_or("");
    let ok_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c))
    };
    if hooks.starts_with('/') {
        Some("a relative path")
    } else if !parts.iter().all(|p| ok_part(p)) {
        Some("a path of `[a-z0-9_.-]` components without `.` or `..`")
    } else if stem.is_empty()
        || !stem.starts_with(|c: char| c.is_ascii_lowercase())
        || !stem
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Some("a `.rs` file whose name is a Rust identifier (`[a-z][a-z0-9_]*.rs`)")
    } else {
        None
    }
}

/// Checks every region's `hooks` path (rule `hooks-path`) and returns the hook files to copy,
/// each once, sorted by path; the regions get the name of their ops table.
pub(super) fn check(v: &mut Validator<'_>, regions: &mut [ir::Region]) -> Vec<HookRef> {
    let raw = v.raw;
    let mut files: BTreeMap<String, HookRef> = BTreeMap::new();
    for (i, rsp) in raw.regions.iter().enumerate() {
        let Some(h) = &rsp.value.hooks else { continue };
        let path = format!("region[{i}].hooks");
        if let Some(what) = unusable_path(&h.value) {
            v.err(
                HOOKS_PATH
                    .at(
                        path,
                        h.span.clone(),
                        format!("`{}` is not a usable hook file path", h.value),
                        format!("expected {what}"),
                    )
                    .with_help("write the path of a `.rs` file relative to the board file, e.g. `hooks = \"hooks/acme_protect.rs\"`"),
            );
            continue;
        }
        let file = h.value.rsplit('/').next().unwrap_or_default();
        let out = format!("hooks/{file}");
        if let Some(other) = files.get(&out).filter(|o| o.source != h.value) {
            let d = HOOKS_PATH
                .at(
                    path,
                    h.span.clone(),
                    format!(
                        "hook files `{}` and `{}` would both be copied to `{out}`",
                        other.source, h.value
                    ),
                    "same file name",
                )
                .with_secondary(other.span.clone(), "the other one")
                .with_help("give the hook files different names");
            v.err(d);
            continue;
        }
        let entry = files.entry(out.clone()).or_insert_with(|| HookRef {
            source: h.value.clone(),
            path: out,
            stem: file.strip_suffix(".rs").unwrap_or_default().to_string(),
            span: h.span.clone(),
            key_path: path,
        });
        let name = rsp.value.name.as_ref().map(|n| n.value.as_str());
        if let Some(r) = regions.iter_mut().find(|r| Some(r.name.as_str()) == name) {
            r.hooks_static = Some(entry.ops_static());
            r.hooks = Some(h.value.clone());
        }
    }
    files.into_values().collect()
}

/// Why a hook file cannot be used: a message and the label under the `hooks` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unusable {
    /// The diagnostic's message.
    pub message: String,
    /// The label under the `hooks` key.
    pub label: &'static str,
}

/// Reads the hook files with `read` (rule `hooks-file`) into the IR's hook files.
pub(super) fn read(
    v: &mut Validator<'_>,
    refs: Vec<HookRef>,
    read: &dyn Fn(&str) -> Result<Vec<u8>, Unusable>,
) -> Vec<ir::HookFile> {
    let mut files = Vec::new();
    for h in refs {
        match read(&h.source) {
            Ok(contents) => files.push(ir::HookFile {
                module: format!("hooks_{}", h.stem),
                ops_static: h.ops_static(),
                source: h.source,
                path: h.path,
                contents,
            }),
            Err(Unusable { message, label }) => {
                v.err(HOOKS_FILE.at(h.key_path, h.span, message, label).with_help(
                    "a hook file is a regular file of at most 1 MiB inside the board \
                         file's directory; its path is relative to that directory",
                ))
            }
        }
    }
    files
}

/// Reads the hook file `source` (a path relative to the board file's directory `dir`, already
/// checked by the `hooks-path` rule) once, or says why it cannot be used.
///
/// The file must resolve, symbolic links followed, to a regular file inside `dir` of at most
/// [`MAX_HOOK_FILE`] bytes. Nothing else is read: not a file a link leads to outside the
/// directory (a board file must not be able to copy `/etc/shadow` into a module), not a FIFO (it
/// would block), not a device (`/dev/zero` never ends). The file is opened without following a
/// link and without blocking, and checked on the open descriptor, so a file swapped in after
/// the path was resolved is caught too.
pub fn read_file(dir: &Path, source: &str) -> Result<Vec<u8>, Unusable> {
    use std::io::Read;
    // `Path::new("x.toml").parent()` is the empty path, which names no directory.
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let at = dir.join(source);
    let shown = at.display();
    let unusable = |message: String, label| Unusable { message, label };
    let unreadable = |e: std::io::Error| {
        unusable(
            format!("cannot read hook file `{shown}`: {e}"),
            "unreadable",
        )
    };
    let base = dir.canonicalize().map_err(unreadable)?;
    let real = at.canonicalize().map_err(unreadable)?;
    if !real.starts_with(&base) {
        return Err(unusable(
            format!(
                "hook file `{shown}` is a symbolic link (or lies below one) that leads outside the board file's directory"
            ),
            "leads outside the board file's directory",
        ));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(&real).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        let kind = file_kind(&meta.file_type());
        return Err(unusable(
            format!("hook file `{shown}` is not a regular file but {kind}"),
            "not a regular file",
        ));
    }
    let too_big = |len: u64| {
        unusable(
            format!(
                "hook file `{shown}` has {len} bytes, more than the {MAX_HOOK_FILE} bytes (1 MiB) a hook file may have"
            ),
            "too large",
        )
    };
    if meta.len() > MAX_HOOK_FILE {
        return Err(too_big(meta.len()));
    }
    let mut contents = Vec::new();
    file.take(MAX_HOOK_FILE + 1)
        .read_to_end(&mut contents)
        .map_err(unreadable)?;
    if contents.len() as u64 > MAX_HOOK_FILE {
        return Err(too_big(contents.len() as u64));
    }
    Ok(contents)
}

/// What a file that is not a regular file is, for diagnostics.
fn file_kind(ty: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ty.is_fifo() {
            return "a FIFO";
        }
        if ty.is_char_device() || ty.is_block_device() {
            return "a device";
        }
        if ty.is_socket() {
            return "a socket";
        }
    }
    if ty.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn hook_files_reach_the_ir_once() {
        let board = run(&format!(
            "{ARM}{}{}",
            region("a", "a-area", "ha", "hooks = \"hooks/acme_protect.rs\""),
            region("b", "b-area", "hb", "hooks = \"hooks/acme_protect.rs\""),
        ))
        .expect("valid");
        assert_eq!(board.hook_files.len(), 1);
        let h = &board.hook_files[0];
        assert_eq!(h.path, "hooks/acme_protect.rs");
        assert_eq!(h.module, "hooks_acme_protect");
        assert_eq!(h.ops_static, "HOOKS_ACME_PROTECT");
        assert_eq!(
            board.regions[1].hooks_static.as_deref(),
            Some("HOOKS_ACME_PROTECT")
        );
    }

    #[test]
    fn rule_hooks_path() {
        for bad in [
            "/abs/hooks.rs",
            "../hooks.rs",
            "./hooks.rs",
            "hooks//x.rs",
            "hooks/x.c",
            "hooks/X.rs",
            "hooks/1x.rs",
            "hooks/a-b.rs",
            "",
        ] {
            assert_eq!(one(&format!("hooks = \"{bad}\"")), ["hooks-path"], "{bad}");
        }
        assert_eq!(
            one("hooks = \"vendor/acme_protect.rs\""),
            Vec::<&str>::new()
        );
        // Two files that would land on one name.
        assert_eq!(
            rules(&format!(
                "{ARM}{}{}",
                region("a", "a-area", "ha", "hooks = \"x/p.rs\""),
                region("b", "b-area", "hb", "hooks = \"y/p.rs\""),
            )),
            ["hooks-path"]
        );
    }
}
