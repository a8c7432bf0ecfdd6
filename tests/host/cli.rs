// SPDX-License-Identifier: GPL-2.0

//! The `heapgen` command line: exit codes and outputs of every subcommand.

use crate::support::{boards, heapgen, heapgen_bounded, root};

#[test]
fn check_accepts_every_shipped_board() {
    let root = root();
    let mut args = vec!["check".to_string()];
    args.extend(boards().iter().map(|b| b.to_string_lossy().into_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = heapgen(&root, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_exits_78_when_any_board_is_bad() {
    let out = heapgen(
        &root(),
        &[
            "check",
            "board-configs/qemu-x86_64.toml",
            "tests/corpus/reserve-overlap.toml",
        ],
    );
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("board-configs/qemu-x86_64.toml: ok"),
        "{stderr}"
    );
    assert!(stderr.contains("error[reserve-overlap]"), "{stderr}");
}

#[test]
fn a_missing_board_file_is_a_bad_board_file() {
    let out = heapgen(&root(), &["check", "board-configs/nope.toml"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[read-failed]"));
}

#[test]
fn generate_then_check_is_up_to_date_and_detects_stale_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    let out_s = out.to_string_lossy().into_owned();
    let root = root();
    let board = "board-configs/qemu-arm64.toml";
    let r = heapgen(&root, &["generate", board, "--out", &out_s, "--check"]);
    assert_eq!(r.status.code(), Some(1), "missing output is stale");
    assert!(!out.exists(), "--check writes nothing");
    let r = heapgen(&root, &["generate", board, "--out", &out_s]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(out.join("qemu_arm64_heaps_main.rs").exists());
    assert!(out.join("reserved-memory.dtsi").exists());
    let r = heapgen(&root, &["generate", board, "--out", &out_s, "--check"]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    std::fs::write(out.join("Kbuild"), "edited\n").expect("edit");
    std::fs::write(out.join("module.o"), "build product").expect("write");
    let r = heapgen(&root, &["generate", board, "--out", &out_s, "--check"]);
    assert_eq!(r.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("changed: Kbuild"), "{stderr}");
    let r = heapgen(&root, &["generate", board, "--out", &out_s]);
    assert_eq!(r.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&r.stderr).contains("1 written"));
    assert_eq!(
        std::fs::read_to_string(out.join("module.o")).expect("kept"),
        "build product"
    );
    let r = heapgen(&root, &["generate", board, "--out", &out_s, "--check"]);
    assert_eq!(r.status.code(), Some(0));
}

#[test]
fn explain_prints_the_heaps_and_the_memory_map() {
    let out = heapgen(&root(), &["explain", "board-configs/qemu-arm64.toml"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "HEAP",
        "CMA AREA",
        "ALIGNMENT",
        "GRANULE",
        "GUARDS",
        "VARIANT",
        "ACCESS",
        "video-uncached",
        "size-order<=1M",
        "0x6000_0000 +",
        "| video  64M  video@60000000",
        "free 16M",
        "placed by the kernel at boot",
        "[default]",
        "REGION   STRATEGIES",
        "camera   fallback to video",
        "secure   hooks hooks/protected.rs",
        "display  pool 1M,4M x2; dmem cgroup heapgen/display",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in\n{stdout}");
    }
    let out = heapgen(&root(), &["explain", "tests/corpus/no-regions.toml"]);
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn schema_prints_the_checked_in_schema() {
    let out = heapgen(&root(), &["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["$schema"], "http://json-schema.org/draft-07/schema#");
}

#[test]
fn help_and_version() {
    let out = heapgen(&root(), &["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("heapgen {}\n", heapgen::VERSION)
    );
    for args in [
        &["--help"][..],
        &["check", "--help"],
        &["generate", "--help"],
        &["explain", "--help"],
        &["schema", "--help"],
    ] {
        let out = heapgen(&root(), args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: heapgen"),
            "{args:?}"
        );
    }
    let out = heapgen(&root(), &["generate", "board-configs/qemu-arm64.toml"]);
    assert_eq!(out.status.code(), Some(2), "missing --out is a usage error");
}

#[test]
fn check_prints_warnings_and_accepts_the_board() {
    let out = heapgen(&root(), &["check", "tests/cli/world-writable-opt-in.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning[access-world-writable]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("tests/cli/world-writable-opt-in.toml:14:"),
        "{stderr}"
    );
    assert!(stderr.contains("generated 1 warning"), "{stderr}");
    assert!(stderr.contains("ok (1 heap)"), "{stderr}");
}

/// A valid board followed by comments up to `len` bytes.
fn padded_board(len: usize) -> Vec<u8> {
    let mut text = std::fs::read(root().join("board-configs/qemu-x86_64.toml")).expect("board");
    let line = format!("# {}\n", "x".repeat(77));
    while text.len() + line.len() <= len {
        text.extend_from_slice(line.as_bytes());
    }
    text.push(b'#');
    text.resize(len - 1, b'x');
    text.push(b'\n');
    text
}

#[test]
fn a_board_file_over_the_size_cap_is_refused_unread() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cap = usize::try_from(heapgen::MAX_BOARD_FILE).expect("fits");
    std::fs::create_dir(tmp.path().join("hooks")).expect("mkdir");
    std::fs::copy(
        root().join("board-configs/hooks/tracing.rs"),
        tmp.path().join("hooks/tracing.rs"),
    )
    .expect("copy hooks");
    let at_cap = tmp.path().join("at-cap.toml");
    std::fs::write(&at_cap, padded_board(cap)).expect("write");
    let out = heapgen_bounded(tmp.path(), &["check", "at-cap.toml"]).expect("ends");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let over = tmp.path().join("over.toml");
    std::fs::write(&over, padded_board(cap + 1)).expect("write");
    for args in [
        &["check", "over.toml"][..],
        &["generate", "over.toml", "--out", "out"],
        &["check", "/dev/zero"],
    ] {
        let out = heapgen_bounded(tmp.path(), args).expect("ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {stderr}");
        assert!(
            stderr.contains("error[board-file-size]"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.lines().count() < 20,
            "{args:?}: the file is not shown: {stderr}"
        );
    }
    assert!(!tmp.path().join("out").exists());
    // The library refuses it too, before parsing.
    let d = heapgen::load(heapgen::Source::bytes("over.toml", &padded_board(cap + 1))).unwrap_err();
    assert_eq!(d.rules(), ["board-file-size"]);
}
