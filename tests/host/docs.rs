// SPDX-License-Identifier: GPL-2.0

//! The schema and its documentation stay in step with the code.

use crate::support::{boards, compare, root};

#[test]
fn checked_in_schema_is_fresh() {
    let path = root().join("Documentation/board-file.schema.json");
    if let Some(diff) = compare(&path, heapgen::schema::schema_json().as_bytes()) {
        panic!("the checked-in schema is stale; run `heapgen schema > Documentation/board-file.schema.json` or HEAPGEN_BLESS=1\n{diff}");
    }
}

#[test]
fn every_schema_key_is_documented() {
    let rst = std::fs::read_to_string(root().join("Documentation/board-file.rst"))
        .expect("board-file.rst");
    let missing: Vec<String> = heapgen::schema::key_paths()
        .into_iter()
        .filter(|path| !rst.contains(&format!("``{path}``")))
        .collect();
    assert!(
        missing.is_empty(),
        "Documentation/board-file.rst does not document {missing:?}"
    );
}

/// The debugfs files a heap publishes (`(c_str!("<name>"), &...)` in the runtime's `publish`
/// functions) and the ABI document's `What:` lines name the same files.
#[test]
fn debugfs_abi_matches_what_the_runtime_publishes() {
    let abi = std::fs::read_to_string(root().join("Documentation/ABI/testing/debugfs-heapgen"))
        .expect("debugfs-heapgen");
    let documented: std::collections::BTreeSet<String> = abi
        .lines()
        .filter_map(|l| l.strip_prefix("What:"))
        .filter_map(|l| l.trim().strip_prefix("/sys/kernel/debug/heapgen/<heap>/"))
        .filter(|name| !name.contains('/'))
        .map(str::to_string)
        .collect();
    let mut published = std::collections::BTreeSet::new();
    for file in ["stats.rs", "pool.rs", "headroom.rs"] {
        let text = std::fs::read_to_string(root().join("heaps/runtime").join(file)).expect(file);
        for piece in text.split("(c_str!(\"").skip(1) {
            let name = piece.split('"').next().unwrap_or_default();
            if piece[name.len()..].starts_with("\"), &") {
                published.insert(name.to_string());
            }
        }
    }
    assert!(published.len() > 20, "found only {published:?}");
    assert_eq!(
        published, documented,
        "heaps/runtime publishes (left) and Documentation/ABI/testing/debugfs-heapgen documents (right) different files"
    );
}

/// Every registered rule is documented in board-file.rst (its name, and the key or section its
/// `docs` names), and every rule the corpus announces is registered.
#[test]
fn every_rule_is_documented() {
    let rst = std::fs::read_to_string(root().join("Documentation/board-file.rst"))
        .expect("board-file.rst");
    let registered: Vec<&str> = heapgen::validate::rules().map(|r| r.name).collect();
    for rule in heapgen::validate::rules() {
        assert!(
            rst.contains(&format!("``{}``", rule.name)),
            "rule {} is not documented in board-file.rst",
            rule.name
        );
        let heading = rst
            .lines()
            .zip(rst.lines().skip(1))
            .any(|(l, next)| l == rule.docs && next.starts_with("==="));
        assert!(
            heading || rst.contains(&format!("``{}``", rule.docs)),
            "rule {} names `{}`, which board-file.rst does not document",
            rule.name,
            rule.docs
        );
    }
    let corpus: Vec<String> = std::fs::read_dir(root().join("tests/corpus"))
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    for text in &corpus {
        if let Some(rule) = text.lines().next().and_then(|l| l.split('`').nth(1)) {
            assert!(
                registered.contains(&rule),
                "corpus rule {rule} is not registered in heapgen::validate::rules()"
            );
        }
    }
}

#[test]
fn every_board_file_points_editors_at_the_schema() {
    for board in boards() {
        let text = std::fs::read_to_string(&board).expect("readable");
        assert_eq!(
            text.lines().next(),
            Some("#:schema ../Documentation/board-file.schema.json"),
            "{}",
            board.display()
        );
    }
}
