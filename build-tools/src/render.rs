//! Rendering: the IR to the generated module tree.
//!
//! Templates are embedded in the binary, one constant per template id, and see only the IR (as
//! `board`), the heapgen `version` and the `runtime_layers` (the runtime's modules by layer).
//! The environment is strict: an undefined variable is an error, never an empty string.
//! Templates do no arithmetic; the typed filters below format values.

use minijinja::value::Serde;
use minijinja::{context, Environment, Error, ErrorKind, UndefinedBehavior, Value};

use crate::GenError;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ir::{Arch, Board};
use crate::kmi::KmiSymbols;
use crate::runtime;
use crate::{Options, Target};

/// A template id and its embedded source.
#[derive(Clone, Copy, Debug)]
pub struct Template {
    /// The template's file name under `templates/`.
    pub id: &'static str,
    /// Its source.
    pub source: &'static str,
}

macro_rules! template {
    ($id:literal) => {
        Template {
            id: $id,
            source: include_str!(concat!("../../templates/", $id)),
        }
    };
}

/// `Kbuild`.
pub const KBUILD: Template = template!("Kbuild.j2");
/// `Makefile`.
pub const MAKEFILE: Template = template!("Makefile.j2");
/// `<module>_main.rs`, the crate root.
pub const MODULE_MAIN: Template = template!("module_main.rs.j2");
/// `99-<board>-heaps.rules`, udev permissions.
pub const UDEV_RULES: Template = template!("udev.rules.j2");
/// `ueventd.<board>.rc`, Android ueventd permissions.
pub const UEVENTD: Template = template!("ueventd.rc.j2");
/// `<board>-heaps.rst`, the board's documentation page.
pub const BOARD_RST: Template = template!("board.rst.j2");
/// `reserved-memory.dtsi`, device-tree reserved-memory nodes.
pub const RESERVED_DTSI: Template = template!("reserved-memory.dtsi.j2");

/// `yocto/recipes-kernel/<board>-heaps/<board>-heaps_<version>.bb`, the module recipe.
pub const YOCTO_MODULE: Template = template!("yocto-module.bb.j2");
/// `yocto/recipes-devtools/heapgen/heapgen-native_<version>.bb`, the host tool recipe.
pub const YOCTO_HEAPGEN: Template = template!("yocto-heapgen.bb.j2");
/// `yocto/recipes-devtools/heapgen/heapgen-crates.inc`, the crates of heapgen's Cargo.lock.
pub const YOCTO_HEAPGEN_CRATES: Template = template!("yocto-heapgen-crates.inc.j2");
/// `yocto/conf/layer.conf`.
pub const YOCTO_LAYER_CONF: Template = template!("yocto-layer.conf.j2");
/// `buildroot/external.desc`.
pub const BR_EXTERNAL_DESC: Template = template!("buildroot-external.desc.j2");
/// `buildroot/Config.in`.
pub const BR_EXTERNAL_CONFIG: Template = template!("buildroot-external-Config.in.j2");
/// `buildroot/external.mk`.
pub const BR_EXTERNAL_MK: Template = template!("buildroot-external.mk.j2");
/// `buildroot/package/<board>-heaps/Config.in`.
pub const BR_PACKAGE_CONFIG: Template = template!("buildroot-package-Config.in.j2");
/// `buildroot/package/<board>-heaps/<board>-heaps.mk`.
pub const BR_PACKAGE_MK: Template = template!("buildroot-package.mk.j2");
/// `buildroot/package/<board>-heaps/<board>-heaps.hash`.
pub const BR_PACKAGE_HASH: Template = template!("buildroot-package.hash.j2");
/// `buildroot/package/heapgen-rust-src/heapgen-rust-src.mk`, the Rust library sources the
/// kernel's Rust support needs (`RUST_LIB_SRC`), which Buildroot's Rust packages do not install.
pub const BR_RUST_SRC_MK: Template = template!("buildroot-rust-src.mk.j2");
/// `yocto/README.md`.
pub const YOCTO_README: Template = template!("yocto-README.md.j2");
/// `yocto/SECURITY.md`.
pub const YOCTO_SECURITY: Template = template!("yocto-SECURITY.md.j2");
/// `BUILD.bazel`, the Kleaf `ddk_module`.
pub const BUILD_BAZEL: Template = template!("BUILD.bazel.j2");
/// `android/sepolicy/<module>.te`, the heap device types.
pub const SEPOLICY_TE: Template = template!("sepolicy.te.j2");
/// `android/sepolicy/file_contexts`, the heap device labels.
pub const FILE_CONTEXTS: Template = template!("file_contexts.j2");
/// `android/abi_gki_<arch>_<module>`, the KMI symbol list fragment.
pub const ABI_SYMBOL_LIST: Template = template!("abi_symbol_list.j2");
/// `<board>-heaps.config`, the kernel options the module needs (a kconfig fragment).
pub const KERNEL_CONFIG: Template = template!("kernel.config.j2");
/// `test/heaps.conf`, the board's heaps for the test suite's runner.
pub const HEAPS_CONF: Template = template!("heaps.conf.j2");
/// `test/Makefile`, which builds and installs the test suite.
pub const TEST_MAKEFILE: Template = template!("test-Makefile.j2");
/// `test/run-ptest`, Yocto's ptest entry point.
pub const RUN_PTEST: Template = template!("run-ptest.j2");

/// The directory of the test suite in a generated tree.
pub const TEST_DIR: &str = "test";

/// Every template, in a fixed order.
pub const TEMPLATES: &[Template] = &[
    KBUILD,
    MAKEFILE,
    MODULE_MAIN,
    KERNEL_CONFIG,
    UDEV_RULES,
    UEVENTD,
    BOARD_RST,
    RESERVED_DTSI,
    YOCTO_MODULE,
    YOCTO_HEAPGEN,
    YOCTO_HEAPGEN_CRATES,
    YOCTO_LAYER_CONF,
    BR_EXTERNAL_DESC,
    BR_EXTERNAL_CONFIG,
    BR_EXTERNAL_MK,
    BR_PACKAGE_CONFIG,
    BR_PACKAGE_MK,
    BR_PACKAGE_HASH,
    BR_RUST_SRC_MK,
    YOCTO_README,
    YOCTO_SECURITY,
    BUILD_BAZEL,
    SEPOLICY_TE,
    FILE_CONTEXTS,
    ABI_SYMBOL_LIST,
    HEAPS_CONF,
    TEST_MAKEFILE,
    RUN_PTEST,
];

/// The GNU GPL version 2 (the FSF's text, as Debian's base-files install it), the license of
/// every generated module, shipped in its tree as `COPYING`.
pub const COPYING: &str = include_str!("../../COPYING");

/// heapgen's own `Cargo.lock`, which its Yocto recipe fetches crates by.
pub const CARGO_LOCK: &str = include_str!("../../Cargo.lock");

/// A crates.io package pinned by [`CARGO_LOCK`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LockedCrate {
    /// Crate name.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// sha256 of the `.crate` file.
    pub checksum: String,
}

/// The crates.io packages of a `Cargo.lock`, in its (sorted) order; path dependencies (no
/// checksum) are left out.
pub fn locked_crates(lock: &str) -> Result<Vec<LockedCrate>, GenError> {
    #[derive(serde::Deserialize)]
    struct Package {
        name: String,
        version: String,
        source: Option<String>,
        checksum: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Lock {
        package: Vec<Package>,
    }
    let lock: Lock = toml::from_str(lock).map_err(GenError::CargoLock)?;
    Ok(lock
        .package
        .into_iter()
        .filter(|p| {
            p.source.as_deref().is_some_and(|s| {
                s.starts_with("registry+https://github.com/rust-lang/crates.io-index")
            })
        })
        .filter_map(|p| {
            Some(LockedCrate {
                checksum: p.checksum?,
                name: p.name,
                version: p.version,
            })
        })
        .collect())
}

/// The project's repository (`repository` of the workspace's Cargo.toml), where the build-system
/// recipes fetch heapgen from.
pub const REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

/// A URL as a BitBake git fetcher URL: `https://host/path` -> `git://host/path` (the protocol
/// goes into `;protocol=`).
pub fn bitbake_git_url(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => format!("git://{rest}"),
        None => format!("git://{url}"),
    }
}

/// The Kleaf `kernel_build` a board's module is built against: the GKI build of its
/// architecture and page size (`kernel_aarch64_16k` for 16 KiB pages).
pub fn kleaf_kernel_build(board: &Board) -> &'static str {
    match (board.arch, board.page_size) {
        (Arch::Arm64, 0x4000) => "@kleaf//common:kernel_aarch64_16k",
        (Arch::Arm64, 0x10000) => "@kleaf//common:kernel_aarch64_64k",
        (Arch::Arm64, _) => "@kleaf//common:kernel_aarch64",
        (Arch::X86_64, _) => "@kleaf//common:kernel_x86_64",
    }
}

/// The path of the KMI symbol list fragment: `android/abi_gki_<arch>_<module>`, after the
/// kernel's `android/abi_gki_aarch64_<vendor>` lists.
pub fn kmi_symbol_list_path(board: &Board) -> String {
    let arch = match board.arch {
        Arch::Arm64 => "aarch64",
        Arch::X86_64 => "x86_64",
    };
    format!("android/abi_gki_{arch}_{}", board.module)
}

/// MD5 of `data`, lower-case hex (what BitBake's `LIC_FILES_CHKSUM` takes).
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Md5;
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `0x` + lower-case hex: `4096` -> `0x1000`.
pub fn hex(value: u64) -> String {
    format!("{value:#x}")
}

/// A Rust (and C) identifier: characters outside `[A-Za-z0-9_]` become `_`, a leading digit gets
/// a `_` prefix.
pub fn rust_ident(value: &str) -> String {
    let mut s = crate::validate::ident(value);
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// A double-quoted C string literal, escaped.
pub fn c_str(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// Free text (the board description) for the inside of a double-quoted BitBake value.
///
/// BitBake has no escapes in values: it takes everything between the first and the last quote
/// of the line, refuses a value with exactly one `"` inside, and expands `${VAR}` and runs
/// `${@python}` when the variable is read. So a `"` becomes `'` and a `${` becomes `$ {`; the
/// validator has already refused line breaks.
pub fn bitbake_text(value: &str) -> String {
    value.replace('"', "'").replace("${", "$ {")
}

/// Free text (the board description) for a paragraph of reStructuredText: the characters that
/// start or end inline markup (`*`, `` ` ``, `_`, `|`) and the backslash are escaped with a
/// backslash, so the text reads as written.
pub fn rst_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '*' | '`' | '_' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text for the inside of a C-style `/* */` comment (the device tree's): `*/` would end the
/// comment, so it becomes `* /`.
pub fn c_comment(value: &str) -> String {
    value.replace("*/", "* /")
}

/// A value inside an HTML (and Markdown) comment: `--` cannot appear in one (`-->` would end
/// it), so every `--` becomes `- -`.
pub fn html_comment(value: &str) -> String {
    let mut out = value.to_string();
    while out.contains("--") {
        out = out.replace("--", "- -");
    }
    out
}

/// A Markdown code span showing `value` as written: fenced with one backtick more than the
/// longest run of backticks in it, and padded with a space when it starts or ends with one
/// (CommonMark's rules), so no value can end the span early.
pub fn md_code(value: &str) -> String {
    let longest = value.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if value.starts_with('`') || value.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{value}{pad}{fence}")
}

/// Free text (the maintainer) for Markdown: the characters that start inline markup, links or
/// HTML (`` \ ` * _ [ ] < > ! & ~ | ``) are escaped with a backslash, and so is what would make
/// the start of the text a block marker (a leading punctuation character, the `.` or `)` after
/// leading digits), so the text reads as written.
pub fn md_text(value: &str) -> String {
    let digits = value.len() - value.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let mut out = String::with_capacity(value.len() + 8);
    for (i, c) in value.char_indices() {
        let block_marker = (i == 0 && c.is_ascii_punctuation())
            || (i == digits && digits > 0 && (c == '.' || c == ')'));
        if block_marker || "\\`*_[]<>!&~|".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Kconfig help text as Buildroot writes it: paragraphs (separated by blank lines) re-flowed
/// to lines of at most 62 characters after a tab and two spaces (`check-package`'s rule), a
/// word longer than that on a line of its own.
pub fn kconfig_help(text: &str) -> String {
    const WIDTH: usize = 62;
    let mut out = String::new();
    for (n, paragraph) in text.trim().split("\n\n").enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > WIDTH {
                out.push_str("\t  ");
                out.push_str(&line);
                out.push('\n');
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            out.push_str("\t  ");
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// Two 32-bit device-tree cells of a 64-bit value: `0x1_2000_0000` -> `0x1 0x20000000`.
pub fn dt_cells(value: u64) -> String {
    format!("{:#x} {:#x}", value >> 32, value & 0xffff_ffff)
}

/// An rst title underline: `ch` repeated as many times as `title` has characters.
pub fn underline(title: &str, ch: &str) -> String {
    ch.repeat(title.chars().count())
}

/// Human size with IEC units (`64 MiB`).
pub fn iec(value: u64) -> String {
    crate::size::format_size_iec(value)
}

/// An address with `_` separators (`0x9000_0000`).
pub fn addr(value: u64) -> String {
    crate::size::format_addr(value)
}

fn u64_arg(value: &Value, filter: &str) -> Result<u64, Error> {
    u64::try_from(value.clone()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("`{filter}` takes an unsigned integer, got {value}"),
        )
    })
}

/// The template environment: strict, with heapgen's whitespace rules and filters, every template
/// loaded.
pub fn environment() -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()?,
    );
    env.add_filter("hex", |v: Value| u64_arg(&v, "hex").map(hex));
    env.add_filter("dt_cells", |v: Value| u64_arg(&v, "dt_cells").map(dt_cells));
    env.add_filter("iec", |v: Value| u64_arg(&v, "iec").map(iec));
    env.add_filter("size", |v: Value| {
        u64_arg(&v, "size").map(crate::size::format_size)
    });
    env.add_filter("addr", |v: Value| u64_arg(&v, "addr").map(addr));
    env.add_filter("underline", |v: String, ch: String| underline(&v, &ch));
    env.add_filter("rust_ident", |v: String| rust_ident(&v));
    env.add_filter("c_str", |v: String| c_str(&v));
    env.add_filter("bitbake_text", |v: String| bitbake_text(&v));
    env.add_filter("rst_text", |v: String| rst_text(&v));
    env.add_filter("c_comment", |v: String| c_comment(&v));
    env.add_filter("html_comment", |v: String| html_comment(&v));
    env.add_filter("kconfig_help", |v: String| kconfig_help(&v));
    env.add_filter("md_code", |v: String| md_code(&v));
    env.add_filter("md_text", |v: String| md_text(&v));
    for t in TEMPLATES {
        env.add_template(t.id, t.source)?;
    }
    Ok(env)
}

/// The template environment and the crates of heapgen's `Cargo.lock`, made once per process:
/// they are the same for every board, and compiling the templates costs more than rendering
/// them (a fuzzer or a build system generating many boards pays it once).
fn shared() -> Result<&'static (Environment<'static>, Vec<LockedCrate>), GenError> {
    static SHARED: std::sync::OnceLock<(Environment<'static>, Vec<LockedCrate>)> =
        std::sync::OnceLock::new();
    if let Some(shared) = SHARED.get() {
        return Ok(shared);
    }
    // Only success is kept: a failure is a bug in heapgen, reported each time.
    let env = environment().map_err(GenError::Environment)?;
    let crates = locked_crates(CARGO_LOCK)?;
    Ok(SHARED.get_or_init(|| (env, crates)))
}

/// Lower-case hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `@generated` line, without comment markers.
pub fn generated_line(version: &str, source: &str) -> String {
    format!("@generated by heapgen {version} from {source}; do not edit.")
}

/// A runtime file with the `@generated` header inserted after its first (SPDX) line.
pub fn runtime_file_contents(file: &runtime::RuntimeFile, version: &str) -> String {
    with_generated_header(file.name, file.source, file.contents, version)
}

/// A file of the test suite with the `@generated` header inserted after its SPDX line.
pub fn test_file_contents(file: &crate::testsuite::TestFile, version: &str) -> String {
    with_generated_header(file.name, file.source, file.contents, version)
}

/// `contents` (the file `name`, copied from `source`) with the `@generated` header, as a
/// comment of the file's language, inserted after its SPDX line: the first line, or the
/// second after a `#!` line.
fn with_generated_header(name: &str, source: &str, contents: &str, version: &str) -> String {
    let line = generated_line(version, source);
    let (header, spdx_lines) = if name.ends_with(".c") || name.ends_with(".h") {
        (format!("/* {line} */\n"), 1)
    } else if contents.starts_with("#!") {
        (format!("# {line}\n"), 2)
    } else {
        (format!("// {line}\n"), 1)
    };
    let mut head = String::new();
    let mut rest = contents;
    for _ in 0..spdx_lines {
        match rest.split_once('\n') {
            Some((first, after)) => {
                head.push_str(first);
                head.push('\n');
                rest = after;
            }
            None => {
                head.push_str(rest);
                head.push('\n');
                rest = "";
            }
        }
    }
    format!("{head}{header}{rest}")
}

#[derive(Serialize)]
struct ManifestFile<'a> {
    path: &'a str,
    sha256: String,
}

#[derive(Serialize)]
struct Manifest<'a> {
    #[serde(rename = "SPDX-License-Identifier")]
    spdx: &'static str,
    generated: String,
    heapgen: &'a str,
    board: &'a str,
    module: &'a str,
    source: &'a str,
    #[serde(rename = "source-sha256")]
    source_sha256: &'a str,
    files: Vec<ManifestFile<'a>>,
}

/// The path of the heapgen recipe's crate list in a generated tree.
pub const YOCTO_CRATES_INC: &str = "yocto/recipes-devtools/heapgen/heapgen-crates.inc";

/// The name of the manifest file in every generated tree.
pub const MANIFEST: &str = "manifest.json";

/// Renders the whole tree with every target, sorted by path, the manifest included.
pub fn render(board: &Board, version: &str) -> Result<Vec<(String, Vec<u8>)>, GenError> {
    render_targets(
        board,
        &Options {
            version: version.to_string(),
            ..Options::default()
        },
    )
}

/// A generated file: its path in the tree and its bytes.
type File = (String, Vec<u8>);

/// The lists of paths the templates show.
struct SourceLists {
    /// What the module is built from (the files a build system needs).
    module_sources: Vec<String>,
    /// The board file with its hooks (for regenerating the module at build time).
    board_sources: Vec<String>,
    /// The test suite (`test/`): the copied sources and the rendered files.
    test_sources: Vec<String>,
    /// The sources of Kleaf's `ddk_module`.
    bazel_srcs: Vec<String>,
    /// The files `BUILD.bazel` exports.
    bazel_exports: Vec<String>,
}

fn source_lists(board: &Board) -> SourceLists {
    let main_rs = format!("{}_main.rs", board.module);
    let mut bazel_srcs: Vec<String> = runtime::FILES
        .iter()
        .map(|f| f.name.to_string())
        .chain([main_rs])
        .chain(board.hook_files.iter().map(|h| h.path.clone()))
        .collect();
    bazel_srcs.sort();
    let mut bazel_exports = vec![
        format!("99-{}-heaps.rules", board.name),
        format!("android/sepolicy/{}.te", board.module),
        "android/sepolicy/file_contexts".to_string(),
        format!("ueventd.{}.rc", board.name),
        kmi_symbol_list_path(board),
    ];
    bazel_exports.sort();
    let mut module_sources: Vec<String> = [
        "COPYING".to_string(),
        "Kbuild".to_string(),
        "Makefile".to_string(),
        format!("{}_main.rs", board.module),
        format!("99-{}-heaps.rules", board.name),
    ]
    .into_iter()
    .chain(runtime::FILES.iter().map(|f| f.name.to_string()))
    .chain(board.hook_files.iter().map(|h| h.path.clone()))
    .collect();
    module_sources.sort();
    let mut board_sources: Vec<String> = std::iter::once(board.source_file.clone())
        .chain(board.hook_files.iter().map(|h| h.source.clone()))
        .collect();
    board_sources.sort();
    board_sources.dedup();
    let mut test_sources: Vec<String> = crate::testsuite::FILES
        .iter()
        .map(|f| f.name.to_string())
        .chain(["Makefile", "heaps.conf", "run-ptest"].map(String::from))
        .collect();
    test_sources.sort();
    SourceLists {
        module_sources,
        board_sources,
        test_sources,
        bazel_srcs,
        bazel_exports,
    }
}

/// Renders templates with one context.
struct Renderer<'a> {
    env: &'a Environment<'static>,
    ctx: Value,
}

impl Renderer<'_> {
    fn render(&self, t: &Template) -> Result<Vec<u8>, GenError> {
        let template = |source| GenError::Template { name: t.id, source };
        Ok(self
            .env
            .get_template(t.id)
            .map_err(template)?
            .render(&self.ctx)
            .map_err(template)?
            .into_bytes())
    }
}

/// The context every template sees.
fn context(board: &Board, options: &Options, lists: &SourceLists, crates: &[LockedCrate]) -> Value {
    let kmi: KmiSymbols = options
        .kmi_symbols
        .clone()
        .unwrap_or_else(|| crate::kmi::known_symbols(board.arch, &board.module));
    let runtime_layers: Vec<(&str, Vec<&str>)> = [
        ("Shim", runtime::Layer::Shim),
        ("Support", runtime::Layer::Support),
        ("Wrapper", runtime::Layer::Wrapper),
        ("Logic", runtime::Layer::Logic),
    ]
    .into_iter()
    .map(|(name, layer)| (name, runtime::rust_modules_of(layer)))
    .collect();
    context! {
        board => Value::from(Serde(board)),
        module_sources => &lists.module_sources,
        board_sources => &lists.board_sources,
        copying_md5 => md5_hex(COPYING.as_bytes()),
        copying_sha256 => sha256_hex(COPYING.as_bytes()),
        version => options.version.as_str(),
        runtime_layers => runtime_layers,
        repository => REPOSITORY,
        repository_git => bitbake_git_url(REPOSITORY),
        kmi => Value::from(Serde(&kmi)),
        kmi_path => kmi_symbol_list_path(board),
        bazel_srcs => &lists.bazel_srcs,
        bazel_exports => &lists.bazel_exports,
        kernel_build => kleaf_kernel_build(board),
        crates => Value::from(Serde(crates)),
        test_programs => Value::from(Serde(crate::testsuite::programs())),
        test_sources => &lists.test_sources,
    }
}

/// The module's own files: everything but the build systems' trees and the manifest.
fn module_files(board: &Board, version: &str, r: &Renderer<'_>) -> Result<Vec<File>, GenError> {
    let mut files: Vec<File> = vec![
        ("COPYING".into(), COPYING.as_bytes().to_vec()),
        ("Kbuild".into(), r.render(&KBUILD)?),
        ("Makefile".into(), r.render(&MAKEFILE)?),
        (format!("{}_main.rs", board.module), r.render(&MODULE_MAIN)?),
        (
            format!("99-{}-heaps.rules", board.name),
            r.render(&UDEV_RULES)?,
        ),
        (format!("ueventd.{}.rc", board.name), r.render(&UEVENTD)?),
        (format!("{}-heaps.rst", board.name), r.render(&BOARD_RST)?),
        (
            format!("{}-heaps.config", board.name),
            r.render(&KERNEL_CONFIG)?,
        ),
    ];
    if !board.reserved.is_empty() {
        files.push(("reserved-memory.dtsi".into(), r.render(&RESERVED_DTSI)?));
    }
    files.extend([
        (format!("{TEST_DIR}/heaps.conf"), r.render(&HEAPS_CONF)?),
        (format!("{TEST_DIR}/Makefile"), r.render(&TEST_MAKEFILE)?),
        (format!("{TEST_DIR}/run-ptest"), r.render(&RUN_PTEST)?),
    ]);
    for f in crate::testsuite::FILES {
        files.push((
            format!("{TEST_DIR}/{}", f.name),
            test_file_contents(f, version).into_bytes(),
        ));
    }
    for f in runtime::FILES {
        files.push((
            f.name.to_string(),
            runtime_file_contents(f, version).into_bytes(),
        ));
    }
    // Hook files verbatim (no header): a compile error in one points at its own lines.
    for h in &board.hook_files {
        files.push((h.path.clone(), h.contents.clone()));
    }
    Ok(files)
}

/// The files of one build system's tree. The trees carry copies of the module's sources
/// (`files`), so that they build without fetching heapgen or anything else.
fn target_files(
    target: Target,
    board: &Board,
    version: &str,
    r: &Renderer<'_>,
    files: &[File],
    module_sources: &[String],
) -> Result<Vec<File>, GenError> {
    let config_fragment = format!("{}-heaps.config", board.name);
    let copies = |prefix: &str| -> Vec<File> {
        files
            .iter()
            .filter(|(p, _)| {
                module_sources.contains(p)
                    || *p == config_fragment
                    || p.strip_prefix(TEST_DIR)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .map(|(p, c)| (format!("{prefix}/{p}"), c.clone()))
            .collect()
    };
    let pkg = format!("{}-heaps", board.name);
    let mut extra = Vec::new();
    match target {
        Target::Yocto => {
            let recipe = format!("yocto/recipes-kernel/{pkg}");
            extra.extend([
                ("yocto/README.md".into(), r.render(&YOCTO_README)?),
                ("yocto/SECURITY.md".into(), r.render(&YOCTO_SECURITY)?),
                ("yocto/conf/layer.conf".into(), r.render(&YOCTO_LAYER_CONF)?),
                (
                    format!("{recipe}/{pkg}_{version}.bb"),
                    r.render(&YOCTO_MODULE)?,
                ),
                (
                    format!("yocto/recipes-devtools/heapgen/heapgen-native_{version}.bb"),
                    r.render(&YOCTO_HEAPGEN)?,
                ),
                (
                    YOCTO_CRATES_INC.to_string(),
                    r.render(&YOCTO_HEAPGEN_CRATES)?,
                ),
                (
                    format!("{recipe}/files/board/{}", board.source_file),
                    board.source_contents.clone(),
                ),
            ]);
            extra.extend(copies(&format!("{recipe}/files")));
            for h in &board.hook_files {
                extra.push((
                    format!("{recipe}/files/board/{}", h.source),
                    h.contents.clone(),
                ));
            }
        }
        Target::Buildroot => {
            let dir = format!("buildroot/package/{pkg}");
            extra.extend([
                (
                    "buildroot/external.desc".into(),
                    r.render(&BR_EXTERNAL_DESC)?,
                ),
                ("buildroot/Config.in".into(), r.render(&BR_EXTERNAL_CONFIG)?),
                ("buildroot/external.mk".into(), r.render(&BR_EXTERNAL_MK)?),
                (format!("{dir}/Config.in"), r.render(&BR_PACKAGE_CONFIG)?),
                (format!("{dir}/{pkg}.mk"), r.render(&BR_PACKAGE_MK)?),
                (format!("{dir}/{pkg}.hash"), r.render(&BR_PACKAGE_HASH)?),
                (
                    "buildroot/package/heapgen-rust-src/heapgen-rust-src.mk".into(),
                    r.render(&BR_RUST_SRC_MK)?,
                ),
            ]);
            extra.extend(copies(&format!("{dir}/src")));
        }
        Target::Android => extra.extend([
            ("BUILD.bazel".into(), r.render(&BUILD_BAZEL)?),
            (
                format!("android/sepolicy/{}.te", board.module),
                r.render(&SEPOLICY_TE)?,
            ),
            (
                "android/sepolicy/file_contexts".into(),
                r.render(&FILE_CONTEXTS)?,
            ),
            (kmi_symbol_list_path(board), r.render(&ABI_SYMBOL_LIST)?),
        ]),
    }
    Ok(extra)
}

/// The manifest of `files`: the heapgen version, the board file and every file's sha256.
fn manifest(board: &Board, version: &str, files: &[File]) -> Result<File, GenError> {
    let manifest = Manifest {
        spdx: "GPL-2.0",
        generated: generated_line(version, &board.source),
        heapgen: version,
        board: &board.name,
        module: &board.module,
        source: &board.source,
        source_sha256: &board.source_sha256,
        files: files
            .iter()
            .map(|(p, c)| ManifestFile {
                path: p,
                sha256: sha256_hex(c),
            })
            .collect(),
    };
    let mut json = serde_json::to_string_pretty(&manifest).map_err(GenError::Manifest)?;
    json.push('\n');
    Ok((MANIFEST.to_string(), json.into_bytes()))
}

/// Renders the tree `options` ask for, sorted by path, the manifest included.
pub fn render_targets(board: &Board, options: &Options) -> Result<Vec<File>, GenError> {
    let version = options.version.as_str();
    let (env, crates) = shared()?;
    let lists = source_lists(board);
    let r = Renderer {
        env,
        ctx: context(board, options, &lists, crates),
    };
    let mut files = module_files(board, version, &r)?;
    let mut extra = Vec::new();
    for target in &options.targets {
        extra.extend(target_files(
            *target,
            board,
            version,
            &r,
            &files,
            &lists.module_sources,
        )?);
    }
    files.extend(extra);
    files.sort();
    if let Some(w) = files.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(GenError::DuplicatePath(w[0].0.clone()));
    }
    files.push(manifest(board, version, &files)?);
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_loads() {
        let env = environment().unwrap();
        for t in TEMPLATES {
            assert!(env.get_template(t.id).is_ok(), "{}", t.id);
            assert!(t.id.ends_with(".j2"));
        }
    }

    #[test]
    fn filters_format_values() {
        assert_eq!(hex(4096), "0x1000");
        assert_eq!(hex(0), "0x0");
        assert_eq!(rust_ident("video-in"), "video_in");
        assert_eq!(rust_ident("3d"), "_3d");
        assert_eq!(c_str("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(c_str("é"), "\"\\xc3\\xa9\"");
        assert_eq!(dt_cells(0x1_2000_0000), "0x1 0x20000000");
        assert_eq!(
            bitbake_text("a \"b\" ${@x} ${Y} $5"),
            "a 'b' $ {@x} $ {Y} $5"
        );
        assert_eq!(bitbake_text("$${"), "$$ {");
        assert_eq!(
            rst_text("*a* `b` c_ |d| \\"),
            "\\*a\\* \\`b\\` c\\_ \\|d\\| \\\\"
        );
        assert_eq!(c_comment("a/*/b*/c**/"), "a/* /b* /c** /");
    }

    #[test]
    fn filters_run_in_templates() {
        let env = environment().unwrap();
        let out = env
            .render_str(
                "{{ 4096 | hex }} {{ 'a-b' | rust_ident }} {{ 'x' | c_str }}",
                (),
            )
            .unwrap();
        assert_eq!(out, "0x1000 a_b \"x\"");
    }

    #[test]
    fn undefined_variables_are_errors() {
        let env = environment().unwrap();
        assert!(env.render_str("{{ nope }}", ()).is_err());
    }

    #[test]
    fn runtime_header_follows_the_spdx_line() {
        let f = runtime::RuntimeFile {
            name: "x.c",
            layer: runtime::Layer::Shim,
            source: "heaps/runtime/x.c",
            contents: "// SPDX-License-Identifier: GPL-2.0\nint x;\n",
        };
        assert_eq!(
            runtime_file_contents(&f, "1.0"),
            "// SPDX-License-Identifier: GPL-2.0\n/* @generated by heapgen 1.0 from heaps/runtime/x.c; do not edit. */\nint x;\n"
        );
    }
}
