//! Rendering: the IR to the generated module tree.
//!
//! Templates are embedded in the binary, one constant per template id, and see only the IR (as
//! `board`), the heapgen `version` and the `runtime_modules`. The environment is strict: an
//! undefined variable is an error, never an empty string. Templates do no arithmetic; the typed
//! filters below format values.

use minijinja::value::Serde;
use minijinja::{context, Environment, Error, ErrorKind, UndefinedBehavior, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ir::Board;
use crate::runtime;

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

/// Every template, in a fixed order.
pub const TEMPLATES: &[Template] = &[
    KBUILD,
    MAKEFILE,
    MODULE_MAIN,
    UDEV_RULES,
    UEVENTD,
    BOARD_RST,
    RESERVED_DTSI,
];

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
    env.add_filter("addr", |v: Value| u64_arg(&v, "addr").map(addr));
    env.add_filter("underline", |v: String, ch: String| underline(&v, &ch));
    env.add_filter("rust_ident", |v: String| rust_ident(&v));
    env.add_filter("c_str", |v: String| c_str(&v));
    for t in TEMPLATES {
        env.add_template(t.id, t.source)?;
    }
    Ok(env)
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
    let line = generated_line(version, file.source);
    let header = if file.name.ends_with(".c") || file.name.ends_with(".h") {
        format!("/* {line} */\n")
    } else {
        format!("// {line}\n")
    };
    match file.contents.split_once('\n') {
        Some((first, rest)) => format!("{first}\n{header}{rest}"),
        None => format!("{}\n{header}", file.contents),
    }
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

/// The name of the manifest file in every generated tree.
pub const MANIFEST: &str = "manifest.json";

/// Renders the whole tree, sorted by path, the manifest included.
pub fn render(board: &Board, version: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let env = environment()?;
    let runtime_modules: Vec<&str> = runtime::rust_modules().collect();
    let ctx = context! {
        board => Value::from(Serde(board)),
        version => version,
        runtime_modules => runtime_modules,
    };
    let render = |t: &Template| -> Result<Vec<u8>, Error> {
        Ok(env.get_template(t.id)?.render(&ctx)?.into_bytes())
    };
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("Kbuild".into(), render(&KBUILD)?),
        ("Makefile".into(), render(&MAKEFILE)?),
        (format!("{}_main.rs", board.module), render(&MODULE_MAIN)?),
        (
            format!("99-{}-heaps.rules", board.name),
            render(&UDEV_RULES)?,
        ),
        (format!("ueventd.{}.rc", board.name), render(&UEVENTD)?),
        (format!("{}-heaps.rst", board.name), render(&BOARD_RST)?),
    ];
    if !board.reserved.is_empty() {
        files.push(("reserved-memory.dtsi".into(), render(&RESERVED_DTSI)?));
    }
    for f in runtime::FILES {
        files.push((
            f.name.to_string(),
            runtime_file_contents(f, version).into_bytes(),
        ));
    }
    files.sort();
    if let Some(w) = files.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("two generated files are named `{}`", w[0].0),
        ));
    }
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
    let mut json = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    json.push('\n');
    files.push((MANIFEST.to_string(), json.into_bytes()));
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
            source: "heaps/runtime/x.c",
            contents: "// SPDX-License-Identifier: GPL-2.0\nint x;\n",
        };
        assert_eq!(
            runtime_file_contents(&f, "1.0"),
            "// SPDX-License-Identifier: GPL-2.0\n/* @generated by heapgen 1.0 from heaps/runtime/x.c; do not edit. */\nint x;\n"
        );
    }
}
