//! `cargo xtask fuzz --limits`: board files of the size cap crafted against each part of the
//! pipeline, checked by the real binary, with the time and memory each takes.
//!
//! The files go to `target/limits/`. Each is checked three times under `/usr/bin/time`; the
//! worst wall time, CPU time (user and system) and peak resident set are printed. Bound: 0.5 s
//! of CPU and 100 MB.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The most CPU time and memory `heapgen check` may take on a file up to the size cap.
const CPU_BOUND: Duration = Duration::from_millis(500);
const RSS_BOUND: u64 = 100 << 20;

/// `prefix`, then `unit` as many times as fits in the size cap.
fn fill(prefix: &str, unit: &str) -> String {
    let cap = heapgen::MAX_BOARD_FILE as usize;
    let n = cap.saturating_sub(prefix.len()) / unit.len();
    format!("{prefix}{}", unit.repeat(n))
}

/// The crafted files: a name, what it targets, and its text.
pub fn cases(repo: &Path) -> Result<Vec<(&'static str, String)>> {
    let head = "schema-version = 1\n[board]\nname = \"b\"\narch = \"arm64\"\n";
    let name = |i: usize| format!("{i:0>60}");
    let mut v: Vec<(&'static str, String)> = vec![
        ("dots", fill("", ".")),
        ("equals-lines", fill("", "=\n")),
        ("dotted-key", fill("", "a.")),
        ("open-brackets", fill("a = ", "[")),
        ("tables-and-arrays", fill("", "[[x]]\n[x]\n")),
        ("quotes", fill("", "\"\n")),
        (
            "unknown-keys",
            format!(
                "{head}{}",
                (0..36_000)
                    .map(|i| format!("k{i} = {i}\n"))
                    .collect::<String>()
            ),
        ),
        (
            "unknown-keys-one-line",
            format!(
                "schema-version = 1\nboard = {{ {} }}\n",
                (0..42_000)
                    .map(|i| format!("k{i} = 1"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        ("huge-key", format!("{head}{} = 1\n", "k".repeat(500_000))),
        ("empty-regions", fill(head, "[[region]]\n")),
        (
            "tables",
            (0..55_000).map(|i| format!("[t{i}]\n")).collect::<String>(),
        ),
        (
            "huge-description",
            format!(
                "{head}description = \"{}\"\n[[region]]\nname = \"r\"\ncma = \"a\"\nheap = \"h\"\n",
                "d".repeat(500_000)
            ),
        ),
    ];
    let mut clique = head.to_string();
    for i in 0..128 {
        let others: Vec<String> = (0..128)
            .filter(|&j| j != i)
            .map(|j| format!("\"r{j}\""))
            .collect();
        clique.push_str(&format!(
            "[[region]]\nname = \"r{i}\"\ncma = \"c{i}\"\nheap = \"h{i}\"\nfallback = [{}]\n",
            others.join(", ")
        ));
    }
    v.push(("fallback-clique", clique));
    let mut unknown = head.to_string();
    for i in 0..128 {
        unknown.push_str(&format!(
            "[[region]]\nname = \"{}\"\ncma = \"c{i}\"\nheap = \"h{i}\"\n",
            name(i)
        ));
    }
    let entries: Vec<String> = (0..6_400)
        .map(|i| format!("\"{}\"", name(i + 1000)))
        .collect();
    unknown.push_str(&format!("fallback = [{}]\n", entries.join(", ")));
    v.push(("unknown-fallbacks", unknown));
    v.push((
        "alloc-ranges",
        format!(
            "{head}[[region]]\nname = \"r\"\ncma = \"r\"\nheap = \"h\"\nreserve = {{ size = \"4M\", alloc-ranges = [{}] }}\n",
            vec!["[0x40000000, \"1G\"]"; 25_000].join(", ")
        ),
    ));
    let mut overlapping = head.to_string();
    for i in 0..128u64 {
        overlapping.push_str(&format!(
            "[[region]]\nname = \"r{i}\"\ncma = \"c{i}@{:x}\"\nheap = \"h{i}\"\nreserve = {{ base = {}, size = \"8M\" }}\n",
            i * (4 << 20),
            i * (4 << 20)
        ));
    }
    v.push(("overlapping-reserves", overlapping));
    let valid = std::fs::read_to_string(repo.join("board-configs/qemu-arm64.toml"))?;
    let padding = format!("# {}\n", "x".repeat(77));
    v.push(("valid-padded", fill(&valid, &padding)));
    for (name, text) in &v {
        if text.len() as u64 > heapgen::MAX_BOARD_FILE {
            bail!("{name} is over the size cap");
        }
    }
    Ok(v)
}

/// One run under `/usr/bin/time`: wall time, CPU time (user and system), peak RSS and the
/// exit code of `heapgen args...` in `dir`. (`/usr/bin/time` forks from a small process: the
/// peak of a child spawned from xtask itself would start at xtask's own.)
fn run(heapgen: &Path, dir: &Path, args: &[&str]) -> Result<(Duration, Duration, u64, i32)> {
    let report = dir.join("time.txt");
    let status = Command::new("/usr/bin/time")
        .arg("-o")
        .arg(&report)
        .args(["-f", "%e %U %S %M %x"])
        .arg(heapgen)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("cannot run /usr/bin/time (Debian: apt-get install time)")?;
    let text = std::fs::read_to_string(&report)?;
    // The figures are on the last line (a first one says when the exit status is not 0).
    let f: Vec<&str> = text
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let secs = |s: &str| -> Result<Duration> { Ok(Duration::from_secs_f64(s.parse()?)) };
    let [wall, user, sys, rss, code] = f[..] else {
        bail!("unexpected /usr/bin/time output {text:?} ({status})");
    };
    Ok((
        secs(wall)?,
        secs(user)? + secs(sys)?,
        rss.parse::<u64>()? * 1024,
        code.parse()?,
    ))
}

/// Writes the crafted files, checks each three times, prints the worst figures, and fails
/// when one is over the bounds.
pub fn cmd_limits(repo: &Path, heapgen: &Path) -> Result<()> {
    let dir = repo.join("target/limits");
    std::fs::create_dir_all(dir.join("hooks"))?;
    for e in std::fs::read_dir(repo.join("board-configs/hooks"))? {
        let e = e?;
        std::fs::copy(e.path(), dir.join("hooks").join(e.file_name()))?;
    }
    println!(
        "{:<24} {:>8} {:>6} {:>9} {:>9} {:>9}",
        "FILE", "BYTES", "EXIT", "WALL", "CPU", "MAX RSS"
    );
    let mut over = Vec::new();
    for (name, text) in cases(repo)? {
        let file = format!("{name}.toml");
        std::fs::write(dir.join(&file), &text)?;
        let mut worst = (Duration::ZERO, Duration::ZERO, 0u64, 0);
        for _ in 0..3 {
            let (wall, cpu, rss, code) = run(heapgen, &dir, &["check", &file])?;
            worst = (worst.0.max(wall), worst.1.max(cpu), worst.2.max(rss), code);
        }
        println!(
            "{:<24} {:>8} {:>6} {:>7.3} s {:>7.3} s {:>6.1} MB",
            name,
            text.len(),
            worst.3,
            worst.0.as_secs_f64(),
            worst.1.as_secs_f64(),
            worst.2 as f64 / (1 << 20) as f64
        );
        if worst.1 > CPU_BOUND || worst.2 > RSS_BOUND || ![0, 78].contains(&worst.3) {
            over.push(name);
        }
    }
    if !over.is_empty() {
        bail!("over 0.5 s of CPU or 100 MB, or a bad exit code: {over:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every crafted file fits the cap and is what it means to be: refused, except the valid
    /// board padded to the cap.
    #[test]
    fn the_crafted_files_are_what_they_claim() {
        let repo = crate::util::repo_root();
        for (name, text) in cases(&repo).expect("cases") {
            let loaded = heapgen::load(
                heapgen::Source::bytes("b.toml", text.as_bytes())
                    .hooks_in(&repo.join("board-configs")),
            );
            assert_eq!(loaded.is_ok(), name == "valid-padded", "{name}");
        }
    }
}
