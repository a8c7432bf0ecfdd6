// SPDX-License-Identifier: GPL-2.0

//! `heapgen import`: every shipped arm64 board survives a round trip through its own
//! reserved-memory nodes, the vendor-binding fixtures in `tests/import/` import to their
//! expected board files, and inputs that are not device trees are refused with nothing written.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{boards, compare, heapgen, root, DTS_ROOT};

fn have_tools() -> bool {
    let ok = ["dtc", "cpp"]
        .iter()
        .all(|t| Command::new(t).arg("--version").output().is_ok());
    if !ok {
        eprintln!("skipped: `heapgen import` needs dtc and cpp");
    }
    ok
}

/// `dtc -I dts -O dtb | dtc -I dtb -O dts` of a source: labels, comments and formatting gone,
/// nodes and properties as the kernel sees them.
fn normalised(dts: &Path) -> String {
    let dtb = dts.with_extension("dtb");
    let run = |args: &[&str]| {
        let out = Command::new("dtc").args(args).output().expect("dtc runs");
        assert!(
            out.status.success(),
            "dtc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let dtb_s = dtb.to_str().expect("UTF-8 path");
    run(&[
        "-I",
        "dts",
        "-O",
        "dtb",
        "-o",
        dtb_s,
        dts.to_str().expect("UTF-8 path"),
    ]);
    run(&["-I", "dtb", "-O", "dts", dtb_s])
}

/// The board's `reserved-memory.dtsi` wrapped in the minimal tree, written to `dir/<name>.dts`.
fn reserved_memory_dts(board: &heapgen::ir::Board, dir: &Path, name: &str) -> PathBuf {
    let generation = heapgen::generate(board, &heapgen::Options::default()).expect("generates");
    let dtsi = generation
        .get("reserved-memory.dtsi")
        .unwrap_or_else(|| panic!("{name}: no reserved-memory.dtsi"));
    let path = dir.join(format!("{name}.dts"));
    let mut text = DTS_ROOT.as_bytes().to_vec();
    text.extend_from_slice(&dtsi.contents);
    std::fs::write(&path, text).expect("write dts");
    path
}

#[test]
fn shipped_arm64_boards_survive_an_import_round_trip() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tried = 0;
    for path in boards() {
        let board = heapgen::load(&path).unwrap_or_else(|d| panic!("{d}")).board;
        if board.arch != heapgen::ir::Arch::Arm64 {
            continue;
        }
        tried += 1;
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let original = reserved_memory_dts(&board, dir.path(), &stem);
        let imported = dir.path().join(format!("{stem}-imported.toml"));
        let out = heapgen(
            dir.path(),
            &[
                "import",
                original.to_str().unwrap(),
                "--out",
                imported.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{stem}: import failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let again = heapgen::load(&imported)
            .unwrap_or_else(|d| panic!("{stem}: {d}"))
            .board;
        assert_eq!(
            again.regions.len(),
            board.reserved.len(),
            "{stem}: one region per reserved node"
        );
        let regenerated = reserved_memory_dts(&again, dir.path(), &format!("{stem}-again"));
        assert_eq!(
            normalised(&original),
            normalised(&regenerated),
            "{stem}: the re-generated reserved-memory nodes differ"
        );
    }
    assert!(
        tried >= 4,
        "expected at least four arm64 boards, tried {tried}"
    );
}

/// The rules `heapgen check` reports for each fixture's board file: what the integrator is left
/// to decide.
const FIXTURE_RULES: &[(&str, &[&str])] = &[
    ("left-out", &[]),
    ("qcom", &[]),
    // The vendor named the heap after its own area: upstream's CMA heap takes that name.
    ("samsung", &["heap-name-cma-clash"]),
];

#[test]
fn vendor_bindings_import_to_the_expected_board_files() {
    if !have_tools() {
        return;
    }
    let dir = root().join("tests/import");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/import exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "dts"))
        .collect();
    fixtures.sort();
    let names: Vec<String> = fixtures
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        FIXTURE_RULES.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "every fixture has its expected check outcome"
    );
    let mut failures = Vec::new();
    for (path, (name, rules)) in fixtures.iter().zip(FIXTURE_RULES) {
        let imported = heapgen::import::import_path(path, &heapgen::import::Options::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(diff) = compare(&dir.join(format!("{name}.toml")), imported.text.as_bytes()) {
            failures.push(diff);
        }
        let found: Vec<&str> = match heapgen::load(heapgen::Source::bytes(
            &format!("{name}.toml"),
            imported.text.as_bytes(),
        )) {
            Ok(_) => Vec::new(),
            Err(d) => d.list.iter().map(|d| d.rule).collect(),
        };
        if found != *rules {
            failures.push(format!(
                "{name}: check reports {found:?}, expected {rules:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn secure_vendor_heaps_leave_a_hook_todo_and_uncached_twins_become_variants() {
    if !have_tools() {
        return;
    }
    let dir = root().join("tests/import");
    let options = heapgen::import::Options::default();
    let samsung = heapgen::import::import_path(&dir.join("samsung.dts"), &options).unwrap();
    let region = |text: &str, name: &str| -> String {
        let start = text
            .find(&format!("name = \"{name}\""))
            .unwrap_or_else(|| panic!("no region {name}"));
        let end = text[start..]
            .find("[[region]]")
            .map_or(text.len(), |e| start + e);
        text[start..end].to_string()
    };
    let vframe = region(&samsung.text, "vframe");
    assert!(vframe.contains("TODO: heap `vframe`"), "{vframe}");
    assert!(vframe.contains("protection_id = <5>"), "{vframe}");
    assert!(vframe.contains("alignment = \"64K\""), "{vframe}");
    let crypto = region(&samsung.text, "crypto");
    assert!(
        crypto.contains("variants = [\"cached\", \"uncached\"]"),
        "{crypto}"
    );
    assert_eq!(
        samsung
            .left_out
            .iter()
            .map(|l| l.node.as_str())
            .collect::<Vec<_>>(),
        [
            "/reserved-memory/tui@d4000000",
            "/reserved-memory/ramoops@e0000000"
        ]
    );
    let qcom = heapgen::import::import_path(&dir.join("qcom.dts"), &options).unwrap();
    let display = region(&qcom.text, "non-secure-display-region");
    assert!(
        display.contains("alignment = { size-order = true, max = \"2M\" }"),
        "{display}"
    );
    let contig = region(&qcom.text, "user-contig-region");
    assert!(contig.contains("variants = [\"uncached\"]"), "{contig}");
}

#[test]
fn an_include_directory_reaches_the_preprocessor() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let inc = dir.path().join("include/dt-bindings");
    std::fs::create_dir_all(&inc).unwrap();
    std::fs::write(inc.join("sizes.h"), "#define SZ_64M 0x4000000\n").unwrap();
    let dts = dir.path().join("board.dts");
    std::fs::write(
        &dts,
        "#include <dt-bindings/sizes.h>\n/dts-v1/;\n/ {\n\t#address-cells = <2>;\n\t#size-cells = <2>;\n\
         \treserved-memory {\n\t\t#address-cells = <2>;\n\t\t#size-cells = <2>;\n\t\tranges;\n\
         \t\tvideo@60000000 {\n\t\t\tcompatible = \"shared-dma-pool\";\n\t\t\treusable;\n\
         \t\t\treg = <0x0 0x60000000 0x0 SZ_64M>;\n\t\t};\n\t};\n};\n",
    )
    .unwrap();
    let without = heapgen(dir.path(), &["import", "board.dts"]);
    assert_eq!(without.status.code(), Some(65));
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("`cpp` refused"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
    let with = heapgen(
        dir.path(),
        &[
            "import",
            "board.dts",
            "--include",
            "include",
            "--out",
            "board.toml",
        ],
    );
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("board.toml")).unwrap();
    assert!(
        text.contains("reserve = { base = \"0x6000_0000\", size = \"64M\" }"),
        "{text}"
    );
}

/// Runs `heapgen import <input> --out board.toml` in `dir` where `board.toml` already holds
/// `keep`; returns the exit code and stderr after checking the file was left alone.
fn import_refused(dir: &Path, input: &str) -> (Option<i32>, String) {
    let out_file = dir.join("board.toml");
    std::fs::write(&out_file, "keep\n").unwrap();
    let out = heapgen(dir, &["import", input, "--out", "board.toml"]);
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        "keep\n",
        "{input}: the existing board file was touched"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".heapgen"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_file_that_is_not_a_dtb_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("text.dtb"),
        "this is a text file, not a device-tree blob at all\n",
    )
    .unwrap();
    let (code, stderr) = import_refused(dir.path(), "text.dtb");
    assert_eq!(code, Some(65), "{stderr}");
    assert!(stderr.contains("not a flattened device tree"), "{stderr}");
    assert!(stderr.contains("0xd00dfeed"), "{stderr}");

    // A real blob cut short: the header promises more than the file holds.
    if !have_tools() {
        return;
    }
    let dts = dir.path().join("ok.dts");
    std::fs::write(&dts, DTS_ROOT).unwrap();
    let blob = Command::new("dtc")
        .args(["-I", "dts", "-O", "dtb"])
        .arg(&dts)
        .output()
        .expect("dtc runs")
        .stdout;
    std::fs::write(dir.path().join("cut.dtb"), &blob[..blob.len() / 2]).unwrap();
    let (code, stderr) = import_refused(dir.path(), "cut.dtb");
    assert_eq!(code, Some(65), "{stderr}");
    assert!(stderr.contains("the header says"), "{stderr}");
}

#[test]
fn a_dts_that_dtc_refuses_is_reported_and_nothing_is_written() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("broken.dts"),
        "/dts-v1/;\n/ {\n\tfoo = <1 2;\n};\n",
    )
    .unwrap();
    let (code, stderr) = import_refused(dir.path(), "broken.dts");
    assert_eq!(code, Some(65), "{stderr}");
    assert!(stderr.contains("`dtc` refused"), "{stderr}");
    assert!(
        stderr.contains("broken.dts:3"),
        "dtc's message names the line: {stderr}"
    );
}

#[test]
fn a_board_file_check_refuses_is_written_with_what_to_decide() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = root().join("tests/import/samsung.dts");
    let out = heapgen(
        dir.path(),
        &["import", fixture.to_str().unwrap(), "--out", "phone.toml"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("heap-name-cma-clash"), "{stderr}");
    assert!(
        stderr.contains("does not pass `heapgen check` yet"),
        "{stderr}"
    );
    assert!(
        stderr.contains("note: /reserved-memory/tui@d4000000 left out"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(dir.path().join("phone.toml")).expect("written");
    assert!(text.contains("name = \"vstream\""), "{text}");
}

#[test]
fn corrupted_blobs_are_refused_or_imported_never_a_panic() {
    if !have_tools() {
        return;
    }
    let blob = heapgen::import::read_device_tree(&root().join("tests/import/qcom.dts"), &[])
        .expect("the fixture compiles");
    let options = heapgen::import::Options::default();
    let mut refused = 0;
    // Every byte flipped in turn: header fields, tokens, lengths, name offsets, cells.
    for i in 0..blob.len() {
        let mut bad = blob.clone();
        bad[i] ^= 0xff;
        match std::panic::catch_unwind(|| heapgen::import::import(&bad, "bad.dtb", &options)) {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!("import panicked with byte {i} of the qcom fixture flipped"),
        }
    }
    assert!(refused > 0, "no corruption was refused");
}
