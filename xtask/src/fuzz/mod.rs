//! `cargo xtask fuzz`: a structure-aware fuzzer of heapgen, in process, on stable Rust.
//!
//! Workers mutate the shipped boards (`board-configs/*.toml`) and the bad-input corpus
//! (`tests/corpus/*.toml`) -- structure-aware on the TOML tree, line by line and byte by byte
//! ([`mutate`]) -- and run each input through the library with every oracle ([`oracle`]): no
//! panic, time and memory bounds, a bounded and inert rendering of the diagnostics, identical
//! bytes when generating twice, every generated file parsing in its own language ([`lang`]),
//! nothing read from outside the board's directory. A sample of the inputs also goes through the
//! real `heapgen` binary (exit codes, nothing written for a rejected board, the library's
//! files for an accepted one) and through `dtc`, rustfmt and docutils. Inputs that give a new
//! outcome (acceptance, or a new set of rules) join the corpus. A watchdog reports an input
//! that runs over the time bound, or a thread parked by the allocator's hard limit.
//!
//! Every finding is minimised (by replaying candidates in a child process, so that hangs are
//! minimised too) and written to `target/fuzz/findings/` with the command that replays it:
//! `cargo xtask fuzz --replay <file> --source <name>`.
//!
//! ```text
//! cargo xtask fuzz --minutes 60            # a campaign on every core
//! cargo xtask fuzz --seconds 60 --threads 1  # what `cargo xtask test` runs
//! ```

pub mod alloc;
pub mod lang;
pub mod limits;
pub mod mutate;
pub mod oracle;
pub mod sandbox;

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::util::{repo_root, step};
use oracle::{Failure, Input, Outcome};
use sandbox::Sandbox;

/// The options of `cargo xtask fuzz`.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Fuzz for N minutes [default: one minute].
    #[arg(long, value_name = "N", conflicts_with = "seconds")]
    pub minutes: Option<u64>,
    /// Fuzz for N seconds.
    #[arg(long, value_name = "N")]
    pub seconds: Option<u64>,
    /// Stop after this many executions.
    #[arg(long, value_name = "N")]
    pub execs: Option<u64>,
    /// Worker threads [default: one per core].
    #[arg(long, value_name = "N", default_value_t = cores(), hide_default_value = true,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub threads: usize,
    /// The random seed (a run is reproducible with one thread).
    #[arg(long, value_name = "N", default_value_t = 0x6865_6170_6765_6e21)]
    pub seed: u64,
    /// The `heapgen` binary for the binary oracle [default: built in release mode].
    #[arg(long, value_name = "PATH")]
    pub heapgen: Option<PathBuf>,
    /// How often a worker runs the binary on its current input.
    #[arg(skip = Duration::from_millis(500))]
    pub binary_every: Duration,
    /// Where findings and the summary go [default: target/fuzz].
    #[arg(long, value_name = "DIR", default_value_os_t = repo_root().join("target/fuzz"),
          hide_default_value = true)]
    pub out: PathBuf,
    /// Replay one input with every oracle instead of fuzzing.
    #[arg(long, value_name = "FILE", conflicts_with = "limits")]
    pub replay: Option<PathBuf>,
    /// The board file name of the replayed input.
    #[arg(long, value_name = "NAME", default_value = "board.toml")]
    pub source: String,
    /// Leave out the binary oracle.
    #[arg(long = "no-binary", action = clap::ArgAction::SetFalse)]
    pub binary: bool,
    /// Measure the crafted worst cases (`limits.rs`) instead of fuzzing.
    #[arg(long)]
    pub limits: bool,
}

/// One worker per core.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Options {
    /// How long to run: `--minutes` or `--seconds`, else a minute.
    pub fn duration(&self) -> Duration {
        match (self.minutes, self.seconds) {
            (Some(m), _) => Duration::from_secs(60 * m),
            (None, Some(s)) => Duration::from_secs(s),
            (None, None) => Duration::from_secs(60),
        }
    }

    /// The command line that gives these options (for the release xtask the debug one runs).
    pub fn args(&self) -> Vec<String> {
        let mut v = vec![
            "--seconds".to_string(),
            self.duration().as_secs().to_string(),
            "--threads".to_string(),
            self.threads.to_string(),
            "--seed".to_string(),
            self.seed.to_string(),
            "--out".to_string(),
            self.out.to_string_lossy().into_owned(),
        ];
        if let Some(n) = self.execs {
            v.extend(["--execs".to_string(), n.to_string()]);
        }
        if !self.binary {
            v.push("--no-binary".to_string());
        }
        if self.limits {
            v.push("--limits".to_string());
        }
        if let Some(r) = &self.replay {
            v.extend([
                "--replay".to_string(),
                r.to_string_lossy().into_owned(),
                "--source".to_string(),
                self.source.clone(),
            ]);
        }
        v
    }
}

/// `cargo xtask fuzz ...`: in a debug build of xtask, builds the release one and runs it (the
/// fuzzer needs the optimised library); there, fuzzes or replays.
pub fn cmd_fuzz(mut o: Options) -> Result<()> {
    if cfg!(debug_assertions) && std::env::var_os("HEAPGEN_FUZZ_DEBUG").is_none() {
        step("fuzz: building the release xtask and heapgen");
        let status = Command::new("cargo")
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "xtask",
                "-p",
                "heapgen",
            ])
            .current_dir(repo_root())
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!("cargo build --release failed");
        }
        let release = crate::util::cargo_target_dir().join("release");
        let mut args = o.args();
        args.extend([
            "--heapgen".to_string(),
            release.join("heapgen").to_string_lossy().into_owned(),
        ]);
        let status = Command::new(release.join("xtask"))
            .arg("fuzz")
            .args(&args)
            .status()
            .context("cannot run the release xtask")?;
        if !status.success() {
            std::process::exit(status.code().unwrap_or(1));
        }
        return Ok(());
    }
    if o.binary && o.heapgen.is_none() {
        o.heapgen = Some(build_heapgen()?);
    }
    // The binary runs in the scratch directory: a relative path would not name it there.
    if let Some(h) = &o.heapgen {
        o.heapgen = Some(std::path::absolute(h)?);
    }
    if o.limits {
        let heapgen = match &o.heapgen {
            Some(h) => h.clone(),
            None => build_heapgen()?,
        };
        return limits::cmd_limits(&repo_root(), &heapgen);
    }
    if let Some(file) = o.replay.clone() {
        return replay(&o, &file);
    }
    let summary = fuzz(&o)?;
    println!("{}", summary.line());
    if summary.findings > 0 {
        bail!(
            "{} finding(s); see {}",
            summary.findings,
            o.out.join("findings").display()
        );
    }
    Ok(())
}

fn build_heapgen() -> Result<PathBuf> {
    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet", "-p", "heapgen"])
        .current_dir(repo_root())
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release -p heapgen failed");
    }
    Ok(crate::util::cargo_target_dir().join("release/heapgen"))
}

/// The seed inputs: the shipped boards and the corpus of broken ones.
pub fn seeds(repo: &Path) -> Result<Vec<Vec<u8>>> {
    let mut v = Vec::new();
    for dir in ["board-configs", "tests/corpus"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo.join(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for f in files {
            v.push(std::fs::read(f)?);
        }
    }
    if v.is_empty() {
        bail!("no seed inputs");
    }
    Ok(v)
}

/// What a fuzzing run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Inputs run through the library with every oracle.
    pub execs: u64,
    /// Of which accepted.
    pub accepted: u64,
    /// Inputs also run through the binary.
    pub binary_runs: u64,
    /// Inputs also checked by `dtc`, rustfmt and docutils.
    pub external_runs: u64,
    /// Wall time.
    pub seconds: f64,
    /// Corpus size at the end.
    pub corpus: usize,
    /// The longest one input took in process.
    pub max_time: Duration,
    /// The most memory one input held at once.
    pub max_peak: u64,
    /// Distinct failures found.
    pub findings: usize,
    /// Worker threads.
    pub threads: usize,
}

impl Summary {
    /// The one-line summary printed at the end.
    pub fn line(&self) -> String {
        format!(
            "fuzz: {} execs in {:.0} s ({:.0}/s, {} threads), {:.0}% accepted, {} binary runs, {} external checks, corpus {}, max {:.3} s and {:.1} MB per input, {} findings",
            self.execs,
            self.seconds,
            self.execs as f64 / self.seconds.max(0.001),
            self.threads,
            100.0 * self.accepted as f64 / self.execs.max(1) as f64,
            self.binary_runs,
            self.external_runs,
            self.corpus,
            self.max_time.as_secs_f64(),
            self.max_peak as f64 / (1 << 20) as f64,
            self.findings,
        )
    }
}

/// The input a worker is running, for the watchdog.
struct Current {
    since: Instant,
    input: Input,
}

struct Shared {
    stop: AtomicBool,
    execs: AtomicU64,
    accepted: AtomicU64,
    binary_runs: AtomicU64,
    external_runs: AtomicU64,
    max_time_ns: AtomicU64,
    max_peak: AtomicU64,
    /// Inputs that were accepted, each with a new outcome: the base of half the mutations.
    accepted_pool: Mutex<Vec<Vec<u8>>>,
    /// Inputs that were rejected with a new set of rules.
    corpus: Mutex<Vec<Vec<u8>>>,
    seen: Mutex<HashSet<u64>>,
    /// The slowest input so far and its time, and the hungriest and its peak.
    slowest: Mutex<(Duration, Option<Input>)>,
    hungriest: Mutex<(u64, Option<Input>)>,
    findings: Mutex<BTreeMap<String, (Failure, Input)>>,
    current: Vec<Mutex<Option<Current>>>,
    /// The workers' scratch directories, removed by the watchdog before it ends the process.
    scratch: Mutex<Vec<PathBuf>>,
}

fn signature(outcome: &Outcome) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match outcome {
        Outcome::Accepted(g) => {
            0u8.hash(&mut h);
            g.files.len().hash(&mut h);
            for f in &g.files {
                if f.path.starts_with("hooks/") {
                    f.path.hash(&mut h);
                }
            }
            g.get("reserved-memory.dtsi").is_some().hash(&mut h);
        }
        Outcome::Rejected(rules) => {
            1u8.hash(&mut h);
            let mut r = rules.clone();
            r.sort_unstable();
            r.dedup();
            r.hash(&mut h);
        }
    }
    h.finish()
}

/// Fuzzes for `o.duration()` (or `o.execs` executions) and saves the minimised findings.
pub fn fuzz(o: &Options) -> Result<Summary> {
    let repo = repo_root();
    let seeds = seeds(&repo)?;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        execs: AtomicU64::new(0),
        accepted: AtomicU64::new(0),
        binary_runs: AtomicU64::new(0),
        external_runs: AtomicU64::new(0),
        max_time_ns: AtomicU64::new(0),
        max_peak: AtomicU64::new(0),
        accepted_pool: Mutex::new(Vec::new()),
        corpus: Mutex::new(seeds.clone()),
        seen: Mutex::new(HashSet::new()),
        slowest: Mutex::new((Duration::ZERO, None)),
        hungriest: Mutex::new((0, None)),
        findings: Mutex::new(BTreeMap::new()),
        current: (0..o.threads).map(|_| Mutex::new(None)).collect(),
        scratch: Mutex::new(Vec::new()),
    });
    let start = Instant::now();
    step(format!(
        "fuzz: {} threads for {} s, {} seeds, seed {}",
        o.threads,
        o.duration().as_secs(),
        seeds.len(),
        o.seed
    ));
    let watchdog = {
        let shared = Arc::clone(&shared);
        let o = o.clone();
        std::thread::spawn(move || watchdog(&o, &shared))
    };
    let mut workers = Vec::new();
    for id in 0..o.threads {
        let shared = Arc::clone(&shared);
        let o = o.clone();
        let repo = repo.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("fuzz-{id}"))
                .stack_size(64 << 20)
                .spawn(move || worker(id, &o, &repo, &shared))?,
        );
    }
    let mut last = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        let execs = shared.execs.load(Ordering::Relaxed);
        if start.elapsed() >= o.duration() || o.execs.is_some_and(|n| execs >= n) {
            shared.stop.store(true, Ordering::SeqCst);
        }
        if last.elapsed() >= Duration::from_secs(10) {
            last = Instant::now();
            let s = summary(&shared, start, o.threads);
            eprintln!("[fuzz] {}", s.line());
        }
    }
    for w in workers {
        if let Err(e) = w.join() {
            bail!("a fuzz worker died: {e:?}");
        }
    }
    let _ = watchdog.join();
    let mut s = summary(&shared, start, o.threads);
    let findings = std::mem::take(&mut *shared.findings.lock().expect("findings"));
    for (failure, input) in findings.values() {
        save_finding(o, failure, input)?;
    }
    s.findings = findings.len();
    write_summary(o, &s)?;
    // The slowest and the hungriest input, to look at (`--replay` runs them).
    for (name, input) in [
        ("slowest", shared.slowest.lock().expect("slowest").1.clone()),
        (
            "hungriest",
            shared.hungriest.lock().expect("hungriest").1.clone(),
        ),
    ] {
        if let Some(input) = input {
            std::fs::write(o.out.join(format!("{name}.toml")), &input.bytes)?;
            std::fs::write(o.out.join(format!("{name}.source")), &input.source)?;
        }
    }
    Ok(s)
}

fn summary(shared: &Shared, start: Instant, threads: usize) -> Summary {
    Summary {
        execs: shared.execs.load(Ordering::Relaxed),
        accepted: shared.accepted.load(Ordering::Relaxed),
        binary_runs: shared.binary_runs.load(Ordering::Relaxed),
        external_runs: shared.external_runs.load(Ordering::Relaxed),
        seconds: start.elapsed().as_secs_f64(),
        corpus: shared.corpus.lock().map_or(0, |c| c.len())
            + shared.accepted_pool.lock().map_or(0, |c| c.len()),
        max_time: Duration::from_nanos(shared.max_time_ns.load(Ordering::Relaxed)),
        max_peak: shared.max_peak.load(Ordering::Relaxed),
        findings: shared.findings.lock().map_or(0, |f| f.len()),
        threads,
    }
}

fn write_summary(o: &Options, s: &Summary) -> Result<()> {
    std::fs::create_dir_all(&o.out)?;
    let json = serde_json::json!({
        "execs": s.execs,
        "accepted": s.accepted,
        "binary_runs": s.binary_runs,
        "external_runs": s.external_runs,
        "seconds": s.seconds,
        "execs_per_second": s.execs as f64 / s.seconds.max(0.001),
        "threads": s.threads,
        "corpus": s.corpus,
        "max_time_seconds": s.max_time.as_secs_f64(),
        "max_peak_bytes": s.max_peak,
        "findings": s.findings,
        "seed": o.seed,
    });
    std::fs::write(
        o.out.join("summary.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    Ok(())
}

fn worker(id: usize, o: &Options, repo: &Path, shared: &Shared) {
    let sb = match Sandbox::new(repo, &format!("w{id}")) {
        Ok(sb) => sb,
        Err(e) => {
            eprintln!("[fuzz] worker {id}: {e:#}");
            shared.stop.store(true, Ordering::SeqCst);
            return;
        }
    };
    if let Ok(mut s) = shared.scratch.lock() {
        s.push(sb.root.clone());
    }
    let mut m = mutate::Mutator::new(o.seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let seeds: Vec<Vec<u8>> = shared.corpus.lock().expect("corpus").clone();
    let mut last_binary = Instant::now();
    let mut last_external = Instant::now();
    oracle::record_panics();
    // A thread that allocates this much above where it started is parked for the watchdog.
    alloc::set_limit(4 << 30);
    while !shared.stop.load(Ordering::Relaxed) {
        let base = {
            // Half the time the smaller of two random entries: small inputs run faster, and
            // the mutations that grow inputs make large ones afresh.
            let pick = |pool: &[Vec<u8>], rng: &mut fastrand::Rng| {
                let a = &pool[rng.usize(..pool.len())];
                let b = &pool[rng.usize(..pool.len())];
                if rng.bool() || a.len() <= b.len() {
                    a.clone()
                } else {
                    b.clone()
                }
            };
            let accepted = shared.accepted_pool.lock().expect("pool");
            if !accepted.is_empty() && m.rng.bool() {
                pick(&accepted, &mut m.rng)
            } else {
                drop(accepted);
                let corpus = shared.corpus.lock().expect("corpus");
                pick(&corpus, &mut m.rng)
            }
        };
        let input = Input {
            bytes: m.mutate(&base, &seeds),
            source: m.source_name(),
        };
        *shared.current[id].lock().expect("current") = Some(Current {
            since: Instant::now(),
            input: input.clone(),
        });
        let start = Instant::now();
        let (result, usage) = alloc::measure(|| oracle::execute(&sb, &input));
        let elapsed = start.elapsed();
        let peak = usage.peak;
        shared
            .max_time_ns
            .fetch_max(elapsed.as_nanos() as u64, Ordering::Relaxed);
        shared.max_peak.fetch_max(peak, Ordering::Relaxed);
        {
            let mut slowest = shared.slowest.lock().expect("slowest");
            if elapsed > slowest.0 {
                *slowest = (elapsed, Some(input.clone()));
            }
            let mut hungriest = shared.hungriest.lock().expect("hungriest");
            if peak > hungriest.0 {
                *hungriest = (peak, Some(input.clone()));
            }
        }
        let result = result.and_then(|outcome| {
            if matches!(outcome, Outcome::Accepted(_))
                && last_external.elapsed() >= Duration::from_secs(2)
            {
                last_external = Instant::now();
                if let Outcome::Accepted(g) = &outcome {
                    oracle::external_checks(g)?;
                    shared.external_runs.fetch_add(1, Ordering::Relaxed);
                }
            }
            if let (true, Some(heapgen)) = (o.binary, &o.heapgen) {
                if input.source == "board.toml" && last_binary.elapsed() >= o.binary_every {
                    last_binary = Instant::now();
                    oracle::binary(&sb, heapgen, &input, &outcome)?;
                    shared.binary_runs.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(outcome)
        });
        *shared.current[id].lock().expect("current") = None;
        shared.execs.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(outcome) => {
                if matches!(outcome, Outcome::Accepted(_)) {
                    shared.accepted.fetch_add(1, Ordering::Relaxed);
                }
                // New outcomes join the corpus, small inputs only: large ones are made
                // afresh by the mutations that grow inputs, and would slow every run after.
                let sig = signature(&outcome);
                if input.bytes.len() <= 32 << 10 && shared.seen.lock().expect("seen").insert(sig) {
                    let pool = match outcome {
                        Outcome::Accepted(_) => &shared.accepted_pool,
                        Outcome::Rejected(_) => &shared.corpus,
                    };
                    let mut pool = pool.lock().expect("corpus");
                    if pool.len() < 20_000 {
                        pool.push(input.bytes);
                    }
                }
            }
            Err(f) => {
                let mut findings = shared.findings.lock().expect("findings");
                if !findings.contains_key(&f.kind) {
                    eprintln!("[fuzz] finding: {}: {}", f.kind, first_line(&f.detail));
                    findings.insert(f.kind.clone(), (f, input));
                }
            }
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// Reports an input that runs over the time bound (a hang, or a thread parked by the
/// allocator's hard limit), then ends the process: the stuck worker cannot be stopped.
fn watchdog(o: &Options, shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(250));
        for slot in &shared.current {
            let stuck = slot.lock().ok().and_then(|c| {
                c.as_ref()
                    .filter(|c| c.since.elapsed() > oracle::TIME_LIMIT * 2)
                    .map(|c| c.input.clone())
            });
            let Some(input) = stuck else { continue };
            let kind = if alloc::OVER_LIMIT.load(Ordering::SeqCst) {
                "memory (hard limit)"
            } else {
                "time"
            };
            let failure = Failure {
                kind: kind.to_string(),
                detail: format!("over {:?}", oracle::TIME_LIMIT * 2),
            };
            eprintln!("[fuzz] finding: {kind}: a worker is stuck; minimising and stopping");
            let _ = save_finding(o, &failure, &input);
            if let Ok(dirs) = shared.scratch.lock() {
                for d in dirs.iter() {
                    let _ = std::fs::remove_dir_all(d);
                }
            }
            std::process::exit(2);
        }
    }
}

/// Replays one input: prints `ok`, or `FAIL\t<kind>\t<detail>` and exits 3.
fn replay(o: &Options, file: &Path) -> Result<()> {
    let bytes = std::fs::read(file)?;
    let input = Input {
        bytes,
        source: o.source.clone(),
    };
    let sb = Sandbox::new(&repo_root(), "replay")?;
    oracle::record_panics();
    alloc::set_limit(4 << 30);
    let result = oracle::execute(&sb, &input).and_then(|outcome| {
        if let Outcome::Accepted(g) = &outcome {
            oracle::external_checks(g)?;
        }
        if let (true, Some(h)) = (o.binary, &o.heapgen) {
            if input.source == "board.toml" {
                oracle::binary(&sb, h, &input, &outcome)?;
            }
        }
        Ok(outcome)
    });
    match result {
        Ok(_) => {
            println!("ok");
            Ok(())
        }
        Err(f) => {
            println!("FAIL\t{}\t{}", f.kind, first_line(&f.detail));
            drop(sb);
            std::process::exit(3);
        }
    }
}

/// Whether replaying `bytes` in a child process still fails with `kind`.
fn still_fails(o: &Options, source: &str, kind: &str, bytes: &[u8]) -> bool {
    let Ok(dir) = tempfile::tempdir() else {
        return false;
    };
    let file = dir.path().join("candidate.toml");
    if std::fs::write(&file, bytes).is_err() {
        return false;
    }
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    let mut cmd = Command::new(exe);
    // The child's scratch directory goes below ours, so that a child killed for hanging leaves
    // nothing behind when ours is removed.
    cmd.env("TMPDIR", dir.path())
        .arg("fuzz")
        .arg("--replay")
        .arg(&file)
        .arg("--source")
        .arg(source)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    if let Some(h) = &o.heapgen {
        cmd.arg("--heapgen").arg(h);
    }
    if !o.binary {
        cmd.arg("--no-binary");
    }
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > oracle::TIME_LIMIT * 2 => {
                let _ = child.kill();
                let _ = child.wait();
                return kind == "time" || kind.starts_with("memory");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => return false,
        }
    }
    let Ok(out) = child.wait_with_output() else {
        return false;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().any(|l| {
        l.strip_prefix("FAIL\t")
            .is_some_and(|r| r.split('\t').next() == Some(kind))
    })
}

/// Shrinks `input` while `fails` holds: whole line ranges first, then byte ranges, halving
/// the chunk size (delta debugging, one-minimal at the granularity reached), at most `budget`
/// tries.
pub fn minimise(input: &[u8], mut fails: impl FnMut(&[u8]) -> bool, budget: usize) -> Vec<u8> {
    let mut cur = input.to_vec();
    let mut tries = 0;
    for by_lines in [true, false] {
        let units = |v: &[u8]| -> Vec<(usize, usize)> {
            if by_lines {
                let mut out = Vec::new();
                let mut start = 0;
                for (i, &b) in v.iter().enumerate() {
                    if b == b'\n' {
                        out.push((start, i + 1));
                        start = i + 1;
                    }
                }
                if start < v.len() {
                    out.push((start, v.len()));
                }
                out
            } else {
                (0..v.len()).map(|i| (i, i + 1)).collect()
            }
        };
        let mut chunk = units(&cur).len().div_ceil(2).max(1);
        loop {
            let u = units(&cur);
            let mut i = 0;
            let mut changed = false;
            while i < u.len() {
                if tries >= budget {
                    return cur;
                }
                let (start, end) = (u[i].0, u[(i + chunk).min(u.len()) - 1].1);
                let mut cand = cur[..start].to_vec();
                cand.extend_from_slice(&cur[end..]);
                tries += 1;
                if fails(&cand) {
                    cur = cand;
                    changed = true;
                    break;
                }
                i += chunk;
            }
            if changed {
                continue;
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }
    cur
}

fn save_finding(o: &Options, failure: &Failure, input: &Input) -> Result<()> {
    let dir = o.out.join("findings");
    std::fs::create_dir_all(&dir)?;
    // A hang costs a replay its whole time limit: fewer tries for those.
    let slow = failure.kind == "time" || failure.kind.starts_with("memory");
    let min = minimise(
        &input.bytes,
        |b| still_fails(o, &input.source, &failure.kind, b),
        if slow { 30 } else { 400 },
    );
    let mut h = std::collections::hash_map::DefaultHasher::new();
    failure.kind.hash(&mut h);
    min.hash(&mut h);
    let slug: String = failure
        .kind
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let stem = format!("{}-{:08x}", slug.trim_matches('-'), h.finish() as u32);
    let file = dir.join(format!("{stem}.toml"));
    std::fs::write(&file, &min)?;
    std::fs::write(dir.join(format!("{stem}.orig.toml")), &input.bytes)?;
    std::fs::write(
        dir.join(format!("{stem}.txt")),
        format!(
            "kind: {}\nsource: {:?}\noriginal: {} bytes\nminimised: {} bytes\nreplay: cargo xtask fuzz --replay {} --source '{}'\n\n{}\n",
            failure.kind,
            input.source,
            input.bytes.len(),
            min.len(),
            file.display(),
            input.source,
            failure.detail
        ),
    )?;
    eprintln!(
        "[fuzz] {}: minimised {} -> {} bytes: {}",
        failure.kind,
        input.bytes.len(),
        min.len(),
        file.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimising_keeps_the_failure_and_drops_the_rest() {
        let input = b"a = 1\nbad = 2\nc = 3\nd = 4\n";
        let min = minimise(input, |b| b.windows(3).any(|w| w == b"bad"), 1000);
        assert_eq!(min, b"bad");
    }

    #[test]
    fn mutations_are_reproducible_and_vary() {
        let seeds = seeds(&repo_root()).expect("seeds");
        let run = |seed| {
            let mut m = mutate::Mutator::new(seed);
            (0..50)
                .map(|i| m.mutate(&seeds[i % seeds.len()], &seeds))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        let a = run(2);
        let distinct: HashSet<&Vec<u8>> = a.iter().collect();
        assert!(distinct.len() > 40, "{}", distinct.len());
    }

    /// A few hundred inputs with every in-process oracle (the binary is left out: the test
    /// binary cannot build it).
    #[test]
    fn a_short_run_finds_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = Options {
            minutes: None,
            seconds: Some(600),
            execs: Some(300),
            threads: 1,
            seed: 7,
            heapgen: None,
            binary_every: Duration::from_secs(3600),
            out: dir.path().to_path_buf(),
            replay: None,
            source: "board.toml".into(),
            binary: false,
            limits: false,
        };
        let s = fuzz(&o).expect("runs");
        assert!(s.execs >= 300);
        assert_eq!(s.findings, 0, "{}", s.line());
    }

    /// Every shipped board passes every in-process oracle: the checkers accept what the
    /// generator really writes (whether a short run's mutations get a board accepted depends on
    /// the seed and the corpus).
    #[test]
    fn the_shipped_boards_pass_every_oracle() {
        let sb = Sandbox::new(&repo_root(), "test").expect("sandbox");
        let boards = repo_root().join("board-configs");
        let mut n = 0;
        for e in std::fs::read_dir(&boards).expect("board-configs") {
            let p = e.expect("entry").path();
            if p.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let input = Input {
                bytes: std::fs::read(&p).expect("board"),
                source: "board.toml".into(),
            };
            match oracle::execute(&sb, &input) {
                Ok(Outcome::Accepted(g)) => assert!(g.files.len() > 20),
                other => panic!("{}: {other:?}", p.display()),
            }
            n += 1;
        }
        assert!(n >= 4);
    }

    #[test]
    fn the_oracles_catch_what_the_issue_found() {
        // Injection into BitBake, a broken DT comment, Rust lines from a file name.
        assert!(lang::check(
            "yocto/recipes-kernel/b-heaps/b-heaps_0.1.0.bb",
            "DESCRIPTION = \"a\"b ${@os.system('id')}\"\n"
        )
        .is_err());
        assert!(lang::check("reserved-memory.dtsi", "/* from a/*/b.toml */\n").is_err());
        assert!(lang::check("b_heaps_main.rs", "// from x\nfn main() {}\n.toml\n").is_err());
    }
}
