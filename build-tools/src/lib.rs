//! heapgen: generate a Rust dma-buf heap kernel module from a board file.
//!
//! The pipeline is parse ([`model`]) -> validate ([`validate`], every problem collected) -> IR
//! ([`ir`]) -> render ([`render`], templates see only the IR) -> write ([`write`], atomic). The
//! `heapgen` binary is a thin layer over [`load`], [`generate`] and [`write_atomic`].
//!
//! ```no_run
//! let board = heapgen::load("board-configs/qemu-x86_64.toml")?.board;
//! let generation = heapgen::generate(&board, &heapgen::Options::default())?;
//! heapgen::write_atomic(&generation, std::path::Path::new("out/qemu-x86_64"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::{Component, Path};

pub mod diag;
pub mod explain;
pub mod import;
pub mod ir;
pub mod kmi;
pub mod model;
pub mod render;
pub mod runtime;
pub mod schema;
pub mod size;
pub mod testsuite;
pub mod validate;
pub mod write;

pub use diag::{Diagnostic, Diagnostics};
pub use write::{check_output, write_atomic, write_file_atomic, Stale, WriteSummary};

/// The largest board file heapgen reads, in bytes: 512 KiB. A larger file is refused before it
/// is read further (rule `board-file-size`).
///
/// Real board files take a few kilobytes. The cap bounds what checking any file costs: the TOML
/// parser alone takes up to about 120 bytes of memory per byte of pathological input (a line
/// of a million dots), so 512 KiB keeps a check under 100 MB.
pub const MAX_BOARD_FILE: u64 = 512 << 10;

/// The largest hook file (`hooks = "<path>.rs"`) heapgen copies into a module, in bytes: 1 MiB.
pub const MAX_HOOK_FILE: u64 = 1 << 20;

/// The heapgen version stamped into generated files.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A build system whose files `generate` emits next to the module (`--targets`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// `yocto/`: a layer with the module recipe (`module-rust`) and the `heapgen` host tool
    /// recipe.
    Yocto,
    /// `buildroot/`: a br2-external tree with the module package (`kernel-module`) and
    /// `host-heapgen` (`host-cargo-package`).
    Buildroot,
    /// `BUILD.bazel` (Kleaf `ddk_module`), `android/sepolicy/` and the KMI symbol list fragment.
    Android,
}

impl Target {
    /// Every target, in a fixed order.
    pub const ALL: [Target; 3] = [Target::Yocto, Target::Buildroot, Target::Android];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Yocto => "yocto",
            Target::Buildroot => "buildroot",
            Target::Android => "android",
        }
    }
}

/// Options of [`generate`].
#[derive(Clone, Debug)]
pub struct Options {
    /// The version written into `@generated` headers and the manifest (default: [`VERSION`]).
    pub version: String,
    /// The build systems to emit files for besides the module itself (default: all).
    pub targets: Vec<Target>,
    /// The KMI symbol list of the Android target (default: the symbols the runtime is known
    /// to call, [`kmi::known_symbols`]); the CLI passes the undefined symbols of a built module
    /// when one exists ([`kmi::from_module`]).
    pub kmi_symbols: Option<kmi::KmiSymbols>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            version: VERSION.to_string(),
            targets: Target::ALL.to_vec(),
            kmi_symbols: None,
        }
    }
}

/// One generated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Path relative to the output directory, `/`-separated.
    pub path: String,
    /// The file's bytes.
    pub contents: Vec<u8>,
}

/// A generated module tree, sorted by path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    /// The files, sorted by path.
    pub files: Vec<GeneratedFile>,
}

impl Generation {
    /// The file at `path`, if generated.
    pub fn get(&self, path: &str) -> Option<&GeneratedFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// Why generation failed (never because of the board file: that is [`load`]'s job). Every
/// variant but [`GenError::Version`] is a bug in heapgen.
#[derive(Debug)]
pub enum GenError {
    /// The template environment could not be set up.
    Environment(minijinja::Error),
    /// A template failed to render.
    Template {
        /// The template's id (`Kbuild.j2`).
        name: &'static str,
        /// What minijinja reported.
        source: minijinja::Error,
    },
    /// heapgen's own `Cargo.lock`, which the Yocto crate list is made from, does not parse.
    CargoLock(toml::de::Error),
    /// The manifest could not be serialized.
    Manifest(serde_json::Error),
    /// Two generated files have one path.
    DuplicatePath(String),
    /// [`Options::version`] is not a version (`[0-9A-Za-z][0-9A-Za-z.+~-]*`): it names
    /// generated files (`<pkg>_<version>.bb`) and is written into recipes.
    Version(String),
}

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenError::Environment(e) => {
                write!(f, "internal error: the templates do not load: {e:#}")
            }
            GenError::Template { name, source } => {
                write!(
                    f,
                    "internal error: template `{name}` failed to render: {source:#}"
                )
            }
            GenError::CargoLock(e) => {
                write!(
                    f,
                    "internal error: heapgen's Cargo.lock does not parse: {e}"
                )
            }
            GenError::Manifest(e) => write!(f, "internal error: cannot write the manifest: {e}"),
            GenError::DuplicatePath(path) => {
                write!(f, "internal error: two generated files are named `{path}`")
            }
            GenError::Version(v) => write!(
                f,
                "version `{}` is not a version: it names generated files and goes into recipes",
                v.escape_debug()
            ),
        }
    }
}

impl std::error::Error for GenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GenError::Environment(e) | GenError::Template { source: e, .. } => Some(e),
            GenError::CargoLock(e) => Some(e),
            GenError::Manifest(e) => Some(e),
            GenError::DuplicatePath(_) | GenError::Version(_) => None,
        }
    }
}

/// The name a board file goes by in generated files: its path relative to the root of the
/// repository holding it (the nearest ancestor with `.git`), `/`-separated, so that it does not
/// depend on the working directory or on how the path was spelled. Outside a repository it is
/// the path as given when that is relative, else the file name.
pub fn source_name(path: &Path) -> String {
    let slash = |p: &Path| {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    if let Ok(abs) = path.canonicalize() {
        let mut dir = abs.parent();
        while let Some(d) = dir {
            if d.join(".git").exists() {
                if let Ok(rel) = abs.strip_prefix(d) {
                    return slash(rel);
                }
            }
            dir = d.parent();
        }
    }
    if path.is_relative() && !path.components().any(|c| matches!(c, Component::ParentDir)) {
        slash(path)
    } else {
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }
}

/// A validated board and the warnings its board file gave.
#[derive(Debug)]
pub struct Loaded {
    /// The IR.
    pub board: ir::Board,
    /// Warnings (empty list when there are none); render them as errors are rendered.
    pub warnings: Diagnostics,
}

/// A board file to [`load`]: a path to read or bytes already read, and the names it goes by.
///
/// `heapgen::load("board.toml")` loads a file by its path (any `&P` where `P: AsRef<Path>`
/// converts to a `Source`).
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    input: Input<'a>,
    name: Option<&'a str>,
    dir: Option<&'a Path>,
}

#[derive(Clone, Copy, Debug)]
enum Input<'a> {
    Path(&'a Path),
    Bytes { file: &'a str, bytes: &'a [u8] },
}

impl<'a> Source<'a> {
    /// The board file at `path`: diagnostics name it as given, generated files by
    /// [`source_name`], and its hook files are read relative to its directory. At most
    /// [`MAX_BOARD_FILE`] + 1 bytes are read.
    pub fn path(path: &'a Path) -> Self {
        Self {
            input: Input::Path(path),
            name: None,
            dir: None,
        }
    }

    /// A board file's bytes, named `file` in diagnostics and (unless [`Source::named`]) in
    /// generated files; its hook files are read relative to the working directory (unless
    /// [`Source::hooks_in`]).
    pub fn bytes(file: &'a str, bytes: &'a [u8]) -> Self {
        Self {
            input: Input::Bytes { file, bytes },
            name: None,
            dir: None,
        }
    }

    /// The name generated files give the board file.
    pub fn named(self, name: &'a str) -> Self {
        Self {
            name: Some(name),
            ..self
        }
    }

    /// The directory the board's hook files (`hooks = "<path>.rs"`) are read relative to: the
    /// board file's.
    pub fn hooks_in(self, dir: &'a Path) -> Self {
        Self {
            dir: Some(dir),
            ..self
        }
    }
}

impl<'a, P: AsRef<Path> + ?Sized> From<&'a P> for Source<'a> {
    fn from(path: &'a P) -> Self {
        Source::path(path.as_ref())
    }
}

/// Reads, parses and validates a board file into the IR, with its warnings, or returns every
/// problem in it (warnings included).
pub fn load<'a>(source: impl Into<Source<'a>>) -> Result<Loaded, Diagnostics> {
    let source = source.into();
    match source.input {
        Input::Path(path) => {
            let file = path.display().to_string();
            let bytes = read_board_file(path, &file)?;
            let name = source
                .name
                .map_or_else(|| source_name(path), str::to_string);
            let dir = source
                .dir
                .unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")));
            load_bytes(dir, &file, &name, &bytes)
        }
        Input::Bytes { file, bytes } => load_bytes(
            source.dir.unwrap_or(Path::new(".")),
            file,
            source.name.unwrap_or(file),
            bytes,
        ),
    }
}

/// Parses and validates a board file's bytes; `file` is the name diagnostics show
/// (`file:line:col`), `source` the name generated files show, `dir` the directory of its hook
/// files.
fn load_bytes(dir: &Path, file: &str, source: &str, bytes: &[u8]) -> Result<Loaded, Diagnostics> {
    if bytes.len() as u64 > MAX_BOARD_FILE {
        return Err(too_large(file, bytes.len() as u64, true));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.valid_up_to();
            let text = String::from_utf8_lossy(bytes).into_owned();
            return Err(Diagnostics::new(
                file,
                text,
                vec![Diagnostic::new(
                    &validate::board::ENCODING,
                    "",
                    at..at + 1,
                    "the board file is not valid UTF-8",
                    "invalid byte",
                )],
            ));
        }
    };
    let (raw, diags) = model::parse(text);
    let Some(raw) = raw else {
        return Err(Diagnostics::collected(file, text, diags));
    };
    let input = validate::Input {
        source,
        bytes,
        read_hook: &|hooks| validate::hooks::read_file(dir, hooks),
    };
    match validate::validate(&raw, diags, &input) {
        Ok((board, warnings)) => Ok(Loaded {
            board,
            warnings: Diagnostics::collected(file, text, warnings),
        }),
        Err(diags) => Err(Diagnostics::collected(file, text, diags)),
    }
}

/// The diagnostic of a board file larger than [`MAX_BOARD_FILE`]: `len` bytes, or at least
/// `len` bytes when the rest was not read.
fn too_large(file: &str, len: u64, exact: bool) -> Diagnostics {
    Diagnostics::new(
        file,
        "",
        vec![Diagnostic::new(
            &validate::board::BOARD_FILE_SIZE,
            "",
            0..0,
            format!(
                "`{file}` has {}{len} bytes, more than the {MAX_BOARD_FILE} bytes (512 KiB) a board file may have",
                if exact { "" } else { "at least " }
            ),
            "",
        )
        .with_help("a board file describes a board's regions in a few kilobytes; is this the right file?")],
    )
}

/// Reads at most [`MAX_BOARD_FILE`] + 1 bytes of `path`: a regular file larger than the cap is
/// refused from its metadata, before anything is read; anything else (a pipe, a device) is read
/// through the limit.
fn read_board_file(path: &Path, file: &str) -> Result<Vec<u8>, Diagnostics> {
    use std::io::Read;
    let failed = |e: std::io::Error| {
        Diagnostics::new(
            file,
            "",
            vec![Diagnostic::new(
                &validate::board::READ_FAILED,
                "",
                0..0,
                format!("cannot read `{file}`: {e}"),
                "",
            )],
        )
    };
    let f = std::fs::File::open(path).map_err(failed)?;
    let meta = f.metadata().map_err(failed)?;
    if meta.is_file() && meta.len() > MAX_BOARD_FILE {
        return Err(too_large(file, meta.len(), true));
    }
    let mut bytes = Vec::new();
    f.take(MAX_BOARD_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > MAX_BOARD_FILE {
        return Err(too_large(file, bytes.len() as u64, false));
    }
    Ok(bytes)
}

/// Renders the module tree of a validated board. Deterministic: the same IR and options give
/// the same bytes.
pub fn generate(board: &ir::Board, options: &Options) -> Result<Generation, GenError> {
    let v = &options.version;
    if !v.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~-".contains(c))
    {
        return Err(GenError::Version(v.clone()));
    }
    let files = render::render_targets(board, options)?
        .into_iter()
        .map(|(path, contents)| GeneratedFile { path, contents })
        .collect();
    Ok(Generation { files })
}
