//! `heapgen explain`: a human summary of a validated board.
//!
//! A table of every heap (device node) with its region, CMA area and policy, the regions'
//! strategies (fallback, hooks, pool, headroom, accounting), then an ASCII map of the reserved
//! memory the board asks the device tree for.

use std::fmt::Write;

use crate::ir::{AlignKind, Board, Region};
use crate::size::{format_addr, format_size};
use crate::validate::cma_granularity;

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn alignment(r: &Region) -> String {
    match r.align_kind {
        AlignKind::Fixed => format_size(r.align_bytes),
        AlignKind::SizeOrder => format!("size-order<={}", format_size(r.align_bytes)),
    }
}

fn guards(r: &Region) -> String {
    if r.guard_before == 0 && r.guard_after == 0 {
        "-".to_string()
    } else {
        format!(
            "{}/{}",
            format_size(r.guard_before),
            format_size(r.guard_after)
        )
    }
}

/// The explanation of a board, as printed by `heapgen explain`.
pub fn explain(board: &Board) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "board {} ({}), module {}.ko: {}",
        board.name,
        board.arch.as_str(),
        board.module,
        board.description
    );
    let _ = writeln!(
        out,
        "source {} (sha256 {})\n",
        board.source, board.source_sha256
    );

    let mut rows = vec![[
        "HEAP",
        "REGION",
        "CMA AREA",
        "SIZE",
        "ALIGNMENT",
        "GRANULE",
        "GUARDS",
        "MAX-ALLOC",
        "VARIANT",
        "ACCESS",
    ]
    .map(str::to_string)
    .to_vec()];
    for h in &board.heaps {
        let Some(r) = board.regions.iter().find(|r| r.name == h.region) else {
            continue;
        };
        rows.push(vec![
            h.name.clone(),
            r.name.clone(),
            r.cma.clone(),
            r.size.map_or_else(|| "cma=".to_string(), format_size),
            alignment(r),
            format_size(r.granule),
            guards(r),
            format_size(r.max_alloc),
            if h.uncached {
                "uncached (wc)"
            } else {
                "cached"
            }
            .to_string(),
            format!("{} {}:{}", h.access.mode, h.access.owner, h.access.group),
        ]);
    }
    out.push_str(&table(&rows));
    out.push('\n');
    let strategies = strategies(board);
    if !strategies.is_empty() {
        out.push_str(&strategies);
        out.push('\n');
    }
    out.push_str(&memory_map(board));
    out
}

/// One line per region that does more than allocate from its own area: its fallback chain,
/// hooks, pool, headroom and accounting. Empty when no region does.
fn strategies(board: &Board) -> String {
    let mut rows = Vec::new();
    for r in &board.regions {
        let mut what = Vec::new();
        if !r.fallback.is_empty() {
            what.push(format!("fallback to {}", r.fallback.join(", then ")));
        }
        if let Some(h) = &r.hooks {
            what.push(format!("hooks {h}"));
        }
        if let Some(p) = &r.pool {
            let sizes: Vec<String> = p.sizes.iter().map(|s| format_size(*s)).collect();
            what.push(format!("pool {} x{}", sizes.join(","), p.depth));
        }
        if let Some(h) = &r.headroom {
            what.push(format!("headroom {}", format_size(h.bytes)));
        }
        if r.accounting {
            what.push(format!("dmem cgroup heapgen/{}", r.name));
        }
        if !what.is_empty() {
            rows.push(vec![r.name.clone(), what.join("; ")]);
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    rows.insert(0, vec!["REGION".to_string(), "STRATEGIES".to_string()]);
    table(&rows)
}

/// The ASCII memory map of the board's reserved regions.
pub fn memory_map(board: &Board) -> String {
    let mut out = String::new();
    if board.reserved.is_empty() {
        let _ = writeln!(
            out,
            "reserved memory: none in the device tree; the areas come from the kernel command line (`cma=`)"
        );
        return out;
    }
    let _ = writeln!(
        out,
        "reserved memory ({}, CMA granularity {}):\n",
        board.arch.as_str(),
        format_size(cma_granularity(board.arch, board.page_size))
    );
    let placed: Vec<_> = board.reserved.iter().filter(|r| r.base.is_some()).collect();
    let labels: Vec<String> = placed
        .iter()
        .map(|r| {
            format!(
                "{}  {}  {}{}",
                r.region,
                format_size(r.size),
                r.node,
                if r.default { "  [default]" } else { "" }
            )
        })
        .collect();
    let inner = labels.iter().map(String::len).max().unwrap_or(0).max(24) + 2;
    let addr_w = placed
        .iter()
        .filter_map(|r| r.base.map(|b| format_addr(b.saturating_add(r.size)).len()))
        .max()
        .unwrap_or(0);
    let border = format!("+{}+", "-".repeat(inner));
    let mut prev_end: Option<u64> = None;
    for (r, label) in placed.iter().zip(&labels) {
        let base = r.base.unwrap_or_default();
        let end = base.saturating_add(r.size);
        match prev_end {
            Some(p) if p == base => {}
            Some(p) => {
                let gap = format!("free {}", format_size(base - p));
                let _ = writeln!(out, "  {:>addr_w$} : {gap:<w$}:", "", w = inner - 1);
                let _ = writeln!(out, "  {:>addr_w$} {border}", format_addr(base));
            }
            None => {
                let _ = writeln!(out, "  {:>addr_w$} {border}", format_addr(base));
            }
        }
        let _ = writeln!(out, "  {:>addr_w$} | {label:<w$}|", "", w = inner - 1);
        let _ = writeln!(out, "  {:>addr_w$} {border}", format_addr(end));
        prev_end = Some(end);
    }
    let dynamic: Vec<_> = board.reserved.iter().filter(|r| r.base.is_none()).collect();
    if !dynamic.is_empty() {
        let _ = writeln!(out, "\nplaced by the kernel at boot:");
        for r in dynamic {
            let mut line = format!("  {}  {}  {}", r.region, format_size(r.size), r.node);
            if let Some(a) = r.alignment {
                let _ = write!(line, "  aligned to {}", format_size(a));
            }
            for (b, s) in &r.alloc_ranges {
                let _ = write!(
                    line,
                    "  within {}..{}",
                    format_addr(*b),
                    format_addr(b.saturating_add(*s))
                );
            }
            if r.default {
                line.push_str("  [default]");
            }
            let _ = writeln!(out, "{line}");
        }
    }
    out
}
