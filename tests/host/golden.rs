// SPDX-License-Identifier: GPL-2.0

//! Golden output trees: `tests/golden/<board file stem>/` holds what heapgen generates for every
//! board in board-configs/, except the runtime files (verbatim copies of heaps/runtime, checked
//! separately), the manifest (checked for consistency) and the Yocto crate list (checked against
//! Cargo.lock), so that runtime and dependency changes do not churn the goldens. Also: determinism across working directories, and rustfmt-clean Rust.

use std::collections::BTreeMap;
use std::process::Command;

use crate::support::{boards, compare, heapgen, root, rustfmt_clean};

fn is_runtime(path: &str) -> bool {
    heapgen::runtime::FILES.iter().any(|f| f.name == path)
}

/// Whether `path` is a copy of a test-suite source (`test/<file of tests/guest>`), checked
/// verbatim instead of kept as a golden.
fn is_test_source(path: &str) -> bool {
    path.strip_prefix("test/")
        .is_some_and(|name| heapgen::testsuite::FILES.iter().any(|f| f.name == name))
}

/// Where the build-system trees carry copies of the module's files (checked against the
/// originals instead of kept as goldens): the path of the original, if `path` is a copy.
fn copy_of(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("yocto/recipes-kernel/")
        .and_then(|r| r.split_once("/files/"))
        .or_else(|| {
            path.strip_prefix("buildroot/package/")
                .and_then(|r| r.split_once("/src/"))
        })?
        .1;
    Some(rest)
}

/// Every file below `dir`, as `/`-separated paths relative to it, sorted.
fn tree(dir: &std::path::Path) -> Vec<String> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).expect("below base");
                out.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The line of a generated file that carries its SPDX identifier: the first, except in the
/// manifest (JSON has no comments: the key comes after `{`) and in Buildroot `.mk` files, which
/// must start with check-package's 5-line package header and a blank line.
fn spdx_line(path: &str, text: &str) -> usize {
    if path == heapgen::render::MANIFEST || text.starts_with("#!") {
        1
    } else if path.starts_with("buildroot/")
        && path.ends_with(".mk")
        && !path.ends_with("/external.mk")
    {
        6
    } else {
        0
    }
}

fn generation(board: &std::path::Path) -> heapgen::Generation {
    let ir = heapgen::load(board).unwrap_or_else(|d| panic!("{d}")).board;
    heapgen::generate(&ir, &heapgen::Options::default()).expect("generates")
}

#[test]
fn golden_trees_match() {
    let mut failures = Vec::new();
    for board in boards() {
        let stem = board
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let dir = root().join("tests/golden").join(&stem);
        let g = generation(&board);
        let mut expected_names = Vec::new();
        for f in &g.files {
            if let Some(original) = copy_of(&f.path) {
                let want = match original.strip_prefix("board/") {
                    // The board file and its hooks, for regenerating at build time.
                    Some(rel) => std::fs::read(board.parent().expect("dir").join(rel))
                        .unwrap_or_else(|e| panic!("{}: {e}", f.path)),
                    None => g
                        .get(original)
                        .unwrap_or_else(|| panic!("{} copies nothing generated", f.path))
                        .contents
                        .clone(),
                };
                if f.contents != want {
                    failures.push(format!("{stem}: {} differs from {original}", f.path));
                }
                continue;
            }
            if is_runtime(&f.path)
                || is_test_source(&f.path)
                || f.path == "COPYING"
                || f.path == heapgen::render::MANIFEST
                || f.path == heapgen::render::YOCTO_CRATES_INC
            {
                continue;
            }
            expected_names.push(f.path.clone());
            if let Some(diff) = compare(&dir.join(&f.path), &f.contents) {
                failures.push(diff);
            }
        }
        if crate::support::bless() {
            for name in tree(&dir) {
                if !expected_names.contains(&name) {
                    std::fs::remove_file(dir.join(&name)).expect("remove stale golden");
                }
            }
        }
        let on_disk = tree(&dir);
        expected_names.sort();
        if on_disk != expected_names {
            failures.push(format!(
                "{stem}: golden files {on_disk:?}, generated {expected_names:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn runtime_files_are_copied_verbatim_below_a_generated_header() {
    let g = generation(&root().join("board-configs/qemu-x86_64.toml"));
    for f in heapgen::runtime::FILES {
        let out = String::from_utf8(
            g.get(f.name)
                .expect("runtime file generated")
                .contents
                .clone(),
        )
        .expect("utf-8");
        let first = out.lines().next().expect("first line");
        assert!(
            first.contains("SPDX-License-Identifier"),
            "{}: {first}",
            f.name
        );
        assert_verbatim_below_header(&out, 1, f.contents, f.source, f.name);
    }
}

#[test]
fn test_suite_files_are_copied_verbatim_below_a_generated_header() {
    let g = generation(&root().join("board-configs/qemu-x86_64.toml"));
    for f in heapgen::testsuite::FILES {
        let out = String::from_utf8(
            g.get(&format!("test/{}", f.name))
                .expect("test file generated")
                .contents
                .clone(),
        )
        .expect("utf-8");
        // The header follows the SPDX line: the first, or the second after `#!`.
        let header = usize::from(f.contents.starts_with("#!")) + 1;
        assert_verbatim_below_header(&out, header, f.contents, f.source, f.name);
    }
}

/// `out` is `original` (copied from `source`) with the `@generated` header at line `header`.
fn assert_verbatim_below_header(
    out: &str,
    header: usize,
    original: &str,
    source: &str,
    name: &str,
) {
    let line = out.lines().nth(header).expect("header line");
    assert!(
        line.contains(&format!(
            "@generated by heapgen {} from {source}; do not edit.",
            heapgen::VERSION
        )),
        "{name}: {line}"
    );
    let without: Vec<&str> = out
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != header)
        .map(|(_, l)| l)
        .collect();
    let original: Vec<&str> = original.lines().collect();
    assert_eq!(without, original, "{name} is not verbatim");
}

#[test]
fn the_test_suite_has_every_guest_program() {
    let mut on_disk: Vec<String> = std::fs::read_dir(root().join("tests/guest"))
        .expect("tests/guest")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "init.sh")
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = heapgen::testsuite::FILES
        .iter()
        .filter(|f| f.source.starts_with("tests/guest/"))
        .map(|f| f.name.to_string())
        .collect();
    embedded.sort();
    assert_eq!(
        on_disk, embedded,
        "build-tools/src/testsuite.rs lists tests/guest"
    );
    let programs: Vec<String> = heapgen::testsuite::programs()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert!(programs.contains(&"heap-alloc".to_string()), "{programs:?}");
    assert!(
        !programs.iter().any(|p| p.contains("bench")),
        "{programs:?}"
    );
}

#[test]
fn the_test_heaps_conf_lists_every_heap() {
    for board in boards() {
        let ir = heapgen::load(&board).expect("valid").board;
        let g = generation(&board);
        let conf = String::from_utf8(
            g.get("test/heaps.conf")
                .expect("heaps.conf")
                .contents
                .clone(),
        )
        .expect("utf-8");
        let heaps: Vec<&str> = conf
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let fields: Vec<&str> = l.split(' ').collect();
                assert_eq!(fields.len(), 14, "{l}");
                assert_eq!(fields[1], ir.module);
                fields[0]
            })
            .collect();
        let mut sorted = heaps.clone();
        sorted.sort_unstable();
        let names: Vec<&str> = ir.heaps.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(sorted, names, "{}", board.display());
    }
}

#[test]
fn every_file_has_spdx_and_generated_headers_and_the_manifest_lists_them() {
    for board in boards() {
        let g = generation(&board);
        let ir = heapgen::load(&board).expect("valid").board;
        let manifest: serde_json::Value =
            serde_json::from_slice(&g.get(heapgen::render::MANIFEST).expect("manifest").contents)
                .expect("manifest is JSON");
        assert_eq!(manifest["heapgen"], heapgen::VERSION);
        assert_eq!(manifest["source"], ir.source);
        let bytes = std::fs::read(&board).expect("readable");
        assert_eq!(
            manifest["source-sha256"],
            heapgen::render::sha256_hex(&bytes)
        );
        let listed: BTreeMap<String, String> = manifest["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().expect("path").into(),
                    f["sha256"].as_str().expect("sha").into(),
                )
            })
            .collect();
        let mut paths: Vec<&str> = g.files.iter().map(|f| f.path.as_str()).collect();
        let sorted = {
            let mut s = paths.clone();
            s.sort();
            s
        };
        assert_eq!(paths, sorted, "generation is sorted");
        paths.retain(|p| *p != heapgen::render::MANIFEST);
        assert_eq!(listed.keys().map(String::as_str).collect::<Vec<_>>(), paths);
        for f in &g.files {
            let text = String::from_utf8_lossy(&f.contents);
            if f.path != heapgen::render::MANIFEST {
                assert_eq!(
                    listed[&f.path],
                    heapgen::render::sha256_hex(&f.contents),
                    "{}",
                    f.path
                );
            }
            let original = copy_of(&f.path).unwrap_or(&f.path);
            if original == "COPYING" || original.starts_with("board/") {
                // The license text, and the board file and hooks the build-system trees carry
                // for regenerating: verbatim (checked by `golden_trees_match`).
                continue;
            }
            if original.starts_with("hooks/") {
                // Board hook files are copied verbatim, without a header, so that compile
                // errors point at their own lines.
                let hook = ir.hook_files.iter().find(|h| h.path == original);
                let source = board
                    .parent()
                    .expect("dir")
                    .join(&hook.expect("in the IR").source);
                assert_eq!(std::fs::read(&source).expect("hook source"), f.contents);
                continue;
            }
            let spdx_line = spdx_line(&f.path, &text);
            let spdx = text.lines().nth(spdx_line).unwrap_or_default();
            assert!(
                spdx.contains("SPDX-License-Identifier") && spdx.contains("GPL-2.0"),
                "{}: {spdx}",
                f.path
            );
            assert!(
                text.lines()
                    .skip(spdx_line)
                    .take(3)
                    .any(|l| l.contains("@generated by heapgen")),
                "{}",
                f.path
            );
            assert!(
                !text.contains(&*root().to_string_lossy()),
                "{}: absolute path",
                f.path
            );
        }
        assert_eq!(
            g.get("reserved-memory.dtsi").is_some(),
            !ir.reserved.is_empty()
        );
    }
}

#[test]
fn generating_from_two_working_directories_gives_identical_bytes() {
    let root = root();
    for board in ["qemu-x86_64", "qemu-arm64"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        let r = heapgen(
            &root,
            &[
                "generate",
                &format!("board-configs/{board}.toml"),
                "--out",
                &a.to_string_lossy(),
            ],
        );
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let r = heapgen(
            &root.join("Documentation"),
            &[
                "generate",
                &format!("../board-configs/{board}.toml"),
                "--out",
                &b.to_string_lossy(),
            ],
        );
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let read = |d: &std::path::Path| -> BTreeMap<String, Vec<u8>> {
            tree(d)
                .into_iter()
                .map(|p| {
                    let bytes = std::fs::read(d.join(&p)).expect("read");
                    (p, bytes)
                })
                .collect()
        };
        let (ta, tb) = (read(&a), read(&b));
        assert!(ta.len() > 5);
        assert_eq!(ta, tb, "{board}: output depends on the working directory");
        // And the library agrees with the binary.
        let g = generation(&root.join(format!("board-configs/{board}.toml")));
        let lib: BTreeMap<String, Vec<u8>> =
            g.files.into_iter().map(|f| (f.path, f.contents)).collect();
        assert_eq!(lib, ta);
    }
}

#[test]
fn the_yocto_crate_list_is_heapgen_cargo_lock() {
    let g = generation(&root().join("board-configs/qemu-x86_64.toml"));
    let inc = String::from_utf8(
        g.get(heapgen::render::YOCTO_CRATES_INC)
            .expect("crates.inc generated")
            .contents
            .clone(),
    )
    .expect("utf-8");
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).expect("Cargo.lock");
    let crates = heapgen::render::locked_crates(&lock).expect("parses");
    assert!(crates.len() > 20, "{crates:?}");
    for c in &crates {
        assert!(
            inc.contains(&format!(
                "    crate://crates.io/{}/{} \\\n",
                c.name, c.version
            )),
            "{} {} missing",
            c.name,
            c.version
        );
        assert!(
            inc.contains(&format!(
                "SRC_URI[{}-{}.sha256sum] = \"{}\"\n",
                c.name, c.version, c.checksum
            )),
            "{} {} checksum missing",
            c.name,
            c.version
        );
    }
    assert!(
        !inc.contains("heapgen-policy"),
        "path dependencies are not crates"
    );
    assert_eq!(inc.matches("crate://").count(), crates.len());
}

#[test]
fn targets_select_the_build_system_files() {
    let ir = heapgen::load(&root().join("board-configs/qemu-arm64.toml"))
        .expect("valid")
        .board;
    let none = heapgen::generate(
        &ir,
        &heapgen::Options {
            targets: Vec::new(),
            ..heapgen::Options::default()
        },
    )
    .expect("generates");
    assert!(none.get("Kbuild").is_some());
    assert!(
        none.files.iter().all(|f| (!f.path.contains('/')
            || f.path.starts_with("hooks/")
            || f.path.starts_with("test/"))
            && f.path != "BUILD.bazel"),
        "{:?}",
        none.files.iter().map(|f| &f.path).collect::<Vec<_>>()
    );
    let android = heapgen::generate(
        &ir,
        &heapgen::Options {
            targets: vec![heapgen::Target::Android],
            ..heapgen::Options::default()
        },
    )
    .expect("generates");
    assert!(android.get("BUILD.bazel").is_some());
    assert!(android.get("android/sepolicy/file_contexts").is_some());
    assert!(android
        .files
        .iter()
        .all(|f| !f.path.starts_with("yocto/") && !f.path.starts_with("buildroot/")));
}

#[test]
fn generated_rust_is_rustfmt_clean() {
    if Command::new("rustfmt").arg("--version").output().is_err() {
        println!("note: no rustfmt binary; generated_rust_is_rustfmt_clean skipped");
        return;
    }
    let mut failures = Vec::new();
    for board in boards() {
        for f in generation(&board)
            .files
            .iter()
            .filter(|f| f.path.ends_with(".rs") && copy_of(&f.path).is_none())
        {
            if let Err(stderr) = rustfmt_clean(&f.contents) {
                let what = if is_runtime(&f.path) {
                    "runtime file"
                } else {
                    "generated file"
                };
                failures.push(format!(
                    "{} ({what}) of {} is not rustfmt-clean{stderr}",
                    f.path,
                    board.display(),
                ));
            }
        }
    }
    failures.dedup();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn reserved_memory_fragments_compile_with_dtc() {
    if Command::new("dtc").arg("--version").output().is_err() {
        println!("note: no dtc binary; reserved_memory_fragments_compile_with_dtc skipped");
        return;
    }
    for board in boards() {
        let g = generation(&board);
        let Some(dtsi) = g.get("reserved-memory.dtsi") else {
            continue;
        };
        if let Some(Err(e)) = crate::support::dtc_fragment(&dtsi.contents) {
            panic!("{}: {e}", board.display());
        }
    }
}

/// A headroom (no board of `board-configs/` has one yet) reaches the crate root's region table,
/// `heaps.conf`, the board's rst and `explain`; the crate root stays rustfmt-clean whatever the
/// size (rustfmt breaks a struct literal past 18 characters).
#[test]
fn a_headroom_reaches_the_region_table_heaps_conf_and_the_docs() {
    let text = "schema-version = 1\n[board]\nname = \"b\"\narch = \"arm64\"\n\
        [[region]]\nname = \"camera\"\ncma = \"camera@90000000\"\nheap = \"camera\"\n\
        reserve = { base = \"0x9000_0000\", size = \"64M\" }\n\
        variants = [\"cached\", \"uncached\"]\n\
        strategy = { kind = \"headroom\", size = \"16M\" }\n\
        [[region]]\nname = \"big\"\ncma = \"big-area\"\nheap = \"big\"\n\
        strategy = { kind = \"headroom\", size = \"256G\" }\n\
        [[region]]\nname = \"plain\"\ncma = \"plain-area\"\nheap = \"plain\"\n";
    let ir = heapgen::load(heapgen::Source::bytes("b.toml", text.as_bytes()))
        .unwrap_or_else(|d| panic!("{d}"))
        .board;
    let g = heapgen::generate(&ir, &heapgen::Options::default()).expect("generates");
    let file = |path: &str| {
        String::from_utf8(
            g.get(path)
                .unwrap_or_else(|| panic!("no {path}"))
                .contents
                .clone(),
        )
        .expect("utf-8")
    };
    let main = file("b_heaps_main.rs");
    for needle in [
        "        pool: None,\n        // Headroom: 16M of the area kept evacuated and zeroed ahead of demand.\n        headroom: Some(headroom::Config { bytes: 0x1000000 }),\n",
        "        headroom: Some(headroom::Config {\n            bytes: 0x4000000000,\n        }),\n",
        "        pool: None,\n        headroom: None,\n        accounting: None,\n",
    ] {
        assert!(main.contains(needle), "missing {needle:?} in\n{main}");
    }
    let conf = file("test/heaps.conf");
    for line in [
        "camera b_heaps camera@90000000 4096 4096 0 0 67108864 0 - - - - 16777216\n",
        "camera-uncached b_heaps camera@90000000 4096 4096 0 0 67108864 1 - - - - 16777216\n",
        " - - - - 274877906944\n",
        "plain b_heaps plain-area 4096 4096 0 0 268435456 0 - - - - -\n",
    ] {
        assert!(conf.contains(line), "missing {line:?} in\n{conf}");
    }
    assert!(file("b-heaps.rst").contains(
        "- Headroom: 16 MiB of the CMA area kept evacuated and zeroed ahead of\n  demand, shared by the region's heaps\n"
    ));
    let explained = heapgen::explain::explain(&ir);
    assert!(explained.contains("camera  headroom 16M\n"), "{explained}");
    assert!(explained.contains("big     headroom 256G\n"), "{explained}");

    if Command::new("rustfmt").arg("--version").output().is_err() {
        println!("note: no rustfmt binary; the crate root's formatting is not checked");
        return;
    }
    if let Err(stderr) = rustfmt_clean(main.as_bytes()) {
        panic!("the crate root is not rustfmt-clean:\n{stderr}");
    }
}
