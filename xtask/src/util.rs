//! Small helpers: running commands with a clean toolchain environment, progress, hashing.

use anyhow::{bail, Context, Result};
use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

/// Prints a progress line prefixed with the task name.
pub fn step(msg: impl AsRef<str>) {
    eprintln!("[xtask] {}", msg.as_ref());
}

/// The repository root (the parent of `xtask/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf()
}

/// The cache root: `$HEAPGEN_CACHE`, else `~/.cache/heapgen`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("HEAPGEN_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/heapgen")
}

/// Cargo's target directory for the workspace: `$CARGO_TARGET_DIR`, else `target/` in the
/// repository (`cargo xtask test` points it into the cache, see `main.rs`).
pub fn cargo_target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("target"),
    }
}

/// `PATH` without rustup's `~/.cargo/bin`: kernel builds must use Debian's rustc.
pub fn system_path() -> String {
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()
}

/// A command with the kernel toolchain environment (Debian's rustc, libclang for bindgen).
pub fn kernel_cmd(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("PATH", system_path())
        .env("LIBCLANG_PATH", "/usr/lib/llvm-19/lib")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS");
    // Nothing of the cargo run xtask came from: clippy-driver reads `CARGO_PKG_RUST_VERSION`
    // (and warns when it differs from the kernel's clippy.toml), rustc others.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CARGO_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs `cmd`, failing with its output when it fails.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!(
            "{:?} failed ({}):\n{}{}",
            cmd,
            out.status,
            tail(&stdout, 40),
            tail(&stderr, 40)
        );
    }
    Ok(stdout + &stderr)
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    let mut s = lines[start..].join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// Runs a long command with its output in `log`, printing a heartbeat with the elapsed time.
pub fn run_logged(cmd: &mut Command, what: &str, log: &Path) -> Result<()> {
    let file = fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let start = Instant::now();
    step(format!("{what} (log: {})", log.display()));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    let mut last_beat = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(500));
        if last_beat.elapsed() >= Duration::from_secs(30) {
            last_beat = Instant::now();
            let last = last_line(log).unwrap_or_default();
            step(format!(
                "  ... {what}: {}s, {last}",
                start.elapsed().as_secs()
            ));
        }
    };
    if !status.success() {
        let text = fs::read_to_string(log).unwrap_or_default();
        bail!(
            "{what} failed ({status}); last lines of {}:\n{}",
            log.display(),
            tail(&text, 40)
        );
    }
    step(format!("{what}: done in {}s", start.elapsed().as_secs()));
    Ok(())
}

fn last_line(path: &Path) -> Option<String> {
    let file = fs::File::open(path).ok()?;
    BufReader::new(file)
        .lines()
        .map_while(|l| l.ok())
        .filter(|l| !l.trim().is_empty())
        .last()
        .map(|l| l.trim().chars().take(100).collect())
}

/// Whether `program` is on the system `PATH`.
pub fn have(program: &str) -> bool {
    system_path()
        .split(':')
        .any(|dir| Path::new(dir).join(program).is_file())
}

/// A file's name without its directories and extension (`qemu-arm64` for
/// `board-configs/qemu-arm64.toml`), or "" for a path without a file name.
pub fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Waits for `child`, polling; once `stop(elapsed)` says so, kills it, or with `group` the
/// process group it leads (a shell and what it started), and reaps it. Returns its exit status,
/// or `None` when it had to be killed.
pub fn wait_or_kill(
    child: &mut Child,
    group: bool,
    mut stop: impl FnMut(Duration) -> bool,
) -> Result<Option<ExitStatus>> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if stop(start.elapsed()) {
            if group {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(format!("-{}", child.id()))
                    .status();
            } else {
                let _ = child.kill();
            }
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_or_kill_reaps_what_exits_and_kills_what_it_is_told_to() {
        let mut done = Command::new("true").spawn().unwrap();
        let status = wait_or_kill(&mut done, false, |_| false).unwrap();
        assert!(status.is_some_and(|s| s.success()));

        let mut polls = 0;
        let mut hung = Command::new("sleep").arg("600").spawn().unwrap();
        let status = wait_or_kill(&mut hung, false, |_| {
            polls += 1;
            polls > 2
        })
        .unwrap();
        assert!(status.is_none(), "killed, not exited");
        assert_eq!(polls, 3, "killed when told to");
    }
}
