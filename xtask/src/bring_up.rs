//! `cargo xtask bring-up`: runs Documentation/bring-up.rst as written.
//!
//! Every `.. code-block:: sh` of the guide runs, in the guide's order, with `bash -e -o pipefail`
//! in `target/bring-up/` (which holds a copy of `board-configs/`), with `heapgen` and bindgen on
//! `PATH` and the guide's variables set to the test bed: `KSRC` and `KDIR` to the 7.2 arm64
//! kernel's source and build trees, `BUSYBOX` to its static arm64 busybox. A block right after
//! an rst comment `.. not-run: <why>` is left out (the guide's placeholders, commands on real
//! hardware). The guide ends by booting the board in QEMU and running the on-target suite; its
//! console (`console.log`) is parsed like the test bed's guests, so every test of the suite is a
//! case here.

use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::ktap::{self, Case, Outcome};
use crate::testbed::{self, Arch, Variant};
use crate::util::{self, repo_root, step};

/// The guide, relative to the repository.
const GUIDE: &str = "Documentation/bring-up.rst";

/// How long one block may run: the QEMU boot runs the whole suite (about three minutes under
/// TCG on the CI machine, measured); the limit only stops a hung guest.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(25 * 60);

/// One shell block of the guide.
#[derive(Debug, PartialEq, Eq)]
pub struct Block {
    /// Its line in the guide (of the directive).
    pub line: usize,
    /// Its text, unindented.
    pub text: String,
    /// Why it does not run (`.. not-run: <why>` before it), if it does not.
    pub not_run: Option<String>,
}

/// The `sh` code blocks of an rst page, in order.
pub fn sh_blocks(rst: &str) -> Vec<Block> {
    let lines: Vec<&str> = rst.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != ".. code-block:: sh" {
            i += 1;
            continue;
        }
        let line = i + 1;
        let not_run = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| l.strip_prefix(".. not-run:"))
            .map(|why| why.trim().to_string());
        i += 1;
        // Options (`:caption: ...`) and the blank line before the body.
        while i < lines.len() && (lines[i].trim().is_empty() || lines[i].trim().starts_with(':')) {
            i += 1;
        }
        let mut body = Vec::new();
        while i < lines.len() && (lines[i].trim().is_empty() || lines[i].starts_with("   ")) {
            body.push(lines[i].get(3..).unwrap_or(""));
            i += 1;
        }
        while body.last().is_some_and(|l| l.is_empty()) {
            body.pop();
        }
        let mut text = body.join("\n");
        text.push('\n');
        blocks.push(Block {
            line,
            text,
            not_run,
        });
    }
    blocks
}

/// A block's case name: its line and the first two words of its first command.
fn case_name(block: &Block) -> String {
    let words: Vec<&str> = block
        .text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .split_whitespace()
        .filter(|w| *w != "\\")
        .take(2)
        .collect();
    format!("bring-up/{GUIDE}:{} {}", block.line, words.join(" "))
}

/// Runs `bash` over `script` in `dir` with `env`, its output to `log`, killed (with its whole
/// process group) after [`BLOCK_TIMEOUT`].
fn run_block(script: &str, dir: &Path, env: &[(&str, String)], log: &Path) -> Result<()> {
    let out = fs::File::create(log)?;
    let mut cmd = util::kernel_cmd("bash");
    cmd.args(["-e", "-o", "pipefail", "-c", script])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        // Users do not set it: bindgen finds Debian's libclang on its own.
        .env_remove("LIBCLANG_PATH")
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().context("cannot start bash")?;
    let output = || util::tail(&fs::read_to_string(log).unwrap_or_default(), 30);
    match util::wait_or_kill(&mut child, true, |t| t > BLOCK_TIMEOUT)? {
        Some(status) if status.success() => Ok(()),
        Some(status) => bail!(
            "exited with {status}; the end of its output ({}):\n{}",
            log.display(),
            output()
        ),
        None => bail!(
            "still running after {} s: killed; the end of its output ({}):\n{}",
            BLOCK_TIMEOUT.as_secs(),
            log.display(),
            output()
        ),
    }
}

/// Environment variables of the guide's shell.
type Env = Vec<(&'static str, String)>;

/// The guide's variables and `PATH`, set to the test bed.
fn environment() -> Result<Env> {
    let kernel = testbed::ensure_kernel(Arch::Arm64, Variant::Default)?;
    let busybox = testbed::ensure_busybox(Arch::Arm64)?;
    util::run(
        Command::new("cargo")
            .args(["build", "--quiet", "-p", "heapgen"])
            .current_dir(repo_root()),
    )?;
    let dir = |p: &Path| -> String {
        p.parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    };
    let heapgen = util::cargo_target_dir().join("debug/heapgen");
    Ok(vec![
        (
            "PATH",
            format!(
                "{}:{}:{}",
                dir(&heapgen),
                dir(&kernel.bindgen),
                util::system_path()
            ),
        ),
        ("KSRC", kernel.src.display().to_string()),
        ("KDIR", kernel.build.display().to_string()),
        ("BUSYBOX", busybox.display().to_string()),
    ])
}

/// Runs the guide; one case per block, then one per test of the suite the guide runs on the
/// booted board.
pub fn run() -> Vec<Case> {
    let guide = repo_root().join(GUIDE);
    let work = repo_root().join("target/bring-up");
    let setup = (|| -> Result<(Vec<Block>, Env)> {
        let blocks = sh_blocks(&fs::read_to_string(&guide)?);
        if blocks.iter().all(|b| b.not_run.is_some()) {
            bail!("{GUIDE} has no sh block to run");
        }
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work)?;
        util::run(
            Command::new("cp")
                .arg("-a")
                .arg(repo_root().join("board-configs"))
                .arg(&work),
        )?;
        Ok((blocks, environment()?))
    })();
    let (blocks, env) = match setup {
        Ok(s) => s,
        Err(e) => return vec![Case::checked("bring-up/setup", Err(e))],
    };
    let mut cases = Vec::new();
    for (n, block) in blocks.iter().enumerate() {
        let name = case_name(block);
        if let Some(why) = &block.not_run {
            cases.push(Case {
                name,
                outcome: Outcome::Skip(why.clone()),
            });
            continue;
        }
        step(format!("bring-up: {name}"));
        let log = work.join(format!("block-{n}.log"));
        // The guide boots QEMU: one guest at a time, as every test-bed boot (dumping QEMU's
        // device tree boots nothing).
        let boots = block.text.contains("qemu-system-") && block.text.contains("-kernel ");
        let guest = boots.then(crate::e2e::one_guest);
        let result = run_block(&block.text, &work, &env, &log);
        drop(guest);
        let failed = result.is_err();
        cases.push(Case::checked(name, result));
        if failed {
            return cases;
        }
    }
    cases.extend(suite_cases(&work.join("console.log")));
    cases
}

/// The on-target suite's results from the console of the guide's QEMU boot, named
/// `bring-up/<program>/<heap>/<test>`.
fn suite_cases(console: &Path) -> Vec<Case> {
    let Ok(text) = fs::read_to_string(console) else {
        return vec![Case {
            name: "bring-up/console".into(),
            outcome: Outcome::Fail(format!(
                "{} is missing: the guide no longer boots the board",
                console.display()
            )),
        }];
    };
    // The guide's init prints the runner's output and powers off: the runner's verdict line is
    // its end (the test bed's own init prints HEAPGEN-E2E-END after it).
    let ended = text.lines().any(|l| l.starts_with("# heapgen-test: "));
    let mut text = text;
    if ended {
        text.push_str("\nHEAPGEN-E2E-END\n");
    }
    ktap::parse(&text, false)
        .cases
        .into_iter()
        .map(|c| Case {
            name: format!("bring-up/{}", c.name),
            outcome: c.outcome,
        })
        .collect()
}

/// `cargo xtask bring-up`.
pub fn cmd_bring_up() -> Result<ktap::Report> {
    Ok(ktap::Report { cases: run() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_come_in_order_with_their_not_run_reasons() {
        let rst = "Title\n=====\n\n.. not-run: placeholders\n\n.. code-block:: sh\n\n   export A=1\n\n\
                   Text.\n\n.. code-block:: sh\n   :caption: x\n\n   make \\\n       all\n\n   echo done\n\n\
                   After.\n\n.. code-block:: toml\n\n   a = 1\n";
        let blocks = sh_blocks(rst);
        assert_eq!(
            blocks,
            vec![
                Block {
                    line: 6,
                    text: "export A=1\n".into(),
                    not_run: Some("placeholders".into()),
                },
                Block {
                    line: 12,
                    text: "make \\\n    all\n\necho done\n".into(),
                    not_run: None,
                },
            ]
        );
        assert_eq!(
            case_name(&blocks[1]),
            "bring-up/Documentation/bring-up.rst:12 make"
        );
    }

    #[test]
    fn the_guide_runs_commands_and_boots_the_board() {
        let rst = fs::read_to_string(repo_root().join(GUIDE)).unwrap();
        let blocks = sh_blocks(&rst);
        let run: Vec<&Block> = blocks.iter().filter(|b| b.not_run.is_none()).collect();
        assert!(run.iter().any(|b| b.text.contains("heapgen import")));
        assert!(run
            .iter()
            .any(|b| b.text.contains("qemu-system-aarch64 -M virt ")));
        assert!(run
            .last()
            .is_some_and(|b| b.text.contains("heapgen-test: passed")));
    }
}
