// SPDX-License-Identifier: GPL-2.0

//! Values from the board file in generated files: refused when they cannot be meaningful
//! there (control and bidirectional characters, board file names a recipe cannot carry).

use crate::support::heapgen_bounded;

/// A valid x86_64 board with `description`.
fn x86(description: &str) -> String {
    format!(
        "schema-version = 1\n[board]\nname = \"b\"\narch = \"x86_64\"\ndescription = {}\n\
         [[region]]\nname = \"r\"\ncma = \"reserved\"\nheap = \"h\"\n",
        toml::Value::String(description.to_string())
    )
}

fn generate(source: &str, text: &str) -> heapgen::Generation {
    let board =
        heapgen::load_str("b.toml", source, text.as_bytes()).unwrap_or_else(|d| panic!("{d}"));
    heapgen::generate(&board, &heapgen::Options::default()).expect("generates")
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
        let d = heapgen::load_str("b.toml", name, x86("d").as_bytes()).unwrap_err();
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
        let d = heapgen::load_str("b.toml", name, x86("d").as_bytes()).unwrap_err();
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
        let d = heapgen::load_str("b.toml", "b.toml", x86(desc).as_bytes()).unwrap_err();
        assert_eq!(d.rules(), ["board-description"], "{desc:?}");
    }
}
