//! Parsing a guest console log: KTAP results per test program run, and kernel reports.
//!
//! The guest's /init prints `# heapgen-run: <program> <heap>` before each program and
//! `# heapgen-exit: <program> <heap> <rc>` after it, and `HEAPGEN-E2E-END` at the very end.

/// The outcome of one test case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `ok`.
    Pass,
    /// `ok ... # SKIP`.
    Skip(String),
    /// `not ok`, or a harness-level failure (crash, missing results, kernel report).
    Fail(String),
}

/// One test case result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// `<program>/<heap>/<test>`.
    pub name: String,
    /// Its outcome.
    pub outcome: Outcome,
}

impl Case {
    /// The case `name` of a check that passed (`Ok`) or failed with the error's chain, which is
    /// printed at once (`FAIL <name>: ...`) as well.
    pub fn checked(name: impl Into<String>, result: anyhow::Result<()>) -> Self {
        let name = name.into();
        let outcome = match result {
            Ok(()) => Outcome::Pass,
            Err(e) => {
                let why = format!("{e:#}");
                eprintln!("FAIL {name}: {why}");
                Outcome::Fail(why)
            }
        };
        Case { name, outcome }
    }
}

/// Everything a console log says.
#[derive(Debug, Default)]
pub struct Report {
    /// Test cases in order.
    pub cases: Vec<Case>,
}

impl Report {
    /// Number of passed cases.
    pub fn passed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Pass))
    }

    /// Number of failed cases.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Fail(_)))
    }

    /// Number of skipped cases.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skip(_)))
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.cases.iter().filter(|c| f(&c.outcome)).count()
    }

    fn fail(&mut self, name: impl Into<String>, why: impl Into<String>) {
        self.cases.push(Case {
            name: name.into(),
            outcome: Outcome::Fail(why.into()),
        });
    }
}

/// Console lines that mean the kernel is unhappy, whatever the tests said.
const KERNEL_REPORTS: &[&str] = &[
    "------------[ cut here ]------------",
    "Oops",
    "BUG:",
    "WARNING:",
    "Kernel panic",
    "KASAN:",
    "UBSAN:",
    "suspected memory leak",
    "possible circular locking",
    "possible recursive locking",
    "inconsistent lock state",
    "suspicious RCU usage",
    "general protection fault",
    "Call Trace:",
    "rcu_sched self-detected stall",
    "soft lockup",
    "hung_task",
    "blocked for more than",
    "detected stalls",
    "enqueued on deprecated workqueue",
    "CFI failure",
];

/// Strips a `[   1.234567] ` printk timestamp.
fn strip_timestamp(line: &str) -> &str {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix('[') {
        if let Some((stamp, after)) = rest.split_once(']') {
            if stamp.trim().chars().all(|c| c.is_ascii_digit() || c == '.') {
                return after.trim_start();
            }
        }
    }
    line
}

/// Where a printk timestamp (`[<seconds>.<6 digits>] `) starts in `line`, if one does.
fn timestamp_at(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    line.match_indices('[').map(|(i, _)| i).find(|&i| {
        let Some(end) = line[i..].find("] ").map(|e| i + e) else {
            return false;
        };
        let stamp = line[i + 1..end].trim_start();
        let Some((secs, micros)) = stamp.split_once('.') else {
            return false;
        };
        !secs.is_empty()
            && secs.bytes().all(|b| b.is_ascii_digit())
            && micros.len() == 6
            && micros.bytes().all(|b| b.is_ascii_digit())
            && bytes.get(end + 2).is_some()
    })
}

/// The console's lines with kernel records taken out of the runner's lines they landed in.
///
/// The runner writes through the tty layer, which sends a line in chunks; the console driver
/// prints a kernel record whole, whenever it comes, so a record can split a runner's line in
/// two (`ok 1 glo[   12.3] record` then `bal.zeroed`). A record is recognised by its printk
/// timestamp after some of a runner's line; the runner's line is put back together from the
/// text before the record and the next line that is not a kernel record. The runner quoting
/// the kernel log (`# [   12.3] record`) is no splice.
fn unsplice(console: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pending: Option<String> = None;
    for raw in console.lines() {
        let line = raw.trim_end_matches('\r');
        match timestamp_at(line) {
            Some(0) => lines.push(line.to_string()),
            Some(at) if is_runner_text(&line[..at]) => {
                pending
                    .get_or_insert_with(String::new)
                    .push_str(&line[..at]);
                lines.push(line[at..].to_string());
            }
            _ => match pending.take() {
                Some(mut head) => {
                    head.push_str(line);
                    lines.push(head);
                }
                None => lines.push(line.to_string()),
            },
        }
    }
    lines.extend(pending);
    lines
}

/// Whether `head`, the text before a kernel record on a console line, is part of a runner's
/// line: not the runner quoting the kernel log (`# `), not the firmware's terminal control
/// sequences before the kernel's first line.
fn is_runner_text(head: &str) -> bool {
    !head.trim_start_matches(['#', ' ']).is_empty() && !head.chars().any(char::is_control)
}

/// Parses a `ok N name` / `not ok N name # SKIP why` line at the top level.
fn parse_result(line: &str) -> Option<(bool, String, Option<String>)> {
    let (ok, rest) = if let Some(r) = line.strip_prefix("not ok ") {
        (false, r)
    } else if let Some(r) = line.strip_prefix("ok ") {
        (true, r)
    } else {
        return None;
    };
    let (num, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if num.parse::<u32>().is_err() {
        return None;
    }
    let (name, directive) = if let Some(d) = rest.strip_prefix("# ") {
        ("", Some(d.trim()))
    } else {
        match rest.split_once(" # ") {
            Some((n, d)) => (n.trim(), Some(d.trim())),
            None => (rest.trim(), None),
        }
    };
    let skip = directive
        .filter(|d| d.to_ascii_uppercase().starts_with("SKIP"))
        .map(|d| d[4..].trim().to_string());
    Some((ok, name.to_string(), skip))
}

/// Parses a whole console log. `timed_out` says QEMU was killed by the harness's timeout.
pub fn parse(console: &str, timed_out: bool) -> Report {
    let mut report = Report::default();
    let mut current: Option<(String, String, usize, Option<usize>)> = None; // program, heap, results, plan
    let mut ended = false;
    for raw in unsplice(console) {
        let line = strip_timestamp(&raw);
        if let Some(pattern) = KERNEL_REPORTS.iter().find(|p| line.contains(*p)) {
            report.fail(
                "kernel/console",
                format!("kernel report `{pattern}` in the console: {}", line.trim()),
            );
        }
        if line.trim() == "HEAPGEN-E2E-END" {
            ended = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# heapgen-run: ") {
            if let Some((program, heap, _, _)) = current.take() {
                report.fail(
                    format!("{program}/{heap}"),
                    "no exit marker (crashed or hung)",
                );
            }
            let mut it = rest.split_whitespace();
            let program = it.next().unwrap_or("?").to_string();
            let heap = it.next().unwrap_or("?").to_string();
            current = Some((program, heap, 0, None));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# heapgen-exit: ") {
            let rc: i32 = rest
                .split_whitespace()
                .nth(2)
                .and_then(|s| s.parse().ok())
                .unwrap_or(-1);
            if let Some((program, heap, results, plan)) = current.take() {
                let failed_before = report.cases.iter().any(|c| {
                    c.name.starts_with(&format!("{program}/{heap}/"))
                        && matches!(c.outcome, Outcome::Fail(_))
                });
                if let Some(plan) = plan {
                    if results < plan {
                        report.fail(
                            format!("{program}/{heap}"),
                            format!("only {results} of {plan} planned results"),
                        );
                    }
                }
                // A plan of `1..0` announces a run with nothing to test (no upstream heap to
                // judge, say), which is no failure when the program says so and exits 0.
                if results == 0 && !(plan == Some(0) && rc == 0) {
                    report.fail(
                        format!("{program}/{heap}"),
                        format!("no results (exit code {rc})"),
                    );
                } else if rc != 0 && !failed_before {
                    report.fail(
                        format!("{program}/{heap}"),
                        format!("exit code {rc} with no failing test"),
                    );
                }
            }
            continue;
        }
        let Some((program, heap, results, plan)) = current.as_mut() else {
            continue;
        };
        if let Some(n) = line.strip_prefix("1..") {
            if let Ok(n) = n.trim().parse::<usize>() {
                *plan = Some(n);
            }
            continue;
        }
        if let Some((ok, name, skip)) = parse_result(line) {
            *results += 1;
            let outcome = match (ok, skip) {
                (_, Some(why)) => Outcome::Skip(why),
                (true, None) => Outcome::Pass,
                (false, None) => Outcome::Fail("not ok".into()),
            };
            let name = format!("{program}/{heap}/{name}");
            report.cases.push(Case { name, outcome });
        }
    }
    if let Some((program, heap, _, _)) = current.take() {
        report.fail(
            format!("{program}/{heap}"),
            "no exit marker (crashed or hung)",
        );
    }
    if !ended {
        report.fail(
            "guest/end-marker",
            if timed_out {
                "the guest timed out before HEAPGEN-E2E-END (hung?)"
            } else {
                "the guest stopped before HEAPGEN-E2E-END"
            },
        );
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
[    0.500000] heapgen: loaded
# heapgen-run: heap_test qemu-cma
TAP version 13
1..2
# Starting 2 tests from 1 test cases.
#  RUN           global.zeroed ...
#            OK  global.zeroed
ok 1 global.zeroed
ok 2 global.huge # SKIP not enough memory
# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:1 error:0
# heapgen-exit: heap_test qemu-cma 0
HEAPGEN-E2E-END
";

    #[test]
    fn passing_run_is_counted() {
        let r = parse(GOOD, false);
        assert_eq!((r.passed(), r.failed(), r.skipped()), (1, 0, 1));
        assert_eq!(r.cases[0].name, "heap_test/qemu-cma/global.zeroed");
    }

    #[test]
    fn failing_guest_test_fails() {
        let log = GOOD.replace("ok 1 global.zeroed", "not ok 1 global.zeroed");
        let r = parse(&log, false);
        assert_eq!(r.failed(), 1);
        assert_eq!(r.cases[0].outcome, Outcome::Fail("not ok".into()));
    }

    #[test]
    fn kernel_warning_fails_and_is_named() {
        let log = GOOD.replace(
            "[    0.500000] heapgen: loaded",
            "[    0.500000] WARNING: CPU: 0 PID: 1 at mm/cma.c:42 cma_release+0x1/0x2",
        );
        let r = parse(&log, false);
        assert_eq!(r.failed(), 1);
        let Outcome::Fail(why) = &r.cases[0].outcome else {
            panic!("expected a failure")
        };
        assert!(
            why.contains("WARNING:") && why.contains("mm/cma.c:42"),
            "{why}"
        );
    }

    #[test]
    fn kmemleak_reports_fail_but_its_notices_do_not() {
        // At full log level the debug kernels print kmemleak's start-up notices.
        let notices = GOOD.replace(
            "[    0.500000] heapgen: loaded",
            "[    0.100000] kmemleak: Kernel memory leak detector initialized (mem pool available: 15209)\n[    0.200000] kmemleak: Automatic memory scanning thread started",
        );
        assert_eq!(parse(&notices, false).failed(), 0);
        let leak = GOOD.replace(
            "[    0.500000] heapgen: loaded",
            "[   60.000000] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
        );
        assert_eq!(parse(&leak, false).failed(), 1);
    }

    #[test]
    fn hung_guest_fails_with_timeout() {
        let log = GOOD.split("# heapgen-exit").next().unwrap();
        let r = parse(log, true);
        let reasons: Vec<String> = r
            .cases
            .iter()
            .filter_map(|c| match &c.outcome {
                Outcome::Fail(w) => Some(format!("{}: {w}", c.name)),
                _ => None,
            })
            .collect();
        assert!(
            reasons.iter().any(|r| r.contains("no exit marker")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("timed out")),
            "{reasons:?}"
        );
    }

    #[test]
    fn nameless_skip_is_a_skip() {
        let log = GOOD.replace(
            "ok 2 global.huge # SKIP not enough memory",
            "ok 2 # SKIP Could not open vgem -1",
        );
        let r = parse(&log, false);
        assert_eq!(r.skipped(), 1);
        assert_eq!(
            r.cases[1].outcome,
            Outcome::Skip("Could not open vgem -1".into())
        );
    }

    #[test]
    fn crash_without_results_fails() {
        let log = "# heapgen-run: heap_test h\nSegmentation fault\n# heapgen-exit: heap_test h 139\nHEAPGEN-E2E-END\n";
        let r = parse(log, false);
        assert_eq!(r.failed(), 1);
    }

    #[test]
    fn an_empty_plan_is_no_failure_unless_the_program_fails() {
        let empty = "# heapgen-run: upstream-heaps all\nTAP version 13\n1..0\n# heapgen-exit: upstream-heaps all 0\nHEAPGEN-E2E-END\n";
        let r = parse(empty, false);
        assert_eq!(r.failed(), 0, "{:?}", r.cases);
        let r = parse(&empty.replace("all 0", "all 1"), false);
        assert_eq!(r.failed(), 1, "{:?}", r.cases);
        let r = parse(&empty.replace("1..0\n", ""), false);
        assert_eq!(r.failed(), 1, "{:?}", r.cases);
    }

    /// `log` reads as [`GOOD`] does: one pass, one skip, nothing failed.
    fn assert_reads_as_good(log: &str) {
        let r = parse(log, false);
        let counts = (r.passed(), r.failed(), r.skipped());
        assert_eq!(counts, (1, 0, 1), "{log}\n{:?}", r.cases);
        assert_eq!(r.cases[0].name, "heap_test/qemu-cma/global.zeroed");
    }

    /// The guest's console carries two streams: the runner's output through the tty layer
    /// and kernel records printed by the console driver. A record can land in the middle of
    /// a runner's line the tty has not sent yet (CI saw `dma-debug/all: exit code -1 with no
    /// failing test`, the exit marker split by the record the runner wrote to /dev/kmsg
    /// right after it).
    #[test]
    fn kernel_records_spliced_into_a_line_are_taken_out() {
        // Just before the line's newline, in the middle of it, several records in a row,
        // and in the end marker.
        for (from, to) in [
            (
                "# heapgen-exit: heap_test qemu-cma 0\n",
                "# heapgen-exit: heap_test qemu-cma 0[   12.345678] heapgen-test: mark 77\n\n",
            ),
            (
                "# heapgen-exit: heap_test qemu-cma 0\n",
                "# heapgen-exit: heap_te[   12.345678] heapgen-test: mark\nst qemu-cma 0\n",
            ),
            (
                "ok 1 global.zeroed\n",
                "ok 1 glo[ 12.345678] one\n[ 12.345679] two\nbal.z[ 12.345680] three\neroed\n",
            ),
            (
                "HEAPGEN-E2E-END\n",
                "HEAPGEN-E2E[   12.345678] reboot: Restarting system\n-END\n",
            ),
        ] {
            assert_reads_as_good(&GOOD.replace(from, to));
        }
    }

    /// A kernel report spliced into a runner's line is still seen; the kernel log the runner
    /// quotes (`# [ ... ] ...`) and the firmware's terminal control sequences before the
    /// kernel's first line are no splice.
    #[test]
    fn spliced_reports_fail_and_quoted_records_stay_whole() {
        let log = GOOD.replace(
            "ok 1 global.zeroed\n",
            "ok 1 global.[   12.345678] WARNING: CPU: 0 PID: 1 at mm/cma.c:42\nzeroed\n",
        );
        let r = parse(&log, false);
        assert_eq!(r.failed(), 1, "{:?}", r.cases);
        let zeroed = r.cases.iter().find(|c| c.name.ends_with("global.zeroed"));
        assert_eq!(zeroed.map(|c| &c.outcome), Some(&Outcome::Pass));

        for (from, to) in [
            (
                "# Totals:",
                "# [   12.345678] heapgen: quoted\n#  [   12.345679] quoted too\n# Totals:",
            ),
            (
                "[    0.500000] heapgen: loaded",
                "\x1bc\x1b[?7l\x1b[2J[    0.000000] Linux version 7.2.13",
            ),
        ] {
            assert_reads_as_good(&GOOD.replace(from, to));
        }
    }

    #[test]
    fn short_plan_fails() {
        let log = GOOD.replace("ok 2 global.huge # SKIP not enough memory\n", "");
        let r = parse(&log, false);
        assert_eq!(r.failed(), 1, "{:?}", r.cases);
    }
}
