// SPDX-License-Identifier: GPL-2.0

//! The generated udev rules: valid udev(7) syntax, and for every heap node of every board
//! exactly one rule with the board file's mode, owner and group; and for every heap upstream's
//! CMA heap makes over the board's areas one rule closing it (mode 0000, root).

use crate::support::{boards, root};
use crate::udev_grammar::parse_rule;

#[test]
fn rules_are_valid_and_match_the_board() {
    for board_file in boards() {
        let board = heapgen::load(&board_file).expect("valid board").board;
        let generation =
            heapgen::generate(&board, &heapgen::Options::default()).expect("generates");
        let name = format!("99-{}-heaps.rules", board.name);
        let file = generation
            .files
            .iter()
            .find(|f| f.path == name)
            .unwrap_or_else(|| panic!("{}: no {name}", board_file.display()));
        let text = String::from_utf8(file.contents.clone()).expect("utf-8");
        let mut seen = Vec::new();
        let mut closed = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let pairs =
                parse_rule(line).unwrap_or_else(|e| panic!("{name}:{}: {e}: {line}", n + 1));
            let get = |k: &str| pairs.iter().find(|p| p.key == k).map(|p| p.value.as_str());
            assert_eq!(get("SUBSYSTEM"), Some("dma_heap"), "{name}:{}", n + 1);
            let kernel = get("KERNEL").expect("KERNEL match");
            if board.upstream_heaps.iter().any(|u| u.name == kernel) {
                assert_eq!(get("MODE"), Some("0000"), "{name}: upstream's {kernel}");
                assert_eq!(get("OWNER"), Some("root"), "{name}: upstream's {kernel}");
                assert_eq!(get("GROUP"), Some("root"), "{name}: upstream's {kernel}");
                closed.push(kernel.to_string());
                continue;
            }
            let heap = board
                .heaps
                .iter()
                .find(|h| h.name == kernel)
                .unwrap_or_else(|| panic!("{name}: rule for unknown heap {kernel}"));
            assert_eq!(
                get("MODE"),
                Some(heap.access.mode.as_str()),
                "{name}: {kernel}"
            );
            assert_eq!(
                get("OWNER"),
                Some(heap.access.owner.as_str()),
                "{name}: {kernel}"
            );
            assert_eq!(
                get("GROUP"),
                Some(heap.access.group.as_str()),
                "{name}: {kernel}"
            );
            let mode = u32::from_str_radix(get("MODE").unwrap(), 8).expect("octal mode");
            // Read access allocates: a shipped board gives others nothing.
            assert_eq!(mode & 0o007, 0, "{name}: {kernel} is open to every user");
            seen.push(kernel.to_string());
        }
        let mut expected: Vec<String> = board.heaps.iter().map(|h| h.name.clone()).collect();
        expected.sort();
        seen.sort();
        assert_eq!(seen, expected, "{name}: one rule per heap node");
        let upstream: Vec<String> = board
            .upstream_heaps
            .iter()
            .map(|u| u.name.clone())
            .collect();
        assert_eq!(closed, upstream, "{name}: one rule per upstream heap");
        assert!(!upstream.is_empty(), "{name}: every board has CMA areas");
    }
    assert!(root().join("templates/udev.rules.j2").is_file());
}

#[test]
fn the_parser_rejects_malformed_rules() {
    for bad in [
        r#"SUBSYSTEM=="dma_heap" KERNEL=="x""#,
        r#"SUBSYSTEM=="dma_heap", KERNEL==x"#,
        r#"SUBSYSTEM=="dma_heap", MODE=="0660""#,
        r#"SUBSYSTEM=="dma_heap", KERNEL=="x","#,
        r#"SUBSYSTEM=="dma_heap", FOO="1""#,
    ] {
        assert!(parse_rule(bad).is_err(), "accepted: {bad}");
    }
    assert!(parse_rule(r#"SUBSYSTEM=="dma_heap", KERNEL=="a@1,b", MODE="0660""#).is_ok());
}
