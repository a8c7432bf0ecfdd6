// SPDX-License-Identifier: GPL-2.0

//! Shared helpers: paths, the binary, blessing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("build-tools has a parent")
        .to_path_buf()
}

/// Whether expected outputs are to be overwritten.
pub fn bless() -> bool {
    std::env::var_os("HEAPGEN_BLESS").is_some_and(|v| v != "0")
}

/// Runs the heapgen binary in `cwd`.
pub fn heapgen(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heapgen"))
        .current_dir(cwd)
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("heapgen runs")
}

/// The board files in board-configs/, sorted.
pub fn boards() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("board-configs"))
        .expect("board-configs/ exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    assert!(v.len() >= 4, "expected at least four boards, found {v:?}");
    v
}

/// Compares `actual` with the file `expected`, or overwrites it when blessing.
/// Returns a description of the mismatch, if any.
pub fn compare(expected: &Path, actual: &[u8]) -> Option<String> {
    if bless() {
        std::fs::create_dir_all(expected.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(expected, actual).expect("bless");
        return None;
    }
    match std::fs::read(expected) {
        Ok(e) if e == actual => None,
        Ok(e) => Some(format!(
            "{} differs:\n--- expected\n{}\n--- actual\n{}",
            expected.display(),
            String::from_utf8_lossy(&e),
            String::from_utf8_lossy(actual)
        )),
        Err(_) => Some(format!(
            "{} is missing (run with HEAPGEN_BLESS=1)",
            expected.display()
        )),
    }
}

/// The most memory (address space) [`heapgen_bounded`] lets heapgen map.
pub const BOUNDED_ADDRESS_SPACE: u64 = 2 << 30;

/// How long [`heapgen_bounded`] waits before it kills heapgen: a guard against a hang, far
/// above what any run takes, not a timing assertion.
pub const BOUNDED_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs the heapgen binary in `cwd` with its address space limited to
/// [`BOUNDED_ADDRESS_SPACE`] and killed after [`BOUNDED_WAIT`], for inputs that once made it
/// hang or eat memory: a regression then fails the test instead of the machine. Returns the
/// output, or `None` when heapgen had to be killed.
pub fn heapgen_bounded(cwd: &Path, args: &[&str]) -> Option<Output> {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_heapgen"));
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: BOUNDED_ADDRESS_SPACE as libc::rlim_t,
                rlim_max: BOUNDED_ADDRESS_SPACE as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("heapgen runs");
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        if start.elapsed() > BOUNDED_WAIT {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The minimal arm64 tree a reserved-memory fragment is compiled in: two address and size cells.
pub const DTS_ROOT: &str = "/dts-v1/;\n/ {\n\t#address-cells = <2>;\n\t#size-cells = <2>;\n};\n";

/// Runs `program` with `args`, `input` on its stdin; returns its output (stdout and stderr
/// captured). Panics when it cannot run: callers check the tool is there first.
pub fn run_with_stdin(program: &str, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} does not run: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write");
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{program} did not finish: {e}"))
}

/// Whether `source` is what rustfmt (edition 2021) makes of it. Through stdin: rustfmt then
/// checks this file only, not the modules it declares. Returns rustfmt's stderr when not.
pub fn rustfmt_clean(source: &[u8]) -> Result<(), String> {
    let out = run_with_stdin(
        "rustfmt",
        &["--edition", "2021", "--emit", "stdout"],
        source,
    );
    if out.status.success() && out.stdout == source {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Compiles a reserved-memory fragment with `dtc` inside a minimal tree; `None` without a
/// `dtc` binary, else `dtc`'s stderr when it fails or warns.
pub fn dtc_fragment(dtsi: &[u8]) -> Option<Result<(), String>> {
    std::process::Command::new("dtc")
        .arg("--version")
        .output()
        .ok()?;
    let mut dts = DTS_ROOT.as_bytes().to_vec();
    dts.extend_from_slice(dtsi);
    let out = run_with_stdin(
        "dtc",
        &["-I", "dts", "-O", "dtb", "-o", "/dev/null", "-"],
        &dts,
    );
    Some(if out.status.success() && out.stderr.is_empty() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}
