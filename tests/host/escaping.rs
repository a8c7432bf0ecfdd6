// SPDX-License-Identifier: GPL-2.0

//! Values from the board file in generated files: refused when they cannot be meaningful
//! there (control and bidirectional characters, board file names a recipe cannot carry), else
//! escaped for the language of the file (the description in BitBake and rst, the board file's
//! path in a device-tree comment).

use std::process::Command;

use crate::support::{heapgen_bounded, root};

/// A valid x86_64 board with `description`.
fn x86(description: &str) -> String {
    format!(
        "schema-version = 1\n[board]\nname = \"b\"\narch = \"x86_64\"\ndescription = {}\n\
         [[region]]\nname = \"r\"\ncma = \"reserved\"\nheap = \"h\"\n",
        toml::Value::String(description.to_string())
    )
}

/// A valid arm64 board reserving memory (so that it has a `reserved-memory.dtsi`).
const ARM_RESERVE: &str = "schema-version = 1\n[board]\nname = \"b\"\narch = \"arm64\"\n\
    [[region]]\nname = \"r\"\ncma = \"r@90000000\"\nheap = \"h\"\n\
    reserve = { base = \"0x9000_0000\", size = \"64M\" }\n";

fn generate(source: &str, text: &str) -> heapgen::Generation {
    let board = heapgen::load(heapgen::Source::bytes("b.toml", text.as_bytes()).named(source))
        .unwrap_or_else(|d| panic!("{d}"))
        .board;
    heapgen::generate(&board, &heapgen::Options::default()).expect("generates")
}

fn file<'g>(g: &'g heapgen::Generation, path: &str) -> &'g str {
    std::str::from_utf8(&g.get(path).unwrap_or_else(|| panic!("no {path}")).contents)
        .expect("utf-8")
}

#[test]
fn a_board_file_name_cannot_add_lines_to_generated_files() {
    for name in [
        "boards/evil\nfn main() {}\n.toml",
        "boards/x\r.toml",
        "boards/\u{1b}[31m/x.toml",
        "boards/x\u{2028}y/b.toml",
        "boards/\u{202e}lave/b.toml",
    ] {
        let d = heapgen::load(heapgen::Source::bytes("b.toml", x86("d").as_bytes()).named(name))
            .unwrap_err();
        assert_eq!(d.rules(), ["source-name"], "{name:?}");
        assert!(!d.render(false).contains('\u{1b}'), "{name:?}");
    }
    // Names a recipe cannot carry: spaces, shell and make syntax.
    for name in [
        "my board.toml",
        "b$(X).toml",
        "b;rm.toml",
        "-b.toml",
        "b'.toml",
        "b\".toml",
    ] {
        let d = heapgen::load(heapgen::Source::bytes("b.toml", x86("d").as_bytes()).named(name))
            .unwrap_err();
        assert_eq!(d.rules(), ["source-name"], "{name:?}");
    }
    // Directories only appear in comments and the manifest.
    generate("vendor boards/acme+evb/b_1.2-x.toml", &x86("d"));
    // Through the command line.
    let tmp = tempfile::tempdir().expect("tempdir");
    let evil = tmp.path().join("evil\nfn main() {}\n.toml");
    std::fs::write(&evil, x86("d")).expect("write");
    let out = heapgen_bounded(tmp.path(), &["check", &evil.to_string_lossy()]).expect("ends");
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[source-name]"));
}

#[test]
fn the_description_refuses_invisible_and_bidirectional_characters() {
    for desc in ["a\u{202e}b", "a\u{2066}b", "a\u{2029}b", "a\u{7f}b", "a\nb"] {
        let d = heapgen::load(heapgen::Source::bytes("b.toml", x86(desc).as_bytes())).unwrap_err();
        assert_eq!(d.rules(), ["board-description"], "{desc:?}");
    }
}

#[test]
fn the_description_cannot_break_out_of_the_bitbake_recipe() {
    let desc = "ACME \"EVB\" ${@bb.utils.exec_flat_python_func('id')} ${HOME} 100$ \\";
    let g = generate("board-configs/b.toml", &x86(desc));
    let bb = file(&g, "yocto/recipes-kernel/b-heaps/b-heaps_0.1.0.bb");
    let line = bb
        .lines()
        .find(|l| l.starts_with("DESCRIPTION = "))
        .expect("DESCRIPTION");
    let value = line
        .strip_prefix("DESCRIPTION = \"")
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("not one quoted value: {line}"));
    assert!(!value.contains('"'), "{line}");
    assert!(!value.contains("${"), "{line}");
    assert!(value.starts_with("ACME 'EVB' $ {@bb.utils"), "{line}");
    assert!(value.contains("100$ \\: one dma-buf heap"), "{line}");
}

#[test]
fn the_description_is_plain_text_in_the_rst_page() {
    let desc = "*ECC* `less` |sub| ref_ [1]_ \\ :role:`x`";
    let g = generate("board-configs/b.toml", &x86(desc));
    let rst = file(&g, "b-heaps.rst");
    assert!(
        rst.contains(r"(\*ECC\* \`less\` \|sub\| ref\_ [1]\_ \\ :role:\`x\`)"),
        "{rst}"
    );
    // docutils reads it without a warning and shows the text as written.
    if Command::new("python3")
        .args(["-c", "import docutils"])
        .status()
        .is_ok_and(|s| s.success())
    {
        let out = crate::support::run_with_stdin(
            "python3",
            &[
                "-c",
                "import sys, docutils.core as c; \
                 c.publish_string(sys.stdin.read(), writer_name='null', \
                 settings_overrides={'report_level': 2, 'halt_level': 2})",
            ],
            rst.as_bytes(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_comment_end_in_the_board_path_keeps_the_dtsi_valid() {
    let g = generate("boards/*/evb.toml", ARM_RESERVE);
    let dtsi = file(&g, "reserved-memory.dtsi");
    for line in dtsi.lines().filter(|l| l.contains("@generated")) {
        assert_eq!(line.matches("*/").count(), 1, "{line}");
        assert!(line.ends_with("*/"), "{line}");
    }
    match crate::support::dtc_fragment(dtsi.as_bytes()) {
        None => println!("note: no dtc binary; the dtsi is not compiled"),
        Some(r) => assert_eq!(r, Ok(())),
    }
    assert!(root().join("templates/reserved-memory.dtsi.j2").is_file());
}

#[test]
fn the_board_path_and_maintainer_stay_text_in_the_yocto_markdown() {
    // A directory name may hold any printable character: `-->` would end the header comment,
    // a backtick the code spans that show the path; a maintainer's name may start Markdown.
    let text = ARM_RESERVE.replace(
        "arch = \"arm64\"\n",
        "arch = \"arm64\"\nmaintainer = \"*Jane* [x](y) <jane@example.com>\"\n",
    );
    let g = generate("boards/a-->b`c/evb.toml", &text);
    for path in ["yocto/README.md", "yocto/SECURITY.md"] {
        let md = file(&g, path);
        let header = md
            .lines()
            .find(|l| l.contains("@generated"))
            .expect("header");
        assert_eq!(
            header,
            "<!-- @generated by heapgen 0.1.0 from boards/a- ->b`c/evb.toml; do not edit. -->"
        );
        assert!(md.contains("``boards/a-->b`c/evb.toml``"), "{md}");
    }
    let readme = file(&g, "yocto/README.md");
    assert!(readme.contains("``heapgen generate boards/a-->b`c/evb.toml --out <dir>``"));
    assert!(
        readme.contains("- \\*Jane\\* \\[x\\](y) \\<jane@example.com\\>\n"),
        "{readme}"
    );
    let rst = file(&g, "b-heaps.rst");
    assert!(
        rst.contains("Maintainer: \\*Jane\\* [x](y) <jane@example.com>."),
        "{rst}"
    );
}

#[test]
fn markdown_code_spans_outlast_any_backticks_in_the_value() {
    use heapgen::render::{md_code, md_text};
    assert_eq!(md_code("a"), "`a`");
    assert_eq!(md_code("a``b"), "```a``b```");
    assert_eq!(md_code("`a"), "`` `a ``");
    assert_eq!(md_text("1. Jane"), "1\\. Jane");
    assert_eq!(md_text("# Jane"), "\\# Jane");
    assert_eq!(md_text("Jane-Doe"), "Jane-Doe");
}

#[test]
fn a_version_that_is_not_a_version_is_refused() {
    let board = heapgen::load(heapgen::Source::bytes("b.toml", x86("d").as_bytes()))
        .expect("valid")
        .board;
    for version in ["1.0\nx", "../../x", "", "1 0", "$(V)"] {
        let options = heapgen::Options {
            version: version.to_string(),
            ..heapgen::Options::default()
        };
        assert!(
            matches!(
                heapgen::generate(&board, &options),
                Err(heapgen::GenError::Version(_))
            ),
            "{version:?}"
        );
    }
}

#[test]
fn kconfig_help_is_wrapped_at_62_columns() {
    let text = format!(
        "The {}.ko kernel module: one dma-buf heap per region.\n\nSecond paragraph.",
        "m".repeat(40)
    );
    let help = heapgen::render::kconfig_help(&text);
    for line in help.lines().filter(|l| !l.is_empty()) {
        let body = line.strip_prefix("\t  ").expect("tab and two spaces");
        assert!(body.chars().count() <= 62, "{line:?}");
    }
    assert_eq!(help.matches("\n\n").count(), 1, "{help}");
}
