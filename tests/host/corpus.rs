// SPDX-License-Identifier: GPL-2.0

//! The corpus of broken board files: each `tests/corpus/NAME.toml` must make `heapgen check`
//! exit 78 with exactly the diagnostics of `NAME.stderr` (file:line:col and rule names), name
//! the rule its first line announces, and make `heapgen generate` write nothing.

use std::path::PathBuf;

use crate::support::{compare, heapgen, root};

const EX_CONFIG: i32 = 78;

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/corpus"))
        .expect("tests/corpus exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

fn announced_rule(text: &str) -> &str {
    let first = text.lines().next().unwrap_or_default();
    first
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("first line must announce the rule: {first}"))
}

#[test]
fn corpus_has_at_least_40_distinct_cases() {
    let cases = cases();
    assert!(cases.len() >= 40, "only {} corpus cases", cases.len());
    let mut texts: Vec<String> = cases
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("readable"))
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), cases.len(), "two corpus cases are identical");
}

#[test]
fn every_broken_board_is_diagnosed_with_its_rule_and_position() {
    let root = root();
    let mut failures = Vec::new();
    for case in cases() {
        let name = case
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let rel = format!("tests/corpus/{name}.toml");
        let text = std::fs::read_to_string(&case).expect("readable");
        let out = heapgen(&root, &["check", &rel]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.code() != Some(EX_CONFIG) {
            failures.push(format!(
                "{name}: exit {:?}, expected {EX_CONFIG}\n{stderr}",
                out.status.code()
            ));
            continue;
        }
        let rule = announced_rule(&text);
        if !stderr.contains(&format!("error[{rule}]")) {
            failures.push(format!("{name}: rule `{rule}` not reported\n{stderr}"));
        }
        if !stderr.contains(&format!("{rel}:")) || !stderr.contains("^") {
            failures.push(format!("{name}: no file:line:col or caret\n{stderr}"));
        }
        if stderr.contains('\u{1b}') {
            failures.push(format!("{name}: colour on a non-terminal stderr"));
        }
        if let Some(c) = stderr.chars().find(|&c| c.is_control() && c != '\n') {
            failures.push(format!(
                "{name}: control character {} on stderr",
                c.escape_unicode()
            ));
        }
        if let Some(diff) = compare(&case.with_extension("stderr"), stderr.as_bytes()) {
            failures.push(diff);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn no_broken_board_leaves_an_output_directory() {
    let root = root();
    for case in cases() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("out");
        let existing = tmp.path().join("existing");
        std::fs::create_dir(&existing).expect("mkdir");
        std::fs::write(existing.join("keep"), "keep").expect("write");
        let case_str = case.to_string_lossy().into_owned();
        for target in [&out, &existing] {
            let r = heapgen(
                &root,
                &["generate", &case_str, "--out", &target.to_string_lossy()],
            );
            assert_eq!(r.status.code(), Some(EX_CONFIG), "{}", case.display());
        }
        assert!(
            !out.exists(),
            "{}: output directory created",
            case.display()
        );
        let names: Vec<_> = std::fs::read_dir(tmp.path()).expect("readable").collect();
        assert_eq!(
            names.len(),
            1,
            "{}: something was left next to the output",
            case.display()
        );
        let kept: Vec<_> = std::fs::read_dir(&existing).expect("readable").collect();
        assert_eq!(kept.len(), 1, "{}: existing output touched", case.display());
        assert_eq!(
            std::fs::read_to_string(existing.join("keep")).expect("kept"),
            "keep"
        );
    }
}
