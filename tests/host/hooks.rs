// SPDX-License-Identifier: GPL-2.0

//! Hook files are read only when they are regular files inside the board file's directory, no
//! larger than `heapgen::MAX_HOOK_FILE`: a symbolic link leading out of the directory, a FIFO
//! or a device is refused with `hooks-file`, without being read.

use std::path::Path;

use crate::support::heapgen_bounded;

const EX_CONFIG: i32 = 78;

/// A board directory `<tmp>/board` holding `board.toml` whose region uses `hooks/<name>`,
/// and a file `<tmp>/secret.rs` outside it.
fn board_dir(hook: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("board");
    std::fs::create_dir_all(dir.join("hooks")).expect("mkdir");
    std::fs::write(
        dir.join("board.toml"),
        format!(
            "schema-version = 1\n[board]\nname = \"b\"\narch = \"x86_64\"\n\
             [[region]]\nname = \"r\"\ncma = \"reserved\"\nheap = \"h\"\nhooks = \"hooks/{hook}\"\n"
        ),
    )
    .expect("write board");
    std::fs::write(
        tmp.path().join("secret.rs"),
        "// SECRET outside the board\n",
    )
    .expect("write secret");
    tmp
}

/// Runs `check` and `generate` on the board of `tmp`; both must refuse it with `hooks-file`
/// and `generate` must write nothing. Returns the diagnostics.
fn refused(tmp: &Path) -> String {
    let board = tmp.join("board/board.toml");
    let out = tmp.join("out");
    let board_s = board.to_string_lossy().into_owned();
    let out_s = out.to_string_lossy().into_owned();
    let check = heapgen_bounded(tmp, &["check", &board_s]).expect("check finishes");
    let stderr = String::from_utf8_lossy(&check.stderr).into_owned();
    assert_eq!(check.status.code(), Some(EX_CONFIG), "{stderr}");
    assert!(stderr.contains("error[hooks-file]"), "{stderr}");
    let gen =
        heapgen_bounded(tmp, &["generate", &board_s, "--out", &out_s]).expect("generate finishes");
    assert_eq!(
        gen.status.code(),
        Some(EX_CONFIG),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    assert!(!out.exists(), "output written for a refused board");
    stderr
}

#[test]
fn a_link_out_of_the_board_directory_is_refused() {
    let tmp = board_dir("evil.rs");
    std::os::unix::fs::symlink("../../secret.rs", tmp.path().join("board/hooks/evil.rs"))
        .expect("symlink");
    let stderr = refused(tmp.path());
    assert!(
        stderr.contains("outside the board file's directory"),
        "{stderr}"
    );
    assert!(!stderr.contains("SECRET"), "{stderr}");
    // Through a linked directory too.
    let tmp = board_dir("evil.rs");
    let hooks = tmp.path().join("board/hooks");
    std::fs::remove_dir(&hooks).expect("rmdir");
    std::os::unix::fs::symlink("..", &hooks).expect("symlink");
    std::fs::rename(tmp.path().join("secret.rs"), tmp.path().join("evil.rs")).expect("mv");
    refused(tmp.path());
}

#[test]
fn a_link_to_a_device_is_refused_unread() {
    let tmp = board_dir("zero.rs");
    std::os::unix::fs::symlink("/dev/zero", tmp.path().join("board/hooks/zero.rs"))
        .expect("symlink");
    // Refused for where it leads, not for running out of memory reading it.
    let stderr = refused(tmp.path());
    assert!(
        stderr.contains("outside the board file's directory"),
        "{stderr}"
    );
}

#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let tmp = board_dir("fifo.rs");
    let fifo = tmp.path().join("board/hooks/fifo.rs");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let stderr = refused(tmp.path());
    assert!(stderr.contains("not a regular file"), "{stderr}");
}

#[test]
fn a_hook_file_over_the_size_cap_is_refused() {
    let tmp = board_dir("big.rs");
    let cap = usize::try_from(heapgen::MAX_HOOK_FILE).expect("fits");
    std::fs::write(
        tmp.path().join("board/hooks/big.rs"),
        "/".repeat(cap + 1).as_bytes(),
    )
    .expect("write");
    let stderr = refused(tmp.path());
    assert!(stderr.contains("more than"), "{stderr}");
    // At the cap it is accepted.
    std::fs::write(
        tmp.path().join("board/hooks/big.rs"),
        "/".repeat(cap).as_bytes(),
    )
    .expect("write");
    let board = tmp.path().join("board/board.toml");
    let out = heapgen_bounded(tmp.path(), &["check", &board.to_string_lossy()]).expect("ends");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_link_inside_the_board_directory_is_followed() {
    let tmp = board_dir("inner.rs");
    let dir = tmp.path().join("board");
    std::fs::create_dir(dir.join("vendor")).expect("mkdir");
    std::fs::write(dir.join("vendor/real.rs"), "// the real hooks\n").expect("write");
    std::os::unix::fs::symlink("../vendor/real.rs", dir.join("hooks/inner.rs")).expect("symlink");
    let out = tmp.path().join("out");
    let r = heapgen_bounded(
        tmp.path(),
        &[
            "generate",
            &dir.join("board.toml").to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
        ],
    )
    .expect("ends");
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("hooks/inner.rs")).expect("copied"),
        "// the real hooks\n"
    );
}

#[test]
fn a_board_file_named_without_a_directory_finds_its_hooks() {
    let tmp = board_dir("plain.rs");
    let dir = tmp.path().join("board");
    std::fs::write(dir.join("hooks/plain.rs"), "// hooks\n").expect("write");
    let out = heapgen_bounded(&dir, &["check", "board.toml"]).expect("ends");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
