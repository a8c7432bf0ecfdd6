//! A worker's scratch directory: a board directory with hook files good and hostile, a canary
//! file outside it, and the real `heapgen` binary run on a board with bounds.
//!
//! ```text
//! <tmp>/canary.rs                 outside the board directory: must never be read
//! <tmp>/board/board.toml          the input, when the binary is run
//! <tmp>/board/hooks/protected.rs  the shipped hooks (board-configs/hooks/*.rs)
//! <tmp>/board/hooks/evil_link.rs  -> ../../canary.rs        (leaves the directory)
//! <tmp>/board/hooks/zero.rs       -> /dev/zero              (a device)
//! <tmp>/board/hooks/fifo.rs       a FIFO                    (blocks a reader)
//! <tmp>/board/hooks/big.rs        MAX_HOOK_FILE + 1 bytes   (over the cap)
//! <tmp>/board/hooks/dir.rs/       a directory
//! <tmp>/board/hooks/inner_link.rs -> ../vendor/inner.rs    (allowed: stays inside)
//! <tmp>/board/up                  -> ..                     (a directory link out)
//! <tmp>/out/                      where the binary generates
//! ```

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// The hook paths a mutation may give `hooks`, good and hostile.
pub const HOOK_PATHS: &[&str] = &[
    "hooks/protected.rs",
    "hooks/tracing.rs",
    "hooks/evil_link.rs",
    "hooks/zero.rs",
    "hooks/fifo.rs",
    "hooks/big.rs",
    "hooks/dir.rs",
    "hooks/inner_link.rs",
    "up/canary.rs",
    "hooks/missing.rs",
];

/// What the binary did.
#[derive(Debug)]
pub struct Run {
    /// Its exit code, `None` when killed by a signal.
    pub code: Option<i32>,
    /// Its standard error.
    pub stderr: String,
}

/// A worker's scratch directory.
#[derive(Debug)]
pub struct Sandbox {
    _tmp: tempfile::TempDir,
    /// The directory holding the board file and its hooks.
    pub board_dir: PathBuf,
    /// The output directory the binary generates into.
    pub out_dir: PathBuf,
    /// The scratch directory itself (no generated file may name it).
    pub root: PathBuf,
    /// What `canary.rs` holds; no generated file may contain it.
    pub canary: String,
}

impl Sandbox {
    /// Lays out the scratch directory for worker `tag`.
    pub fn new(repo: &Path, tag: &str) -> Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("heapgen-fuzz-{tag}-"))
            .tempdir()
            .context("scratch directory")?;
        let root = tmp.path().to_path_buf();
        let board_dir = root.join("board");
        let hooks = board_dir.join("hooks");
        std::fs::create_dir_all(&hooks)?;
        std::fs::create_dir_all(board_dir.join("vendor"))?;
        let canary = format!(
            "// CANARY-{tag}-{} outside the board directory\n",
            std::process::id()
        );
        std::fs::write(root.join("canary.rs"), &canary)?;
        for e in std::fs::read_dir(repo.join("board-configs/hooks"))? {
            let e = e?;
            std::fs::copy(e.path(), hooks.join(e.file_name()))?;
        }
        std::os::unix::fs::symlink("../../canary.rs", hooks.join("evil_link.rs"))?;
        std::os::unix::fs::symlink("/dev/zero", hooks.join("zero.rs"))?;
        let fifo = std::ffi::CString::new(hooks.join("fifo.rs").as_os_str().as_encoded_bytes())?;
        // SAFETY: `fifo` is a NUL-terminated path that lives across the call.
        if unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) } != 0 {
            return Err(std::io::Error::last_os_error()).context("mkfifo");
        }
        let big = usize::try_from(heapgen::MAX_HOOK_FILE)? + 1;
        std::fs::write(hooks.join("big.rs"), vec![b'/'; big])?;
        std::fs::create_dir(hooks.join("dir.rs"))?;
        std::fs::write(board_dir.join("vendor/inner.rs"), "// inner hooks\n")?;
        std::os::unix::fs::symlink("../vendor/inner.rs", hooks.join("inner_link.rs"))?;
        std::os::unix::fs::symlink("..", board_dir.join("up"))?;
        Ok(Self {
            out_dir: root.join("out"),
            board_dir,
            root,
            canary,
            _tmp: tmp,
        })
    }

    /// Runs `heapgen args...` in the board directory with its address space limited to 2 GiB,
    /// killed after `limit`; `None` when it had to be killed.
    pub fn run(&self, heapgen: &Path, args: &[&str], limit: Duration) -> Result<Option<Run>> {
        let mut cmd = Command::new(heapgen);
        cmd.current_dir(&self.board_dir)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 2 << 30,
                    rlim_max: 2 << 30,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().context("cannot run heapgen")?;
        let stderr = child.stderr.take();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut e) = stderr {
                use std::io::Read;
                let _ = e.read_to_string(&mut s);
            }
            s
        });
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                let stderr = reader.join().unwrap_or_default();
                return Ok(Some(Run {
                    code: status.code(),
                    stderr,
                }));
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Every regular file below the output directory, `/`-separated, with its bytes.
    pub fn output(&self) -> Result<Vec<(String, Vec<u8>)>> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
            for e in std::fs::read_dir(dir)? {
                let p = e?.path();
                if p.is_dir() {
                    walk(base, &p, out)?;
                } else {
                    let rel = p.strip_prefix(base)?.to_string_lossy().replace('\\', "/");
                    out.push((rel, std::fs::read(&p)?));
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        walk(&self.out_dir, &self.out_dir, &mut out)?;
        out.sort();
        Ok(out)
    }
}
