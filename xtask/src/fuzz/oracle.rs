//! Running one input through the library, and the oracles it must satisfy.
//!
//! In process: no panic; a rejected board has at least one error and renders at most
//! [`heapgen::diag::MAX_KEPT`] diagnostics, with no control character a terminal would act
//! on; an accepted board generates, twice the same bytes (loaded and generated again), and
//! every generated file parses in its language ([`super::lang`]), names no absolute path of the
//! scratch directory, holds nothing of the canary file outside the board directory, and copies
//! hook files verbatim from inside it. Time and memory are measured around all of it.
//!
//! With the binary (a sample): `check` exits 0 or 78 (1 only for I/O), `generate` agrees,
//! writes nothing for a rejected board and exactly the library's files for an accepted one.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::alloc;
use super::lang;
use super::sandbox::Sandbox;

/// The most time one input may take, far above what any takes: a hang, not a slow run.
pub const TIME_LIMIT: Duration = Duration::from_secs(10);

/// The most memory one input may hold at once (check and two generations).
pub const MEMORY_LIMIT: u64 = 100 << 20;

/// One input: the board file's bytes and the name it goes by.
#[derive(Clone, Debug)]
pub struct Input {
    /// The board file.
    pub bytes: Vec<u8>,
    /// The name generated files give it.
    pub source: String,
}

/// What the library made of an input that passed every oracle.
#[derive(Debug)]
pub enum Outcome {
    /// Accepted: the files generated.
    Accepted(heapgen::Generation),
    /// Rejected: the rules of the diagnostics kept, in order.
    Rejected(Vec<&'static str>),
}

/// A broken oracle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// A stable name for this kind of failure (`panic at validate.rs:497`,
    /// `lang yocto/...bb`): findings of one kind are one finding.
    pub kind: String,
    /// What exactly went wrong.
    pub detail: String,
}

impl Failure {
    fn new(kind: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            detail: detail.into(),
        }
    }
}

thread_local! {
    /// Where the last panic of this thread happened, and its message.
    pub static LAST_PANIC: std::cell::RefCell<Option<(String, String)>> =
        const { std::cell::RefCell::new(None) };
    /// Whether this thread runs inputs: its panics are recorded, not printed.
    static RECORDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes the panics of the threads that [`record_panics`] recorded instead of printed; other
/// threads keep the previous hook.
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !RECORDING.with(std::cell::Cell::get) {
                previous(info);
                return;
            }
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some((at, msg)));
        }));
    });
}

/// Records this thread's panics from now on (see [`install_panic_hook`]).
pub fn record_panics() {
    install_panic_hook();
    RECORDING.with(|r| r.set(true));
}

/// Runs `input` through the library with every in-process oracle, measuring time and memory.
pub fn execute(sb: &Sandbox, input: &Input) -> Result<Outcome, Failure> {
    let start = Instant::now();
    let (result, usage) = alloc::measure(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(sb, input)))
    });
    let elapsed = start.elapsed();
    let peak = usage.peak;
    let outcome = match result {
        Ok(r) => r?,
        Err(_) => {
            let (at, msg) = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_default();
            return Err(Failure::new(format!("panic at {at}"), msg));
        }
    };
    if elapsed > TIME_LIMIT {
        return Err(Failure::new("time", format!("{elapsed:?}")));
    }
    if peak > MEMORY_LIMIT {
        return Err(Failure::new("memory", format!("{peak} bytes at peak")));
    }
    Ok(outcome)
}

fn run(sb: &Sandbox, input: &Input) -> Result<Outcome, Failure> {
    let load = || {
        heapgen::load(
            heapgen::Source::bytes("board.toml", &input.bytes)
                .named(&input.source)
                .hooks_in(&sb.board_dir),
        )
    };
    match load() {
        Err(d) => {
            diagnostics(&d)?;
            Ok(Outcome::Rejected(d.rules()))
        }
        Ok(loaded) => {
            if loaded.warnings.errors() > 0 {
                return Err(Failure::new(
                    "accepted with errors",
                    loaded.warnings.render(false),
                ));
            }
            let text = loaded.warnings.render(false);
            no_terminal_controls(&text)?;
            let options = heapgen::Options::default();
            let g = heapgen::generate(&loaded.board, &options)
                .map_err(|e| Failure::new("generate failed", e.to_string()))?;
            // Deterministic: the same input gives the same bytes.
            let again =
                load().map_err(|d| Failure::new("nondeterministic load", d.render(false)))?;
            let g2 = heapgen::generate(&again.board, &options)
                .map_err(|e| Failure::new("generate failed", e.to_string()))?;
            if g != g2 {
                return Err(Failure::new(
                    "nondeterministic output",
                    first_difference(&g, &g2),
                ));
            }
            files(sb, &loaded.board, &g)?;
            Ok(Outcome::Accepted(g))
        }
    }
}

fn first_difference(a: &heapgen::Generation, b: &heapgen::Generation) -> String {
    for (x, y) in a.files.iter().zip(&b.files) {
        if x != y {
            return x.path.clone();
        }
    }
    "file lists differ".to_string()
}

fn no_terminal_controls(text: &str) -> Result<(), Failure> {
    match text.chars().find(|&c| c.is_control() && c != '\n') {
        Some(c) => Err(Failure::new(
            "control character in diagnostics",
            format!("{}", c.escape_unicode()),
        )),
        None => Ok(()),
    }
}

fn diagnostics(d: &heapgen::Diagnostics) -> Result<(), Failure> {
    if d.errors() == 0 {
        return Err(Failure::new("rejected without an error", d.render(false)));
    }
    if d.list.len() > heapgen::diag::MAX_KEPT {
        return Err(Failure::new(
            "too many diagnostics kept",
            d.list.len().to_string(),
        ));
    }
    let text = d.render(false);
    no_terminal_controls(&text)?;
    let shown = text.matches("\nerror[").count() + text.matches("\nwarning[").count();
    if shown > heapgen::diag::MAX_KEPT {
        return Err(Failure::new(
            "too many diagnostics shown",
            shown.to_string(),
        ));
    }
    Ok(())
}

fn files(sb: &Sandbox, board: &heapgen::ir::Board, g: &heapgen::Generation) -> Result<(), Failure> {
    let root = sb.root.to_string_lossy();
    for f in &g.files {
        let text = std::str::from_utf8(&f.contents);
        if f.path.starts_with("hooks/") {
            let hook = board
                .hook_files
                .iter()
                .find(|h| h.path == f.path)
                .ok_or_else(|| Failure::new("unknown hook file", f.path.clone()))?;
            let on_disk = std::fs::read(sb.board_dir.join(&hook.source)).unwrap_or_default();
            if on_disk != f.contents {
                return Err(Failure::new("hook file not verbatim", f.path.clone()));
            }
        }
        if let Some(rel) = module_tree_copy(&f.path) {
            // The Buildroot package's and the Yocto layer's copies of the module's tree: the
            // same bytes as the tree at the root, which the checks below read.
            let root = g.files.iter().find(|r| r.path == rel);
            if root.is_none_or(|r| r.contents != f.contents) {
                return Err(Failure::new("module tree copy differs", f.path.clone()));
            }
            continue;
        }
        if let Some((_, copy)) = f.path.split_once("/files/board/") {
            // The Yocto layer's copy of the board file and its hooks, for heapgen-native.
            let expected = if copy == board.source_file {
                board.source_contents.clone()
            } else if board.hook_files.iter().any(|h| h.source == copy) {
                std::fs::read(sb.board_dir.join(copy)).unwrap_or_default()
            } else {
                return Err(Failure::new("unknown board copy", f.path.clone()));
            };
            if expected != f.contents {
                return Err(Failure::new("board copy not verbatim", f.path.clone()));
            }
            continue;
        }
        if f.path.rsplit('/').next() == Some("COPYING") {
            if f.contents != heapgen::render::COPYING.as_bytes() {
                return Err(Failure::new("COPYING not verbatim", f.path.clone()));
            }
            continue;
        }
        if heapgen::runtime::FILES.iter().any(|r| r.name == f.path) {
            // Copied verbatim from heaps/runtime (the golden tests check them): the same bytes
            // for every board.
            continue;
        }
        let Ok(text) = text else {
            if f.path.starts_with("hooks/") {
                continue;
            }
            return Err(Failure::new("not UTF-8", f.path.clone()));
        };
        if text.contains(sb.canary.trim()) {
            return Err(Failure::new(
                "read outside the board directory",
                format!("{} holds the canary", f.path),
            ));
        }
        if text.contains(&*root) {
            return Err(Failure::new("absolute path in output", f.path.clone()));
        }
        lang::check(&f.path, text).map_err(|e| {
            Failure::new(
                format!("lang {}", language_of(&f.path)),
                format!("{}: {e}", f.path),
            )
        })?;
        if !f.path.starts_with("hooks/") && text.matches("@generated by heapgen").count() != 1 {
            return Err(Failure::new("generated header", f.path.clone()));
        }
    }
    Ok(())
}

/// Where a file of the module's tree copied into the Buildroot package (`src/`) or the Yocto
/// recipe (`files/`, but not its `board/`) is at the root of the output.
fn module_tree_copy(path: &str) -> Option<&str> {
    let rel = if let Some(rest) = path.strip_prefix("buildroot/package/") {
        rest.split_once("/src/")?.1
    } else if let Some(rest) = path.strip_prefix("yocto/recipes-kernel/") {
        rest.split_once("/files/")?.1
    } else {
        return None;
    };
    (!rel.starts_with("board/")).then_some(rel)
}

/// The language of a generated file, for the failure kind (one per language, not per board).
fn language_of(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rsplit_once('.') {
        Some((_, ext)) if !ext.is_empty() => ext,
        _ => name,
    }
}

/// Runs a checker program on `text` on its standard input, within [`TIME_LIMIT`]; `None` when
/// the program is not installed.
fn external(program: &str, args: &[&str], text: &[u8]) -> Option<Result<(), String>> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let text = text.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&text);
    });
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > TIME_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Some(Err(format!("{program} did not finish")));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Some(Err(e.to_string())),
        }
    }
    let _ = writer.join();
    let out = child.wait_with_output().ok()?;
    Some(if out.status.success() && out.stderr.is_empty() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

/// The slow language checks, for a sample of accepted boards: `dtc` on the device-tree
/// fragment, rustfmt on the crate root, docutils on the rst page, each when installed.
pub fn external_checks(g: &heapgen::Generation) -> Result<(), Failure> {
    if let Some(dtsi) = g.get("reserved-memory.dtsi") {
        let mut dts =
            b"/dts-v1/;\n/ {\n\t#address-cells = <2>;\n\t#size-cells = <2>;\n};\n".to_vec();
        dts.extend_from_slice(&dtsi.contents);
        if let Some(Err(e)) = external(
            "dtc",
            &["-I", "dts", "-O", "dtb", "-o", "/dev/null", "-"],
            &dts,
        ) {
            return Err(Failure::new("lang dtsi (dtc)", e));
        }
    }
    for f in &g.files {
        if f.path.ends_with("_main.rs") {
            if let Some(Err(e)) =
                external("rustfmt", &["--edition", "2021", "--check"], &f.contents)
            {
                return Err(Failure::new("lang rs (rustfmt)", e));
            }
        }
        if f.path.ends_with(".rst") {
            let script = "import sys, docutils.core as c; c.publish_string(sys.stdin.read(), \
                          writer_name='null', settings_overrides={'report_level': 2, 'halt_level': 2})";
            if let Some(Err(e)) = external("python3", &["-c", script], &f.contents) {
                if !e.contains("No module named") {
                    return Err(Failure::new("lang rst (docutils)", e));
                }
            }
        }
    }
    Ok(())
}

/// The binary's oracle for one input whose library outcome is `outcome` (for the source name
/// `board.toml`, the name the binary gives a board file in a directory outside any repository).
pub fn binary(
    sb: &Sandbox,
    heapgen: &Path,
    input: &Input,
    outcome: &Outcome,
) -> Result<(), Failure> {
    let io = |e: anyhow::Error| Failure::new("fuzzer I/O", e.to_string());
    std::fs::write(sb.board_dir.join("board.toml"), &input.bytes).map_err(|e| io(e.into()))?;
    let _ = std::fs::remove_dir_all(&sb.out_dir);
    let check = sb
        .run(heapgen, &["check", "board.toml"], TIME_LIMIT)
        .map_err(io)?
        .ok_or_else(|| Failure::new("binary time", "heapgen check did not finish"))?;
    let expected = match outcome {
        Outcome::Accepted(_) => 0,
        Outcome::Rejected(_) => 78,
    };
    if check.code != Some(expected) {
        return Err(Failure::new(
            format!("binary exit {:?}", check.code),
            format!("check: expected {expected}\n{}", check.stderr),
        ));
    }
    let out = sb.out_dir.to_string_lossy().into_owned();
    let gen = sb
        .run(
            heapgen,
            &["generate", "board.toml", "--out", &out],
            TIME_LIMIT,
        )
        .map_err(io)?
        .ok_or_else(|| Failure::new("binary time", "heapgen generate did not finish"))?;
    if gen.code != Some(expected) {
        return Err(Failure::new(
            format!("binary exit {:?}", gen.code),
            format!("generate: expected {expected}\n{}", gen.stderr),
        ));
    }
    match outcome {
        Outcome::Rejected(_) => {
            if sb.out_dir.exists() {
                return Err(Failure::new("written on a rejected board", out));
            }
        }
        Outcome::Accepted(g) => {
            let written = sb.output().map_err(io)?;
            let expected: Vec<(String, Vec<u8>)> = g
                .files
                .iter()
                .map(|f| (f.path.clone(), f.contents.clone()))
                .collect();
            if written != expected {
                return Err(Failure::new(
                    "binary output differs from the library's",
                    format!(
                        "{} files written, {} generated",
                        written.len(),
                        expected.len()
                    ),
                ));
            }
        }
    }
    Ok(())
}
