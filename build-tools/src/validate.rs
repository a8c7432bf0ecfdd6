//! Validation: the raw model to the IR, collecting every problem instead of stopping at the first.
//!
//! Every rule has a stable name (the `rule` of its diagnostics) and a unit test below. Policy
//! arithmetic (granule, guards, alignment order, `max-alloc`, overflow of the largest request) is
//! not written here: each region's `heapgen_policy::Policy` is built and `Policy::check` decides,
//! the same code the kernel runtime allocates with.

use std::collections::BTreeMap;
use std::ops::Range;

use heapgen_policy::{Alignment, Policy, PolicyError, DEFAULT_PAGE_SHIFT};

use crate::diag::{did_you_mean, Collected, Diagnostic};
use crate::ir;
use crate::model::{RawAccess, RawAlignment, RawBoard, RawGuard, Sp};
use crate::size::{format_addr, format_size};

/// Heap names the kernel or upstream heaps already use.
pub const RESERVED_HEAP_NAMES: &[&str] = &[
    "system",
    "system-uncached",
    "system-secure",
    "system_cc_shared",
    "default_cma_region",
    "reserved",
    "linux,cma",
    "default-pool",
];

/// The most heaps (device nodes, uncached twins included) one board may create.
pub const MAX_HEAPS: usize = 128;

/// The largest pool depth (buffers kept per size class).
pub const MAX_POOL_DEPTH: i64 = 64;

/// The largest number of size classes of a pool.
pub const MAX_POOL_SIZES: usize = 8;

/// The longest heap name, in bytes.
pub const MAX_HEAP_NAME: usize = 64;

/// The longest board name: the module name `<board>_heaps` must fit the kernel's 55 bytes.
pub const MAX_BOARD_NAME: usize = 48;

/// The longest board description, in characters: one line of the generated rst page and
/// of the Yocto recipe carries it.
pub const MAX_DESCRIPTION: usize = 256;

/// The longest `board.maintainer`, in characters (a name and an address; the generated rst page
/// and README carry it on one line).
pub const MAX_MAINTAINER: usize = 256;

/// The most `alloc-ranges` of one reserved region: they go on one device-tree property and one
/// line of the rst page.
pub const MAX_ALLOC_RANGES: usize = 64;

/// The longest region name.
pub const MAX_REGION_NAME: usize = 32;

/// `max-alloc` of a region whose size is unknown (the `cma=` area) when nothing is set.
pub const DEFAULT_MAX_ALLOC: u64 = 256 << 20;

/// The cap of a size-order alignment without `max` (upstream's `CONFIG_CMA_ALIGNMENT` of 8).
pub const DEFAULT_SIZE_ORDER_MAX: u64 = 1 << 20;

/// Device node mode when neither the region nor `[defaults]` sets one.
pub const DEFAULT_MODE: u32 = 0o600;

/// The variant names a region may ask for.
pub const VARIANTS: &[&str] = &["cached", "uncached"];

/// Rule of a hook file that cannot be read; reported by [`crate::load`], which reads hook files
/// relative to the board file once the board is valid.
pub const RULE_HOOKS_FILE: &str = "hooks-file";

/// The name of the area the `cma=` command line creates.
pub const CMDLINE_CMA_AREA: &str = "reserved";

/// CMA's placement requirement for `reserve` regions on `arch` with pages of `page_size` bytes:
/// one pageblock.
///
/// arm64 with 4 KiB pages has 2 MiB pageblocks on kernels with huge pages and 4 MiB ones (the
/// maximum buddy order) without; heapgen asks for the larger so that a board file is valid for
/// both. With 16 KiB pages both are 32 MiB, with 64 KiB pages 512 MiB (the maximum buddy orders
/// 11 and 13 of `ARCH_FORCE_MAX_ORDER`). x86_64 has 2 MiB pageblocks.
pub const fn cma_granularity(arch: ir::Arch, page_size: u64) -> u64 {
    match (arch, page_size) {
        (ir::Arch::X86_64, _) => 2 << 20,
        (ir::Arch::Arm64, 0x4000) => 32 << 20,
        (ir::Arch::Arm64, 0x10000) => 512 << 20,
        (ir::Arch::Arm64, _) => 4 << 20,
    }
}

/// Every page size Linux configures (`CONFIG_PAGE_SHIFT`), for the crate root's check that the
/// kernel's is the board's.
const OTHER_PAGE_SHIFTS: [u32; 6] = [12, 13, 14, 15, 16, 18];

/// The page sizes a board may name for `arch`.
pub fn page_sizes(arch: ir::Arch) -> &'static [u64] {
    match arch {
        ir::Arch::Arm64 => &[4 << 10, 16 << 10, 64 << 10],
        ir::Arch::X86_64 => &[4 << 10],
    }
}

/// A value with the place it came from: the region, `[defaults]`, or heapgen's built-in default.
#[derive(Clone, Debug)]
struct Origin<T> {
    value: T,
    span: Range<usize>,
    path: String,
}

fn pick<T: Clone>(
    region: Option<&Sp<T>>,
    region_path: &str,
    defaults: Option<&Sp<T>>,
    defaults_path: &str,
    builtin: T,
    header: &Range<usize>,
) -> Origin<T> {
    if let Some(v) = region {
        Origin {
            value: v.value.clone(),
            span: v.span.clone(),
            path: region_path.to_string(),
        }
    } else if let Some(v) = defaults {
        Origin {
            value: v.value.clone(),
            span: v.span.clone(),
            path: defaults_path.to_string(),
        }
    } else {
        Origin {
            value: builtin,
            span: header.clone(),
            path: region_path.to_string(),
        }
    }
}

/// Whether `c` cannot appear in text heapgen writes into generated files: control characters
/// (a line break ends a comment and starts a line of code), line and paragraph separators, and
/// the bidirectional formatting characters that make code read differently from how it runs
/// ("Trojan Source"; rustc refuses them in comments).
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Whether a board file's name (without directories) can be written into build recipes as is:
/// Yocto's `SRC_URI` and the shell and make commands that run heapgen name it.
pub fn is_recipe_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
}

/// Checks the name generated files give the board file (rule `source-name`): its path is
/// written into a comment of every generated file, its file name into the build recipes.
fn check_source(v: &mut Validator, source: &str) {
    let shown: String = source.escape_debug().collect();
    if let Some(c) = source.chars().find(|&c| is_unprintable(c)) {
        v.err(
            Diagnostic::new(
                "source-name",
                "",
                0..0,
                format!(
                    "the board file's path `{shown}` contains {}, which would end or disguise the comment of every generated file that names it",
                    c.escape_unicode()
                ),
                "the board file's path",
            )
            .with_help("rename the file or its directories: no control, line-separator or bidirectional characters"),
        );
    } else if !is_recipe_file_name(source.rsplit('/').next().unwrap_or(source)) {
        v.err(
            Diagnostic::new(
                "source-name",
                "",
                0..0,
                format!(
                    "the board file's name `{}` cannot be written into the generated build recipes",
                    source.rsplit('/').next().unwrap_or(source).escape_debug()
                ),
                "the board file's name",
            )
            .with_help("rename the file with letters, digits, `.`, `_`, `+` and `-`, not starting with `-` or `.`: Yocto's SRC_URI and the commands that run heapgen name it"),
        );
    }
}

fn is_board_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_heap_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || "@._,-".contains(c)
}

fn is_dt_node_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ",._+-".contains(c)
}

fn is_user_name(s: &str) -> bool {
    s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The identifier form of a name: every character outside `[A-Za-z0-9_]` becomes `_`.
pub fn ident(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// `/dev/dma_heap/<heap>` as a `file_contexts` regular expression: POSIX extended regex
/// metacharacters in the heap name are escaped with `\\`.
pub fn file_context(heap: &str) -> String {
    let mut s = String::from("/dev/dma_heap/");
    for c in heap.chars() {
        if ".^$*+?()[]{}|\\".contains(c) {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// The SELinux type base of a heap name: lower case, characters outside `[a-z0-9_]` become `_`,
/// `heap_` in front of a leading digit (an SELinux identifier starts with a letter).
pub fn selinux_type_base(heap: &str) -> String {
    let mut s: String = heap
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s.insert_str(0, "heap_");
    }
    s
}

/// Gives every heap node (sorted by name) a distinct SELinux type `<base>_heap_device`; heaps
/// whose names map to the same base get `_2`, `_3`, ... in sorted order.
fn assign_selinux_types(heaps: &mut [ir::HeapNode]) {
    let mut used = std::collections::BTreeSet::new();
    for h in heaps.iter_mut() {
        let base = selinux_type_base(&h.name);
        let mut ty = format!("{base}_heap_device");
        let mut n = 2;
        while used.contains(&ty) {
            ty = format!("{base}_{n}_heap_device");
            n += 1;
        }
        used.insert(ty.clone());
        h.selinux_type = ty;
    }
}

struct Validator {
    diags: Collected,
    warnings: Collected,
    /// The board's page size (`board.page-size`), in bytes: the unit of every policy.
    page_size: u64,
}

impl Validator {
    /// log2 of the board's page size.
    fn page_shift(&self) -> u32 {
        self.page_size.trailing_zeros()
    }

    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn warn(&mut self, d: Diagnostic) {
        self.warnings.push(d.warning());
    }

    /// Checks a `[a-z0-9-]` name; returns whether it is valid.
    fn name(
        &mut self,
        rule: &'static str,
        path: &str,
        what: &str,
        v: &Sp<String>,
        max: usize,
    ) -> bool {
        let ok = is_board_name(&v.value) && v.value.len() <= max;
        if !ok {
            self.err(
                Diagnostic::new(
                    rule,
                    path,
                    v.span.clone(),
                    format!("invalid {what} `{}`", v.value),
                    format!("must match [a-z][a-z0-9-]*, at most {max} characters"),
                )
                .with_help(format!(
                    "{what}s use lower-case letters, digits and `-`, start with a letter and do not end with `-`"
                )),
            );
        }
        ok
    }

    /// Checks every region's `fallback` list (rules `fallback-unknown`, `fallback-self`,
    /// `fallback-duplicate`, `fallback-cycle`) and fills in the IR's fallback chains.
    ///
    /// Fallback is not transitive: a region tries its own area, then the areas of the regions it
    /// lists, in order, and stops there. A cycle is still rejected: two regions that fall back on
    /// each other are one pool of memory written as two, and hide which one is undersized.
    fn fallbacks(&mut self, raw: &RawBoard, regions: &mut [ir::Region]) {
        let names: Vec<Option<&str>> = raw
            .regions
            .iter()
            .map(|r| r.value.name.as_ref().map(|n| n.value.as_str()))
            .collect();
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, n) in names.iter().enumerate() {
            if let Some(n) = n {
                index.entry(n).or_insert(i);
            }
        }
        let index_of = |name: &str| index.get(name).copied();
        let known: Vec<&str> = names.iter().flatten().copied().collect();
        // Accepted edges per region index: (target index, span, path) in list order.
        let mut edges: Vec<Vec<(usize, Range<usize>, String)>> = vec![Vec::new(); names.len()];
        for (i, rsp) in raw.regions.iter().enumerate() {
            let (Some(list), Some(own)) = (&rsp.value.fallback, names[i]) else {
                continue;
            };
            let mut listed: BTreeMap<usize, Range<usize>> = BTreeMap::new();
            for (j, f) in list.value.iter().enumerate() {
                let path = format!("region[{i}].fallback[{j}]");
                if f.value == own {
                    self.err(
                        Diagnostic::new(
                            "fallback-self",
                            path,
                            f.span.clone(),
                            format!("region `{own}` lists itself as its fallback"),
                            "the region itself",
                        )
                        .with_help(
                            "a region always tries its own area first; list other regions only",
                        ),
                    );
                    continue;
                }
                let Some(target) = index_of(&f.value) else {
                    let mut d = Diagnostic::new(
                        "fallback-unknown",
                        path,
                        f.span.clone(),
                        format!("region `{own}` falls back to `{}`, which is not a region of this board", f.value),
                        "no such region",
                    );
                    if self.diags.wants(f.span.start) {
                        d = match did_you_mean(&f.value, &known) {
                            Some(s) => d.with_help(format!("did you mean `{s}`?")),
                            None => d.with_help(format!(
                                "fallback lists region names (not heap or CMA area names): {}",
                                quoted_list(&known)
                            )),
                        };
                    }
                    self.err(d);
                    continue;
                };
                if let Some(first) = listed.get(&target) {
                    let first = first.clone();
                    self.err(
                        Diagnostic::new(
                            "fallback-duplicate",
                            path,
                            f.span.clone(),
                            format!("region `{own}` lists `{}` twice in its fallback", f.value),
                            "listed again",
                        )
                        .with_secondary(first, "first listed here"),
                    );
                    continue;
                }
                listed.insert(target, f.span.clone());
                edges[i].push((target, f.span.clone(), path));
            }
        }
        // One report per loop: per strongly connected component of more than one region, at
        // the first edge of its first region (in file order) that stays in the component, with
        // the shortest way back.
        for component in strongly_connected(&edges) {
            if component.len() < 2 {
                continue;
            }
            let i = component[0];
            let Some((target, span, path)) = edges[i]
                .iter()
                .find(|(t, _, _)| component.binary_search(t).is_ok())
            else {
                continue;
            };
            let Some(back) = path_between(&edges, *target, i) else {
                continue;
            };
            let mut cycle: Vec<&str> = vec![names[i].unwrap_or("?")];
            cycle.extend(back.iter().map(|&n| names[n].unwrap_or("?")));
            let shown = cycle
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(" -> ");
            let others: Vec<&str> = component
                .iter()
                .filter(|n| **n != i && !back.contains(n))
                .map(|&n| names[n].unwrap_or("?"))
                .collect();
            let mut help = "fallback chains must not loop back; keep one direction (or grow the region that runs out)".to_string();
            if !others.is_empty() {
                help.push_str(&format!(
                    "; the loop also takes in {}",
                    quoted_list(&others)
                ));
            }
            self.err(
                Diagnostic::new(
                    "fallback-cycle",
                    path.clone(),
                    span.clone(),
                    format!("fallback regions form a cycle: {shown}"),
                    "starts the cycle",
                )
                .with_help(help),
            );
        }
        for r in regions.iter_mut() {
            let Some(i) = index_of(&r.name) else { continue };
            for (target, _, _) in &edges[i] {
                let t = &raw.regions[*target].value;
                if let (Some(n), Some(c)) = (&t.name, &t.cma) {
                    r.fallback.push(n.value.clone());
                    r.fallback_cma.push(c.value.clone());
                }
            }
        }
    }

    /// Checks every region's `hooks` path (rule `hooks-path`) and returns the hook files to copy,
    /// each once, sorted by path; the regions get the name of their ops table.
    /// Checks every region's `strategy` (rules `strategy-kind`, `strategy-key`, `pool-sizes`,
    /// `pool-size-granule`, `pool-size-max-alloc`, `pool-sizes-order`, `pool-depth`,
    /// `pool-too-large`) and fills in the IR's pools. Regions whose policy is invalid are not in
    /// `regions`; their strategy is checked only as far as it does not depend on the policy.
    fn strategies(&mut self, raw: &RawBoard, regions: &mut [ir::Region]) {
        for (i, rsp) in raw.regions.iter().enumerate() {
            let Some(st) = &rsp.value.strategy else {
                continue;
            };
            let path = format!("region[{i}].strategy");
            let name = rsp.value.name.as_ref().map(|n| n.value.as_str());
            let region = regions.iter_mut().find(|r| Some(r.name.as_str()) == name);
            let kind = st.value.kind.as_ref();
            match kind.map(|k| k.value.as_str()) {
                Some("pool") => {}
                Some("direct") => {
                    for (key, span) in [
                        ("sizes", st.value.sizes.as_ref().map(|s| s.span.clone())),
                        ("depth", st.value.depth.as_ref().map(|d| d.span.clone())),
                    ] {
                        if let Some(span) = span {
                            self.err(
                                Diagnostic::new(
                                    "strategy-key",
                                    format!("{path}.{key}"),
                                    span,
                                    format!("`{key}` has no meaning for the `direct` strategy"),
                                    "only for `kind = \"pool\"`",
                                )
                                .with_help("remove the key, or write `kind = \"pool\"`"),
                            );
                        }
                    }
                    continue;
                }
                other => {
                    let (kpath, span, found) = match kind {
                        Some(k) => (format!("{path}.kind"), k.span.clone(), other.unwrap_or("")),
                        None => (path.clone(), st.span.clone(), ""),
                    };
                    self.err(
                        Diagnostic::new(
                            "strategy-kind",
                            kpath,
                            span,
                            if found.is_empty() {
                                "the strategy has no `kind`".to_string()
                            } else {
                                format!("unknown strategy kind `{found}`")
                            },
                            "expected \"direct\" or \"pool\"",
                        )
                        .with_help("write `kind = \"direct\"` (the default) or `kind = \"pool\"`"),
                    );
                    continue;
                }
            }
            let depth = match &st.value.depth {
                Some(d) if (1..=MAX_POOL_DEPTH).contains(&d.value) => Some(d.value as u32),
                Some(d) => {
                    self.err(
                        Diagnostic::new(
                            "pool-depth",
                            format!("{path}.depth"),
                            d.span.clone(),
                            format!("pool depth {} is outside 1..={MAX_POOL_DEPTH}", d.value),
                            format!("expected 1..={MAX_POOL_DEPTH}"),
                        )
                        .with_help("the depth is the number of buffers kept per size class"),
                    );
                    None
                }
                None => {
                    self.err(
                        Diagnostic::new(
                            "pool-depth",
                            path.clone(),
                            st.span.clone(),
                            "a pool needs a `depth`",
                            "missing `depth`",
                        )
                        .with_help(format!(
                            "add `depth = N` (1..={MAX_POOL_DEPTH} buffers kept per size class)"
                        )),
                    );
                    None
                }
            };
            let sizes = match &st.value.sizes {
                Some(s) if !s.value.is_empty() && s.value.len() <= MAX_POOL_SIZES => Some(s),
                other => {
                    let (span, label) = match other {
                        Some(s) => (
                            s.span.clone(),
                            format!("expected 1..={MAX_POOL_SIZES} sizes"),
                        ),
                        None => (st.span.clone(), "missing `sizes`".to_string()),
                    };
                    self.err(
                        Diagnostic::new(
                            "pool-sizes",
                            format!("{path}.sizes"),
                            span,
                            format!("a pool needs 1 to {MAX_POOL_SIZES} size classes"),
                            label,
                        )
                        .with_help("list the hot buffer sizes, e.g. `sizes = [\"1M\", \"4M\"]`"),
                    );
                    None
                }
            };
            let Some(sizes) = sizes else { continue };
            let mut ok = true;
            for (j, pair) in sizes.value.windows(2).enumerate() {
                if pair[1].value <= pair[0].value {
                    ok = false;
                    let what = if pair[1].value == pair[0].value {
                        "repeats"
                    } else {
                        "is smaller than"
                    };
                    self.err(
                        Diagnostic::new(
                            "pool-sizes-order",
                            format!("{path}.sizes[{}]", j + 1),
                            pair[1].span.clone(),
                            format!(
                                "pool size {} {what} the size before it ({})",
                                format_size(pair[1].value),
                                format_size(pair[0].value)
                            ),
                            "sizes must be strictly ascending",
                        )
                        .with_secondary(pair[0].span.clone(), "the size before")
                        .with_help("list each size class once, smallest first"),
                    );
                }
            }
            let Some(region) = region else { continue };
            for (j, s) in sizes.value.iter().enumerate() {
                let spath = format!("{path}.sizes[{j}]");
                if s.value == 0 || s.value % region.granule != 0 {
                    ok = false;
                    self.err(
                        Diagnostic::new(
                            "pool-size-granule",
                            spath,
                            s.span.clone(),
                            format!(
                                "pool size {} is not a non-zero multiple of region `{}`'s granule ({})",
                                format_size(s.value),
                                region.name,
                                format_size(region.granule)
                            ),
                            "not a granule multiple",
                        )
                        .with_help("a request is served from a class when its size rounded up to the granule equals the class, so classes are granule multiples"),
                    );
                } else if s.value > region.max_alloc {
                    ok = false;
                    self.err(
                        Diagnostic::new(
                            "pool-size-max-alloc",
                            spath,
                            s.span.clone(),
                            format!(
                                "pool size {} is larger than region `{}`'s max-alloc ({})",
                                format_size(s.value),
                                region.name,
                                format_size(region.max_alloc)
                            ),
                            "larger than max-alloc",
                        )
                        .with_help("no request that large is ever served; remove the size or raise `max-alloc`"),
                    );
                }
            }
            let (true, Some(depth)) = (ok, depth) else {
                continue;
            };
            let policy = region_policy(region, self.page_shift());
            let per_round: Option<u64> = sizes.value.iter().try_fold(0u64, |acc, s| {
                policy
                    .layout(s.value)
                    .ok()
                    .and_then(|l| acc.checked_add(l.total_len))
            });
            let held = per_round.and_then(|p| p.checked_mul(u64::from(depth)));
            if let (Some(size), Some(depth_span)) = (region.size, st.value.depth.as_ref()) {
                if held.is_none_or(|h| h > size) {
                    self.err(
                        Diagnostic::new(
                            "pool-too-large",
                            format!("{path}.depth"),
                            depth_span.span.clone(),
                            format!(
                                "a full pool holds {} (depth {depth} x the classes with guards and alignment), more than region `{}` ({})",
                                held.map_or("more than 16E".to_string(), format_size),
                                region.name,
                                format_size(size)
                            ),
                            "does not fit in the region",
                        )
                        .with_help("lower the depth, drop a size class or grow the region"),
                    );
                    continue;
                }
            }
            region.pool = Some(ir::Pool {
                sizes: sizes.value.iter().map(|s| s.value).collect(),
                depth,
            });
        }
    }

    fn hooks(&mut self, raw: &RawBoard, regions: &mut [ir::Region]) -> Vec<ir::HookFile> {
        let mut files: BTreeMap<String, ir::HookFile> = BTreeMap::new();
        for (i, rsp) in raw.regions.iter().enumerate() {
            let Some(h) = &rsp.value.hooks else { continue };
            let path = format!("region[{i}].hooks");
            let parts: Vec<&str> = h.value.split('/').collect();
            let file = parts.last().copied().unwrap_or("");
            let stem = file.strip_suffix(".rs").unwrap_or("");
            let ok_part = |p: &str| {
                !p.is_empty()
                    && p != "."
                    && p != ".."
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c))
            };
            let bad = if h.value.starts_with('/') {
                Some("a relative path")
            } else if !parts.iter().all(|p| ok_part(p)) {
                Some("a path of `[a-z0-9_.-]` components without `.` or `..`")
            } else if stem.is_empty()
                || !stem.starts_with(|c: char| c.is_ascii_lowercase())
                || !stem
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                Some("a `.rs` file whose name is a Rust identifier (`[a-z][a-z0-9_]*.rs`)")
            } else {
                None
            };
            if let Some(what) = bad {
                self.err(
                    Diagnostic::new(
                        "hooks-path",
                        path,
                        h.span.clone(),
                        format!("`{}` is not a usable hook file path", h.value),
                        format!("expected {what}"),
                    )
                    .with_help("write the path of a `.rs` file relative to the board file, e.g. `hooks = \"hooks/acme_protect.rs\"`"),
                );
                continue;
            }
            let out = format!("hooks/{file}");
            if let Some(other) = files.get(&out) {
                if other.source != h.value {
                    self.err(
                        Diagnostic::new(
                            "hooks-path",
                            path,
                            h.span.clone(),
                            format!(
                                "hook files `{}` and `{}` would both be copied to `{out}`",
                                other.source, h.value
                            ),
                            "same file name",
                        )
                        .with_secondary(other.span.clone(), "the other one")
                        .with_help("give the hook files different names"),
                    );
                    continue;
                }
            }
            let entry = files.entry(out.clone()).or_insert_with(|| ir::HookFile {
                source: h.value.clone(),
                path: out,
                module: format!("hooks_{stem}"),
                ops_static: format!("HOOKS_{}", stem.to_ascii_uppercase()),
                contents: Vec::new(),
                span: h.span.clone(),
                key_path: path.clone(),
            });
            let name = rsp.value.name.as_ref().map(|n| n.value.as_str());
            if let Some(r) = regions.iter_mut().find(|r| Some(r.name.as_str()) == name) {
                r.hooks_static = Some(entry.ops_static.clone());
                r.hooks = Some(h.value.clone());
            }
        }
        files.into_values().collect()
    }

    fn access(&mut self, path: &str, a: &Sp<RawAccess>) {
        // The opt-in, by its current name or its former one.
        let opt_in = match (&a.value.world_access, &a.value.world_writable) {
            (Some(v), _) => Some(("world-access", v)),
            (None, Some(v)) => Some(("world-writable", v)),
            (None, None) => None,
        };
        if let Some(mode) = &a.value.mode {
            if mode.value & 0o7000 != 0 {
                self.err(Diagnostic::new(
                    "access-mode",
                    format!("{path}.mode"),
                    mode.span.clone(),
                    format!("mode {:04o} sets setuid, setgid or sticky bits", mode.value),
                    "only permission bits (0..0777) are allowed",
                ));
            } else if mode.value & 0o007 != 0 {
                // Allocating needs only read access to the node (the dma-heap ioctl checks no
                // write mode; Android ships its system heap 0444), so any bit for others lets
                // every process drain the region.
                let d = if mode.value & 0o002 != 0 {
                    Diagnostic::new(
                        "access-world-writable",
                        format!("{path}.mode"),
                        mode.span.clone(),
                        format!("mode {:04o} makes the heap world-writable", mode.value),
                        "world-writable",
                    )
                } else {
                    let what = if mode.value & 0o004 != 0 {
                        "read access, and read access allocates"
                    } else {
                        "access (the execute bit)"
                    };
                    Diagnostic::new(
                        "access-world-access",
                        format!("{path}.mode"),
                        mode.span.clone(),
                        format!("mode {:04o} gives every user {what}", mode.value),
                        "world access",
                    )
                };
                match opt_in {
                    Some((_, opt_in)) if opt_in.value => self.warn(
                        d.with_secondary(opt_in.span.clone(), "allowed here")
                            .with_help("any process can allocate the whole region"),
                    ),
                    _ => self.err(d.with_help(
                        "any process could allocate the whole region; grant access through a \
                         group, e.g. \"0660\", or set `world-access = true` if that is intended",
                    )),
                }
            }
        }
        if let (Some(new), Some(old)) = (&a.value.world_access, &a.value.world_writable) {
            self.err(
                Diagnostic::new(
                    "access-world-alias",
                    format!("{path}.world-writable"),
                    old.span.clone(),
                    "`world-writable` is the former name of `world-access`; the table sets both",
                    "former name",
                )
                .with_secondary(new.span.clone(), "the current name")
                .with_help("keep only `world-access`"),
            );
        }
        if let Some((key, opt_in)) = opt_in {
            let world = a.value.mode.as_ref().is_some_and(|m| m.value & 0o007 != 0);
            if opt_in.value && !world {
                self.err(Diagnostic::new(
                    "access-world-writable-unused",
                    format!("{path}.{key}"),
                    opt_in.span.clone(),
                    format!("`{key} = true` next to a mode that gives others no access"),
                    "nothing to allow",
                ));
            }
        }
        for (key, rule, v) in [
            ("owner", "access-owner", &a.value.owner),
            ("group", "access-group", &a.value.group),
        ] {
            if let Some(v) = v {
                if !is_user_name(&v.value) {
                    self.err(Diagnostic::new(
                        rule,
                        format!("{path}.{key}"),
                        v.span.clone(),
                        format!("invalid {key} `{}`", v.value),
                        "must be a user or group name: [a-z_][a-z0-9_-]*, at most 32 characters",
                    ));
                }
            }
        }
    }

    /// The alignment order of a size, or a diagnostic when it is not a power of two of at least
    /// the page size.
    fn align_order(&mut self, bytes: u64, span: &Range<usize>, path: &str) -> Option<u32> {
        let page = self.page_size;
        if bytes >= page && bytes.is_power_of_two() {
            Some(bytes.trailing_zeros() - page.trailing_zeros())
        } else {
            self.err(Diagnostic::new(
                "alignment-power-of-two",
                path,
                span.clone(),
                format!(
                    "alignment {} is not a power of two of at least {}, the page size",
                    format_size(bytes),
                    format_size(page)
                ),
                format!("not a power of two >= {}", format_size(page)),
            ));
            None
        }
    }
}

/// Validates a raw board and builds the IR with the warnings found, or returns every problem
/// found (errors and warnings; the first [`crate::diag::MAX_KEPT`] kept, the others counted).
pub fn validate(
    raw: &RawBoard,
    source: &str,
    source_sha256: &str,
) -> Result<(ir::Board, Collected), Collected> {
    let mut v = Validator {
        diags: Collected::new(),
        warnings: Collected::new(),
        page_size: 1 << DEFAULT_PAGE_SHIFT,
    };
    let top = 0..0;

    check_source(&mut v, source);

    // Schema version.
    match &raw.schema_version {
        None => v.err(
            Diagnostic::new(
                "schema-version",
                "schema-version",
                top.clone(),
                "missing `schema-version`",
                "expected `schema-version = 1` first",
            )
            .with_help("start the file with `schema-version = 1`"),
        ),
        Some(sv) if sv.value != 1 => v.err(Diagnostic::new(
            "schema-version",
            "schema-version",
            sv.span.clone(),
            format!("unsupported schema version {}", sv.value),
            "this heapgen reads board files of schema version 1",
        )),
        Some(_) => {}
    }

    // [board].
    let mut board_name = None;
    let mut arch = None;
    let mut description = String::new();
    let mut maintainer = None;
    let board_span = raw.board.as_ref().map_or(top.clone(), |b| b.span.clone());
    match &raw.board {
        None => v.err(Diagnostic::new(
            "missing-key",
            "board",
            top.clone(),
            "missing the `[board]` table",
            "expected `[board]` with `name` and `arch`",
        )),
        Some(b) => {
            match &b.value.name {
                None => v.err(Diagnostic::new(
                    "missing-key",
                    "board.name",
                    b.span.clone(),
                    "missing `name`",
                    "this table needs `name = \"...\"`",
                )),
                Some(n) => {
                    if v.name("board-name", "board.name", "board name", n, MAX_BOARD_NAME) {
                        board_name = Some(n.value.clone());
                    }
                }
            }
            match &b.value.arch {
                None => v.err(Diagnostic::new(
                    "missing-key",
                    "board.arch",
                    b.span.clone(),
                    "missing `arch`",
                    "this table needs `arch = \"arm64\"` or `arch = \"x86_64\"`",
                )),
                Some(a) => match a.value.as_str() {
                    "arm64" => arch = Some(ir::Arch::Arm64),
                    "x86_64" => arch = Some(ir::Arch::X86_64),
                    other => {
                        let hint = match other {
                            "aarch64" | "arm64-v8a" | "armv8" => Some("arm64"),
                            "amd64" | "x86-64" | "x64" | "x86" => Some("x86_64"),
                            _ => did_you_mean(other, &["arm64", "x86_64"]),
                        };
                        let mut d = Diagnostic::new(
                            "board-arch",
                            "board.arch",
                            a.span.clone(),
                            format!("unknown architecture `{other}`"),
                            "expected `arm64` or `x86_64`",
                        );
                        if let Some(h) = hint {
                            d = d.with_help(format!("did you mean `{h}`?"));
                        }
                        v.err(d);
                    }
                },
            }
            if let Some(d) = &b.value.description {
                if d.value.chars().any(is_unprintable) {
                    v.err(Diagnostic::new(
                        "board-description",
                        "board.description",
                        d.span.clone(),
                        "the description must be one line of text",
                        "contains a line break, a control or a bidirectional character",
                    ));
                } else if d.value.chars().count() > MAX_DESCRIPTION {
                    v.err(
                        Diagnostic::new(
                            "board-description",
                            "board.description",
                            d.span.clone(),
                            format!(
                                "the description has {} characters, more than {MAX_DESCRIPTION}",
                                d.value.chars().count()
                            ),
                            "too long",
                        )
                        .with_help(
                            "one line saying what the board is; the documentation can say more",
                        ),
                    );
                } else {
                    description = d.value.trim().to_string();
                }
            }
            if let Some(ps) = &b.value.page_size {
                let allowed = arch.map_or(&[4 << 10, 16 << 10, 64 << 10][..], page_sizes);
                if allowed.contains(&ps.value) {
                    v.page_size = ps.value;
                } else {
                    let list: Vec<String> = allowed.iter().map(|s| format_size(*s)).collect();
                    v.err(
                        Diagnostic::new(
                            "board-page-size",
                            "board.page-size",
                            ps.span.clone(),
                            format!(
                                "page size {} is not a page size of {} kernels",
                                format_size(ps.value),
                                arch.map_or("the supported", ir::Arch::as_str)
                            ),
                            format!("expected {}", list.join(", ")),
                        )
                        .with_help("the page size of the kernel the module is built for (CONFIG_PAGE_SHIFT)"),
                    );
                }
            }
            if let Some(m) = &b.value.maintainer {
                match maintainer_address(&m.value) {
                    Some(_) => maintainer = Some(m.value.trim().to_string()),
                    None => {
                        let length = m.value.chars().count();
                        let message = match m.value.chars().find(|&c| is_unprintable(c)) {
                            _ if length > MAX_MAINTAINER => format!(
                                "the maintainer has {length} characters, more than {MAX_MAINTAINER}"
                            ),
                            Some(c) => format!(
                                "the maintainer contains {}, which would end or disguise the lines of the generated files that name it",
                                c.escape_unicode()
                            ),
                            None => {
                                "the maintainer must be a name and an email address, one line"
                                    .to_string()
                            }
                        };
                        v.err(
                            Diagnostic::new(
                                "board-maintainer",
                                "board.maintainer",
                                m.span.clone(),
                                message,
                                "not `Name <user@host>`",
                            )
                            .with_help("e.g. `maintainer = \"Jane Doe <jane@example.com>\"`"),
                        );
                    }
                }
            }
        }
    }

    // [defaults]: checked once, where they are written.
    let defaults = &raw.defaults;
    if let Some(a) = &defaults.access {
        v.access("defaults.access", a);
    }

    if raw.regions.is_empty() {
        v.err(
            Diagnostic::new(
                "no-regions",
                "region",
                board_span.clone(),
                "the board has no `[[region]]`",
                "a board needs at least one region",
            )
            .with_help("add a `[[region]]` table with `name`, `cma` and `heap`"),
        );
    }

    let granularity = arch.map(|a| cma_granularity(a, v.page_size));
    let mut regions = Vec::new();
    let mut reserved = Vec::new();
    let mut heaps: Vec<ir::HeapNode> = Vec::new();
    // Name -> (region index, span) of the first use, for conflicts.
    let mut region_names: BTreeMap<String, Range<usize>> = BTreeMap::new();
    let mut cma_names: BTreeMap<String, (String, Range<usize>)> = BTreeMap::new();
    let mut heap_names: BTreeMap<String, (String, Range<usize>)> = BTreeMap::new();
    let mut default_reserve: Option<(String, Range<usize>)> = None;
    let mut placed: Vec<(String, u64, u64, Range<usize>, String)> = Vec::new();

    // CMA area names of every region, for the heap/CMA clash rule.
    for r in &raw.regions {
        if let (Some(c), Some(n)) = (&r.value.cma, &r.value.name) {
            cma_names
                .entry(c.value.clone())
                .or_insert((n.value.clone(), c.span.clone()));
        }
    }
    let mut cma_seen: BTreeMap<String, (String, Range<usize>)> = BTreeMap::new();

    for (i, rsp) in raw.regions.iter().enumerate() {
        let r = &rsp.value;
        let header = rsp.span.clone();
        let p = |key: &str| format!("region[{i}].{key}");
        let mut ok = true;

        let name = match &r.name {
            None => {
                v.err(Diagnostic::new(
                    "missing-key",
                    p("name"),
                    header.clone(),
                    "missing `name`",
                    "every region needs `name = \"...\"`",
                ));
                ok = false;
                format!("region[{i}]")
            }
            Some(n) => {
                if !v.name("region-name", &p("name"), "region name", n, MAX_REGION_NAME) {
                    ok = false;
                }
                if let Some(first) = region_names.get(&n.value) {
                    v.err(
                        Diagnostic::new(
                            "region-name-duplicate",
                            p("name"),
                            n.span.clone(),
                            format!("region `{}` is defined twice", n.value),
                            "second definition",
                        )
                        .with_secondary(first.clone(), "first defined here"),
                    );
                    ok = false;
                } else {
                    region_names.insert(n.value.clone(), n.span.clone());
                }
                n.value.clone()
            }
        };

        // The CMA area.
        let cma = match &r.cma {
            None => {
                v.err(
                    Diagnostic::new(
                        "missing-key",
                        p("cma"),
                        header.clone(),
                        format!("region `{name}` does not say which CMA area it uses"),
                        "missing `cma`",
                    )
                    .with_help(
                        "name the kernel's CMA area, e.g. `cma = \"reserved\"` for the `cma=` area",
                    ),
                );
                ok = false;
                None
            }
            Some(c) => {
                let valid = !c.value.is_empty()
                    && c.value.len() <= 64
                    && c.value.chars().all(|ch| is_dt_node_char(ch) || ch == '@');
                if !valid {
                    v.err(Diagnostic::new(
                        "cma-name",
                        p("cma"),
                        c.span.clone(),
                        format!("invalid CMA area name `{}`", c.value),
                        "CMA area names use [A-Za-z0-9,._+@-], at most 64 characters",
                    ));
                    ok = false;
                }
                if let Some((other, first)) = cma_seen.get(&c.value) {
                    v.err(
                        Diagnostic::new(
                            "cma-duplicate",
                            p("cma"),
                            c.span.clone(),
                            format!(
                                "CMA area `{}` is bound by region `{other}` and region `{name}`",
                                c.value
                            ),
                            format!("bound again by `{name}`"),
                        )
                        .with_secondary(first.clone(), format!("first bound by `{other}`"))
                        .with_help("one region per CMA area; give each region its own area"),
                    );
                    ok = false;
                } else {
                    cma_seen.insert(c.value.clone(), (name.clone(), c.span.clone()));
                }
                if arch == Some(ir::Arch::X86_64) && c.value != CMDLINE_CMA_AREA {
                    v.err(
                        Diagnostic::new(
                            "cma-x86-64",
                            p("cma"),
                            c.span.clone(),
                            format!("x86_64 has no CMA area `{}`", c.value),
                            "x86_64 only has the `cma=` area",
                        )
                        .with_help("on x86_64 bind `cma = \"reserved\"`, the area the `cma=` command line creates"),
                    );
                    ok = false;
                }
                Some(c)
            }
        };

        // Placement.
        let mut size = None;
        let mut size_span = None;
        if let Some(res) = &r.reserve {
            let rp = |key: &str| format!("region[{i}].reserve.{key}");
            if arch == Some(ir::Arch::X86_64) {
                v.err(
                    Diagnostic::new(
                        "reserve-arch",
                        p("reserve"),
                        res.span.clone(),
                        "x86_64 boards cannot reserve memory",
                        "x86_64 has no device tree",
                    )
                    .with_help("size the area with the `cma=` kernel command line instead and remove `reserve`"),
                );
                ok = false;
            }
            let rv = &res.value;
            match &rv.size {
                None => {
                    v.err(Diagnostic::new(
                        "missing-key",
                        p("reserve"),
                        res.span.clone(),
                        "`reserve` needs a `size`",
                        "missing `size`",
                    ));
                    ok = false;
                }
                Some(s) if s.value == 0 => {
                    v.err(Diagnostic::new(
                        "reserve-size",
                        rp("size"),
                        s.span.clone(),
                        "a reserved region cannot be empty",
                        "zero",
                    ));
                    ok = false;
                }
                Some(s) => {
                    if let Some(g) = granularity {
                        if s.value % g != 0 {
                            v.err(
                                Diagnostic::new(
                                    "reserve-size",
                                    rp("size"),
                                    s.span.clone(),
                                    format!(
                                        "size {} is not a multiple of {}, the CMA granularity on {}",
                                        format_size(s.value),
                                        format_size(g),
                                        arch.map_or("", ir::Arch::as_str)
                                    ),
                                    format!("not a multiple of {}", format_size(g)),
                                )
                                .with_help("CMA areas are made of whole pageblocks"),
                            );
                            ok = false;
                        }
                    }
                    size = Some(s.value);
                    size_span = Some(s.span.clone());
                }
            }
            if let Some(base) = &rv.base {
                for (key, extra) in [
                    ("alignment", rv.alignment.as_ref().map(|a| a.span.clone())),
                    (
                        "alloc-ranges",
                        rv.alloc_ranges.as_ref().map(|a| a.span.clone()),
                    ),
                ] {
                    if let Some(span) = extra {
                        v.err(
                            Diagnostic::new(
                                "reserve-placement",
                                rp(key),
                                span,
                                format!("`{key}` only applies to dynamically placed regions"),
                                "conflicts with `base`",
                            )
                            .with_secondary(base.span.clone(), "the region is placed here"),
                        );
                        ok = false;
                    }
                }
                if let Some(g) = granularity {
                    if base.value % g != 0 {
                        v.err(
                            Diagnostic::new(
                                "reserve-alignment",
                                rp("base"),
                                base.span.clone(),
                                format!(
                                    "base {} is not aligned to {}, the CMA granularity on {}",
                                    format_addr(base.value),
                                    format_size(g),
                                    arch.map_or("", ir::Arch::as_str)
                                ),
                                format!("not {}-aligned", format_size(g)),
                            )
                            .with_help(
                                "the kernel refuses to turn a misaligned region into a CMA area",
                            ),
                        );
                        ok = false;
                    }
                }
                if let Some(s) = size {
                    match base.value.checked_add(s) {
                        None => {
                            v.err(Diagnostic::new(
                                "reserve-range",
                                p("reserve"),
                                res.span.clone(),
                                "base + size is beyond the 64-bit address space",
                                "overflows",
                            ));
                            ok = false;
                        }
                        Some(end) => placed.push((
                            name.clone(),
                            base.value,
                            end,
                            base.span.clone(),
                            rp("base"),
                        )),
                    }
                }
            } else {
                if let Some(a) = &rv.alignment {
                    if !(a.value >= v.page_size && a.value.is_power_of_two()) {
                        v.err(Diagnostic::new(
                            "reserve-alignment",
                            rp("alignment"),
                            a.span.clone(),
                            format!(
                                "alignment {} is not a power of two of at least {}, the page size",
                                format_size(a.value),
                                format_size(v.page_size)
                            ),
                            format!("not a power of two >= {}", format_size(v.page_size)),
                        ));
                        ok = false;
                    }
                }
                if let Some(ranges) = &rv.alloc_ranges {
                    if ranges.value.len() > MAX_ALLOC_RANGES {
                        v.err(Diagnostic::new(
                            "reserve-alloc-range",
                            rp("alloc-ranges"),
                            ranges.span.clone(),
                            format!(
                                "{} allocation ranges, more than {MAX_ALLOC_RANGES}",
                                ranges.value.len()
                            ),
                            "too many ranges",
                        ));
                        ok = false;
                    }
                    for (j, range) in ranges.value.iter().enumerate() {
                        let (b, s) = &range.value;
                        let msg = if s.value == 0 {
                            Some("an allocation range cannot be empty".to_string())
                        } else if b.value.checked_add(s.value).is_none() {
                            Some("base + size is beyond the 64-bit address space".to_string())
                        } else if size.is_some_and(|sz| s.value < sz) {
                            Some(format!(
                                "range of {} cannot hold the region's {}",
                                format_size(s.value),
                                format_size(size.unwrap_or(0))
                            ))
                        } else {
                            None
                        };
                        if let Some(msg) = msg {
                            v.err(Diagnostic::new(
                                "reserve-alloc-range",
                                format!("region[{i}].reserve.alloc-ranges[{j}]"),
                                range.span.clone(),
                                msg,
                                "unusable range",
                            ));
                            ok = false;
                        }
                    }
                }
            }
            if let Some(d) = &rv.default {
                if d.value {
                    if let Some((other, first)) = &default_reserve {
                        v.err(
                            Diagnostic::new(
                                "reserve-default-duplicate",
                                rp("default"),
                                d.span.clone(),
                                format!(
                                    "regions `{other}` and `{name}` are both the default CMA area"
                                ),
                                "second default",
                            )
                            .with_secondary(
                                first.clone(),
                                format!("`{other}` is the default here"),
                            ),
                        );
                        ok = false;
                    } else {
                        default_reserve = Some((name.clone(), d.span.clone()));
                    }
                }
            }
            // The node name the reserve produces must be the CMA area the region binds.
            if let Some(c) = cma {
                let stem = c.value.split('@').next().unwrap_or_default();
                let expected = match &rv.base {
                    Some(b) => format!("{stem}@{:x}", b.value),
                    None => stem.to_string(),
                };
                if stem.is_empty() || stem.len() > 31 || !stem.chars().all(is_dt_node_char) {
                    v.err(Diagnostic::new(
                        "cma-name",
                        p("cma"),
                        c.span.clone(),
                        format!("`{stem}` is not a device-tree node name"),
                        "node names use [A-Za-z0-9,._+-], 1 to 31 characters",
                    ));
                    ok = false;
                } else if c.value != expected {
                    let (other_span, why) = match &rv.base {
                        Some(b) => (
                            b.span.clone(),
                            format!("places the node at {}", format_addr(b.value)),
                        ),
                        None => (
                            res.span.clone(),
                            "a dynamically placed node has no unit address".to_string(),
                        ),
                    };
                    v.err(
                        Diagnostic::new(
                            "cma-reserve-mismatch",
                            p("cma"),
                            c.span.clone(),
                            format!("`reserve` creates the CMA area `{expected}`, but the region binds `{}`", c.value),
                            format!("expected `{expected}`"),
                        )
                        .with_secondary(other_span, why)
                        .with_help(format!("write `cma = \"{expected}\"`")),
                    );
                    ok = false;
                } else if ok {
                    reserved.push(ir::Reserve {
                        region: name.clone(),
                        node: expected,
                        label: format!("heapgen_{}", ident(&name)),
                        base: rv.base.as_ref().map(|b| b.value),
                        size: size.unwrap_or(0),
                        alignment: rv.alignment.as_ref().map(|a| a.value),
                        alloc_ranges: rv
                            .alloc_ranges
                            .as_ref()
                            .map(|a| {
                                a.value
                                    .iter()
                                    .map(|r| (r.value.0.value, r.value.1.value))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        default: rv.default.as_ref().is_some_and(|d| d.value),
                    });
                }
            }
        }

        // Variants and heap names.
        let mut cached = true;
        let mut uncached = false;
        if let Some(vs) = &r.variants {
            cached = false;
            if vs.value.is_empty() {
                v.err(
                    Diagnostic::new(
                        "variants",
                        p("variants"),
                        vs.span.clone(),
                        "a region needs at least one variant",
                        "empty",
                    )
                    .with_help("use [\"cached\"], [\"uncached\"] or [\"cached\", \"uncached\"]"),
                );
                ok = false;
            }
            for (j, item) in vs.value.iter().enumerate() {
                let flag = match item.value.as_str() {
                    "cached" => &mut cached,
                    "uncached" => &mut uncached,
                    other => {
                        let mut d = Diagnostic::new(
                            "variants",
                            format!("region[{i}].variants[{j}]"),
                            item.span.clone(),
                            format!("unknown variant `{other}`"),
                            "expected `cached` or `uncached`",
                        );
                        if v.diags.wants(item.span.start) {
                            if let Some(s) = did_you_mean(other, VARIANTS) {
                                d = d.with_help(format!("did you mean `{s}`?"));
                            }
                        }
                        v.err(d);
                        ok = false;
                        continue;
                    }
                };
                if *flag {
                    v.err(Diagnostic::new(
                        "variants",
                        format!("region[{i}].variants[{j}]"),
                        item.span.clone(),
                        format!("variant `{}` is listed twice", item.value),
                        "duplicate",
                    ));
                    ok = false;
                }
                *flag = true;
            }
        }
        let mut cached_heap = None;
        let mut uncached_heap = None;
        match &r.heap {
            None => {
                v.err(
                    Diagnostic::new(
                        "missing-key",
                        p("heap"),
                        header.clone(),
                        format!("region `{name}` has no heap name"),
                        "missing `heap`",
                    )
                    .with_help("name the heap after the memory, e.g. `heap = \"camera\"` for /dev/dma_heap/camera"),
                );
                ok = false;
            }
            Some(h) => {
                let mut names = Vec::new();
                if cached {
                    names.push((h.value.clone(), false));
                }
                if uncached {
                    names.push((format!("{}-uncached", h.value), true));
                }
                let bad_chars: Vec<char> = h.value.chars().filter(|&c| !is_heap_char(c)).collect();
                if h.value.is_empty() || !bad_chars.is_empty() {
                    let why = if bad_chars.contains(&'/') {
                        "a heap name is a device node name and cannot contain `/`".to_string()
                    } else if h.value.is_empty() {
                        "empty heap name".to_string()
                    } else {
                        let mut s: Vec<String> =
                            bad_chars.iter().map(|c| format!("`{c}`")).collect();
                        s.dedup();
                        format!(
                            "invalid character{} {}",
                            if s.len() == 1 { "" } else { "s" },
                            s.join(", ")
                        )
                    };
                    v.err(
                        Diagnostic::new(
                            "heap-name",
                            p("heap"),
                            h.span.clone(),
                            format!("invalid heap name `{}`: {why}", h.value),
                            "heap names use [a-z0-9@._,-]",
                        )
                        .with_help("name the memory, not the allocator, e.g. \"camera\" or \"framebuffer-noecc\""),
                    );
                    ok = false;
                }
                for (n, is_uncached) in &names {
                    if n.len() > MAX_HEAP_NAME {
                        v.err(Diagnostic::new(
                            "heap-name",
                            p("heap"),
                            h.span.clone(),
                            format!("heap name `{n}` is longer than {MAX_HEAP_NAME} characters"),
                            "too long",
                        ));
                        ok = false;
                    }
                    if RESERVED_HEAP_NAMES.contains(&n.as_str()) {
                        v.err(
                            Diagnostic::new(
                                "heap-name-reserved",
                                p("heap"),
                                h.span.clone(),
                                format!("heap name `{n}` is reserved"),
                                if *is_uncached {
                                    format!("the uncached twin `{n}` is reserved")
                                } else {
                                    "reserved by the kernel's own heaps".to_string()
                                },
                            )
                            .with_help(format!(
                                "reserved names: {}",
                                RESERVED_HEAP_NAMES.join(", ")
                            )),
                        );
                        ok = false;
                    }
                    if let Some((other, cspan)) = cma_names.get(n) {
                        v.err(
                            Diagnostic::new(
                                "heap-name-cma-clash",
                                p("heap"),
                                h.span.clone(),
                                format!("heap name `{n}` is the name of the CMA area of region `{other}`"),
                                "clashes with a CMA area name",
                            )
                            .with_secondary(cspan.clone(), "the kernel's CMA heap already uses this name")
                            .with_help("upstream creates a heap named after every CMA area; name the heap after what the memory is for"),
                        );
                        ok = false;
                    }
                    if let Some((other, first)) = heap_names.get(n) {
                        v.err(
                            Diagnostic::new(
                                "heap-name-duplicate",
                                p("heap"),
                                h.span.clone(),
                                format!("heap `{n}` of region `{name}` is also a heap of region `{other}`"),
                                format!("`{n}` again"),
                            )
                            .with_secondary(first.clone(), format!("`{n}` of region `{other}`")),
                        );
                        ok = false;
                    } else {
                        heap_names.insert(n.clone(), (name.clone(), h.span.clone()));
                    }
                }
                if cached {
                    cached_heap = Some(h.value.clone());
                }
                if uncached {
                    uncached_heap = Some(format!("{}-uncached", h.value));
                }
            }
        }

        // Policy.
        let d = defaults;
        let align = pick(
            r.alignment.as_ref(),
            &p("alignment"),
            d.alignment.as_ref(),
            "defaults.alignment",
            RawAlignment::Fixed(v.page_size),
            &header,
        );
        let (align_kind, alignment) = match &align.value {
            RawAlignment::Fixed(bytes) => (
                "fixed",
                v.align_order(*bytes, &align.span, &align.path)
                    .map(|order| Alignment::Fixed { order }),
            ),
            RawAlignment::SizeOrder { max } => {
                let (bytes, span, path) = match max {
                    Some(m) => (m.value, m.span.clone(), format!("{}.max", align.path)),
                    None => (
                        DEFAULT_SIZE_ORDER_MAX,
                        align.span.clone(),
                        align.path.clone(),
                    ),
                };
                (
                    "size-order",
                    v.align_order(bytes, &span, &path)
                        .map(|max_order| Alignment::SizeOrder { max_order }),
                )
            }
        };
        let granule = pick(
            r.granule.as_ref(),
            &p("granule"),
            d.granule.as_ref(),
            "defaults.granule",
            v.page_size,
            &header,
        );
        let no_guard = Sp {
            value: RawGuard::default(),
            span: header.clone(),
        };
        let rg = r.guard.as_ref().unwrap_or(&no_guard);
        let dg = d.guard.as_ref().unwrap_or(&no_guard);
        let guard_before = pick(
            rg.value.before.as_ref(),
            &p("guard.before"),
            dg.value.before.as_ref(),
            "defaults.guard.before",
            0,
            &header,
        );
        let guard_after = pick(
            rg.value.after.as_ref(),
            &p("guard.after"),
            dg.value.after.as_ref(),
            "defaults.guard.after",
            0,
            &header,
        );
        // With a known region size, the default is the largest payload the policy can lay out
        // inside the region (guards and alignment padding included).
        let builtin_max = match (size, alignment) {
            (Some(s), Some(alignment)) => Policy {
                page_shift: v.page_shift(),
                alignment,
                granule: granule.value,
                guard_before: guard_before.value,
                guard_after: guard_after.value,
                max_alloc: u64::MAX,
            }
            .max_payload_within(s)
            .unwrap_or(granule.value),
            (Some(s), None) if granule.value != 0 => s - s % granule.value,
            _ => DEFAULT_MAX_ALLOC,
        };
        let max_alloc = pick(
            r.max_alloc.as_ref(),
            &p("max-alloc"),
            d.max_alloc.as_ref(),
            "defaults.max-alloc",
            builtin_max,
            &header,
        );

        if let (Some(s), Some(sspan)) = (size, &size_span) {
            if max_alloc.value > s {
                v.err(
                    Diagnostic::new(
                        "max-alloc-exceeds-region",
                        max_alloc.path.clone(),
                        max_alloc.span.clone(),
                        format!(
                            "max-alloc {} of region `{name}` is larger than the region ({})",
                            format_size(max_alloc.value),
                            format_size(s)
                        ),
                        "larger than the region",
                    )
                    .with_secondary(sspan.clone(), "the region's size"),
                );
                ok = false;
            }
        }

        let mut policy_ok = false;
        if let Some(alignment) = alignment {
            let mut policy = Policy {
                page_shift: v.page_shift(),
                alignment,
                granule: granule.value,
                guard_before: guard_before.value,
                guard_after: guard_after.value,
                max_alloc: max_alloc.value,
            };
            // `check` stops at the first problem; repair what it found and ask again so that
            // every independent problem of the policy is reported in one run. A repaired policy
            // is only good for finding more problems: the region stays out of the IR.
            for round in 0..6 {
                let Err(e) = policy.check() else {
                    policy_ok = round == 0;
                    break;
                };
                let (rule, origin_span, origin_path, value) = match e {
                    PolicyError::BadGranule => {
                        policy.granule = v.page_size;
                        policy.max_alloc = v.page_size;
                        (
                            "granule-multiple",
                            &granule.span,
                            &granule.path,
                            granule.value,
                        )
                    }
                    PolicyError::BadGuard => {
                        let before_bad = Policy {
                            guard_after: 0,
                            ..policy
                        }
                        .check()
                            == Err(PolicyError::BadGuard);
                        if before_bad {
                            policy.guard_before = 0;
                            (
                                "guard-multiple",
                                &guard_before.span,
                                &guard_before.path,
                                guard_before.value,
                            )
                        } else {
                            policy.guard_after = 0;
                            (
                                "guard-multiple",
                                &guard_after.span,
                                &guard_after.path,
                                guard_after.value,
                            )
                        }
                    }
                    PolicyError::BadAlignment => {
                        policy.alignment = Alignment::Fixed { order: 0 };
                        (
                            "alignment-too-large",
                            &align.span,
                            &align.path,
                            alignment_bytes(&alignment, v.page_size),
                        )
                    }
                    PolicyError::BadMaxAlloc => {
                        policy.max_alloc = policy.granule;
                        (
                            "max-alloc-multiple",
                            &max_alloc.span,
                            &max_alloc.path,
                            max_alloc.value,
                        )
                    }
                    PolicyError::Overflow
                    | PolicyError::TooLarge
                    | PolicyError::ZeroLength
                    | PolicyError::BadPageSize => {
                        v.err(Diagnostic::new(
                            "policy-overflow",
                            max_alloc.path.clone(),
                            max_alloc.span.clone(),
                            format!(
                                "the largest request ({}) with guards and alignment padding does not fit in 64 bits",
                                format_size(max_alloc.value)
                            ),
                            e.as_str(),
                        ));
                        break;
                    }
                };
                v.err(Diagnostic::new(
                    rule,
                    origin_path.clone(),
                    origin_span.clone(),
                    format!(
                        "{} (region `{name}`, value {})",
                        e.as_str(),
                        format_size(value)
                    ),
                    e.as_str(),
                ));
            }
        }

        // Access.
        if let Some(a) = &r.access {
            v.access(&p("access"), a);
        }
        let no_access = Sp {
            value: RawAccess::default(),
            span: header.clone(),
        };
        let ra = r.access.as_ref().unwrap_or(&no_access);
        let da = d.access.as_ref().unwrap_or(&no_access);
        let mode = ra
            .value
            .mode
            .as_ref()
            .or(da.value.mode.as_ref())
            .map_or(DEFAULT_MODE, |m| m.value);
        let owner = ra
            .value
            .owner
            .as_ref()
            .or(da.value.owner.as_ref())
            .map_or("root".to_string(), |o| o.value.clone());
        let group = ra
            .value
            .group
            .as_ref()
            .or(da.value.group.as_ref())
            .map_or("root".to_string(), |o| o.value.clone());
        let access = ir::Access {
            mode: format!("{mode:04o}"),
            owner,
            group,
        };

        if ok && policy_ok {
            let cma = cma.map(|c| c.value.clone()).unwrap_or_default();
            let (order, bytes) = match alignment {
                Some(Alignment::Fixed { order })
                | Some(Alignment::SizeOrder { max_order: order }) => (order, v.page_size << order),
                None => (0, v.page_size),
            };
            for (hn, unc) in [(&cached_heap, false), (&uncached_heap, true)] {
                if let Some(hn) = hn {
                    heaps.push(ir::HeapNode {
                        name: hn.clone(),
                        region: name.clone(),
                        uncached: unc,
                        access: access.clone(),
                        selinux_type: String::new(),
                        file_context: file_context(hn),
                    });
                }
            }
            regions.push(ir::Region {
                ident: ident(&name),
                name,
                cma,
                heap: cached_heap,
                uncached_heap,
                align_kind: align_kind.to_string(),
                align_order: order,
                align_bytes: bytes,
                granule: granule.value,
                guard_before: guard_before.value,
                guard_after: guard_after.value,
                max_alloc: max_alloc.value,
                size,
                access,
                fallback: Vec::new(),
                fallback_cma: Vec::new(),
                hooks_static: None,
                hooks: None,
                pool: None,
                accounting: r
                    .accounting
                    .as_ref()
                    .or(raw.defaults.accounting.as_ref())
                    .is_some_and(|a| a.value),
                dmem_capacity: 0,
            });
        }
    }

    for r in regions.iter_mut().filter(|r| r.accounting) {
        r.dmem_capacity = r.size.unwrap_or_else(|| {
            region_policy(r, v.page_size.trailing_zeros())
                .layout(r.max_alloc)
                .map_or(r.max_alloc, |l| l.total_len)
        });
    }
    v.fallbacks(raw, &mut regions);
    v.strategies(raw, &mut regions);
    let hook_files = v.hooks(raw, &mut regions);

    // Board-wide rules.
    let heap_count = heap_names.len();
    if heap_count > MAX_HEAPS {
        v.err(Diagnostic::new(
            "too-many-heaps",
            "region",
            board_span.clone(),
            format!("the board creates {heap_count} heaps, more than {MAX_HEAPS}"),
            "too many heaps",
        ));
    }
    for (a, (an, ab, ae, aspan, _)) in placed.iter().enumerate() {
        for (bn, bb, be, bspan, bpath) in &placed[a + 1..] {
            if ab < be && bb < ae {
                v.err(
                    Diagnostic::new(
                        "reserve-overlap",
                        bpath.clone(),
                        bspan.clone(),
                        format!(
                            "region `{bn}` ({}..{}) overlaps region `{an}` ({}..{})",
                            format_addr(*bb),
                            format_addr(*be),
                            format_addr(*ab),
                            format_addr(*ae)
                        ),
                        format!("`{bn}` starts here"),
                    )
                    .with_secondary(aspan.clone(), format!("`{an}` starts here")),
                );
            }
        }
    }

    if !v.diags.is_empty() {
        v.diags.append(v.warnings);
        return Err(v.diags);
    }
    let (Some(name), Some(arch)) = (board_name, arch) else {
        unreachable!("missing board name or arch is always diagnosed");
    };
    heaps.sort_by(|a, b| a.name.cmp(&b.name));
    assign_selinux_types(&mut heaps);
    reserved.sort_by(|a, b| (a.base, &a.node).cmp(&(b.base, &b.node)));
    if description.is_empty() {
        description = format!("{name} board");
    }
    let kernel_options = kernel_options(&regions);
    let upstream_heaps = upstream_heaps(&regions, &reserved);
    let test_heaps = test_heaps(&regions, v.page_size);
    let board = ir::Board {
        kernel_options,
        upstream_heaps,
        test_heaps,
        module: format!("{}_heaps", ident(&name)),
        br2_external: format!("HEAPGEN_{}", ident(&name).to_ascii_uppercase()),
        source_file: source.rsplit('/').next().unwrap_or(source).to_string(),
        name,
        arch,
        description,
        maintainer,
        source: source.to_string(),
        source_sha256: source_sha256.to_string(),
        source_contents: Vec::new(),
        page_size: v.page_size,
        page_shift: v.page_shift(),
        other_page_sizes: OTHER_PAGE_SHIFTS
            .iter()
            .filter(|s| **s != v.page_shift())
            .map(|s| ir::PageSize {
                shift: *s,
                label: format_size(1 << s),
            })
            .collect(),
        heapgen_version: env!("CARGO_PKG_VERSION").to_string(),
        regions,
        heaps,
        reserved,
        hook_files,
    };
    Ok((board, v.warnings))
}

/// The address of a `Name <user@host>` maintainer line, or `None` when it is not of that form
/// (one line, a name, an address with one `@` and no spaces or angle brackets), or holds a
/// character that would disguise it in the generated files (control, line-separator or
/// bidirectional characters, as for the description).
fn maintainer_address(value: &str) -> Option<&str> {
    let value = value.trim();
    if value.chars().any(is_unprintable) || value.chars().count() > MAX_MAINTAINER {
        return None;
    }
    let (name, rest) = value.split_once('<')?;
    let address = rest.strip_suffix('>')?;
    let (user, host) = address.split_once('@')?;
    let plain =
        |s: &str| !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || "<>@".contains(c));
    (!name.trim().is_empty() && !name.contains('>') && plain(user) && plain(host))
        .then_some(address)
}

/// Every heap of `regions` with the policy the test suite checks (the lines of
/// `test/heaps.conf`): a region's cached heap, then its uncached twin.
fn test_heaps(regions: &[ir::Region], page_size: u64) -> Vec<ir::TestHeap> {
    let mut out = Vec::new();
    for r in regions {
        let align = if r.align_kind == "fixed" {
            r.align_bytes
        } else {
            page_size
        };
        let or_dash = |s: String| if s.is_empty() { "-".to_string() } else { s };
        let fallback = or_dash(r.fallback_cma.join(","));
        // The hook file's stem (`tracing` for `hooks/tracing.rs`).
        let hooks = or_dash(
            r.hooks
                .as_deref()
                .and_then(|h| h.rsplit('/').next())
                .and_then(|f| f.strip_suffix(".rs"))
                .unwrap_or_default()
                .to_string(),
        );
        let pool = or_dash(r.pool.as_ref().map_or(String::new(), |p| {
            let sizes: Vec<String> = p.sizes.iter().map(u64::to_string).collect();
            format!("{}:{}", sizes.join(","), p.depth)
        }));
        let accounting = or_dash(if r.accounting {
            format!("heapgen/{}", r.name)
        } else {
            String::new()
        });
        for (heap, uncached) in [(&r.heap, 0), (&r.uncached_heap, 1)] {
            if let Some(heap) = heap {
                out.push(ir::TestHeap {
                    heap: heap.clone(),
                    cma: r.cma.clone(),
                    align,
                    granule: r.granule,
                    guard_before: r.guard_before,
                    guard_after: r.guard_after,
                    max_alloc: r.max_alloc,
                    uncached,
                    fallback: fallback.clone(),
                    hooks: hooks.clone(),
                    pool: pool.clone(),
                    accounting: accounting.clone(),
                });
            }
        }
    }
    out
}

/// The heaps upstream's CMA heap driver creates over the areas of `regions` (Linux 6.19+): one
/// per area, named after it, and `default_cma_region` over the default area (a reserved node
/// with `linux,cma-default`, or the area of `cma=`).
fn upstream_heaps(regions: &[ir::Region], reserved: &[ir::Reserve]) -> Vec<ir::UpstreamHeap> {
    let mut heaps: Vec<ir::UpstreamHeap> = Vec::new();
    let mut add =
        |name: &str, cma: &str, region: &str| match heaps.iter_mut().find(|h| h.name == name) {
            Some(h) => h.regions.push(region.to_string()),
            None => heaps.push(ir::UpstreamHeap {
                name: name.to_string(),
                cma: cma.to_string(),
                regions: vec![region.to_string()],
            }),
        };
    for r in regions {
        add(&r.cma, &r.cma, &r.name);
        let default =
            r.cma == CMDLINE_CMA_AREA || reserved.iter().any(|n| n.default && n.node == r.cma);
        if default {
            add("default_cma_region", &r.cma, &r.name);
        }
    }
    heaps.sort_by(|a, b| a.name.cmp(&b.name));
    heaps
}

/// The kernel options a board's module needs: the Rust, CMA and dma-buf heap support of every
/// module, and the dmem cgroup controller when a region is accounted.
fn kernel_options(regions: &[ir::Region]) -> Vec<ir::KernelOption> {
    let mut options = vec![
        ("CONFIG_MODULES", "a loadable module"),
        ("CONFIG_RUST", "the module is Rust"),
        ("CONFIG_CMA", "the heaps allocate from CMA areas"),
        (
            "CONFIG_DMA_CMA",
            "CMA areas for DMA, from the device tree or cma=",
        ),
        ("CONFIG_DMABUF_HEAPS", "/dev/dma_heap"),
    ];
    if regions.iter().any(|r| r.accounting) {
        options.push(("CONFIG_CGROUPS", "accounting"));
        options.push((
            "CONFIG_CGROUP_DMEM",
            "accounting: the dmem cgroup controller",
        ));
    }
    options
        .into_iter()
        .map(|(name, why)| ir::KernelOption {
            name: name.to_string(),
            why: why.to_string(),
        })
        .collect()
}

/// The names quoted and separated by commas, at most eight of them and a count of the rest.
fn quoted_list(names: &[&str]) -> String {
    const SHOWN: usize = 8;
    let mut s = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

/// The strongly connected components of the graph `edges` (Tarjan's algorithm, iterative: a
/// long chain must not exhaust the stack), each sorted, ordered by their smallest node.
fn strongly_connected(edges: &[Vec<(usize, Range<usize>, String)>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut components = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, position in its edge list)
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut pos)) = work.last_mut() {
            if *pos == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some((w, _, _)) = edges[v].get(*pos) {
                let w = *w;
                *pos += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                component.sort_unstable();
                components.push(component);
            }
        }
    }
    components.sort();
    components
}

/// The regions on a path `from -> ... -> to` along `edges` (`from` first, `to` last), if any.
fn path_between(
    edges: &[Vec<(usize, Range<usize>, String)>],
    from: usize,
    to: usize,
) -> Option<Vec<usize>> {
    let mut prev: Vec<Option<usize>> = vec![None; edges.len()];
    let mut seen = vec![false; edges.len()];
    let mut queue = std::collections::VecDeque::from([from]);
    seen[from] = true;
    while let Some(n) = queue.pop_front() {
        if n == to {
            let mut path = vec![n];
            let mut at = n;
            while let Some(p) = prev[at] {
                path.push(p);
                at = p;
            }
            path.reverse();
            return Some(path);
        }
        for (t, _, _) in &edges[n] {
            if !seen[*t] {
                seen[*t] = true;
                prev[*t] = Some(n);
                queue.push_back(*t);
            }
        }
    }
    None
}

/// The policy of a validated region, as the runtime will build it.
fn region_policy(r: &ir::Region, page_shift: u32) -> Policy {
    Policy {
        page_shift,
        alignment: if r.align_kind == "fixed" {
            Alignment::Fixed {
                order: r.align_order,
            }
        } else {
            Alignment::SizeOrder {
                max_order: r.align_order,
            }
        },
        granule: r.granule,
        guard_before: r.guard_before,
        guard_after: r.guard_after,
        max_alloc: r.max_alloc,
    }
}

fn alignment_bytes(a: &Alignment, page_size: u64) -> u64 {
    let order = match a {
        Alignment::Fixed { order } => *order,
        Alignment::SizeOrder { max_order } => *max_order,
    };
    page_size.checked_shl(order).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;

    const ARM: &str = "schema-version = 1\n[board]\nname = \"b\"\narch = \"arm64\"\n";

    #[test]
    fn heap_names_become_selinux_types_and_escaped_file_contexts() {
        assert_eq!(selinux_type_base("video-dec.hw,1@x"), "video_dec_hw_1_x");
        assert_eq!(selinux_type_base("3d"), "heap_3d");
        assert_eq!(file_context("a.b,c@d-e"), "/dev/dma_heap/a\\.b,c@d-e");
        let node = |name: &str| ir::HeapNode {
            name: name.into(),
            region: "r".into(),
            uncached: false,
            access: ir::Access {
                mode: "0660".into(),
                owner: "root".into(),
                group: "root".into(),
            },
            selinux_type: String::new(),
            file_context: file_context(name),
        };
        let mut heaps = vec![node("a-b"), node("a.b"), node("a_b")];
        assign_selinux_types(&mut heaps);
        let types: Vec<&str> = heaps.iter().map(|h| h.selinux_type.as_str()).collect();
        assert_eq!(
            types,
            ["a_b_heap_device", "a_b_2_heap_device", "a_b_3_heap_device"]
        );
    }
    const X86: &str = "schema-version = 1\n[board]\nname = \"b\"\narch = \"x86_64\"\n";

    /// A region binding an existing area, without `reserve`.
    fn region(name: &str, cma: &str, heap: &str, extra: &str) -> String {
        format!("[[region]]\nname = \"{name}\"\ncma = \"{cma}\"\nheap = \"{heap}\"\n{extra}\n")
    }

    fn run(text: &str) -> Result<ir::Board, Vec<Diagnostic>> {
        run_with_warnings(text).map(|(board, _)| board)
    }

    fn run_with_warnings(text: &str) -> Result<(ir::Board, Vec<Diagnostic>), Vec<Diagnostic>> {
        let (raw, d) = model::parse(text);
        assert!(d.is_empty(), "parse problems: {d:?}");
        validate(&raw.unwrap(), "board-configs/b.toml", "00")
            .map(|(board, warnings)| (board, warnings.into_vec()))
            .map_err(Collected::into_vec)
    }

    fn rules(text: &str) -> Vec<&'static str> {
        match run(text) {
            Ok(_) => Vec::new(),
            Err(d) => {
                let mut r: Vec<_> = d.iter().map(|d| d.rule).collect();
                r.sort();
                r.dedup();
                r
            }
        }
    }

    fn one(extra: &str) -> Vec<&'static str> {
        rules(&format!("{ARM}{}", region("r", "r-area", "h", extra)))
    }

    /// A region with a 1M granule, 8M max-alloc and (when `sized`) a 16M `reserve`.
    fn pool_rules(strategy: &str, sized: bool) -> Vec<&'static str> {
        let (cma, reserve) = if sized {
            (
                "r@90000000",
                "reserve = { base = \"0x9000_0000\", size = \"16M\" }\n",
            )
        } else {
            ("r-area", "")
        };
        let extra = format!("{reserve}granule = \"1M\"\nmax-alloc = \"8M\"\nstrategy = {strategy}");
        rules(&format!("{ARM}{}", region("r", cma, "h", &extra)))
    }

    #[test]
    fn pools_reach_the_ir() {
        let text = format!(
            "{ARM}{}",
            region(
                "r",
                "r-area",
                "h",
                "granule = \"1M\"\nstrategy = { kind = \"pool\", sizes = [\"1M\", \"4M\"], depth = 2 }"
            )
        );
        let board = run(&text).unwrap();
        let pool = board.regions[0].pool.as_ref().unwrap();
        assert_eq!(pool.sizes, [1 << 20, 4 << 20]);
        assert_eq!(pool.depth, 2);
        let direct = format!(
            "{ARM}{}",
            region("r", "r-area", "h", "strategy = { kind = \"direct\" }")
        );
        assert!(run(&direct).unwrap().regions[0].pool.is_none());
    }

    #[test]
    fn rule_strategy_kind() {
        assert_eq!(pool_rules("{ kind = \"lifo\" }", false), ["strategy-kind"]);
        assert_eq!(pool_rules("{ depth = 2 }", false), ["strategy-kind"]);
    }

    #[test]
    fn rule_strategy_key() {
        assert_eq!(
            pool_rules("{ kind = \"direct\", sizes = [\"1M\"] }", false),
            ["strategy-key"]
        );
    }

    #[test]
    fn rule_pool_sizes() {
        assert_eq!(
            pool_rules("{ kind = \"pool\", depth = 2 }", false),
            ["pool-sizes"]
        );
        assert_eq!(
            pool_rules("{ kind = \"pool\", sizes = [], depth = 2 }", false),
            ["pool-sizes"]
        );
    }

    #[test]
    fn rule_pool_size_granule() {
        assert_eq!(
            pool_rules("{ kind = \"pool\", sizes = [\"1536K\"], depth = 2 }", false),
            ["pool-size-granule"]
        );
    }

    #[test]
    fn rule_pool_size_max_alloc() {
        assert_eq!(
            pool_rules("{ kind = \"pool\", sizes = [\"16M\"], depth = 2 }", false),
            ["pool-size-max-alloc"]
        );
    }

    #[test]
    fn rule_pool_sizes_order() {
        assert_eq!(
            pool_rules(
                "{ kind = \"pool\", sizes = [\"2M\", \"2M\"], depth = 2 }",
                false
            ),
            ["pool-sizes-order"]
        );
        assert_eq!(
            pool_rules(
                "{ kind = \"pool\", sizes = [\"2M\", \"1M\"], depth = 2 }",
                false
            ),
            ["pool-sizes-order"]
        );
    }

    #[test]
    fn rule_pool_depth() {
        for depth in ["0", "65", "-1"] {
            assert_eq!(
                pool_rules(
                    &format!("{{ kind = \"pool\", sizes = [\"1M\"], depth = {depth} }}"),
                    false
                ),
                ["pool-depth"]
            );
        }
        assert_eq!(
            pool_rules("{ kind = \"pool\", sizes = [\"1M\"] }", false),
            ["pool-depth"]
        );
        assert!(pool_rules("{ kind = \"pool\", sizes = [\"1M\"], depth = 64 }", false).is_empty());
    }

    #[test]
    fn rule_pool_too_large() {
        // 2 x (4M + 4M) = 16M fits a 16M region exactly; 3 x does not.
        assert!(pool_rules(
            "{ kind = \"pool\", sizes = [\"4M\", \"4M\"], depth = 1 }",
            true
        )
        .contains(&"pool-sizes-order"));
        assert!(pool_rules("{ kind = \"pool\", sizes = [\"4M\"], depth = 4 }", true).is_empty());
        assert_eq!(
            pool_rules("{ kind = \"pool\", sizes = [\"4M\"], depth = 5 }", true),
            ["pool-too-large"]
        );
        // Unknown region size: no check.
        assert!(pool_rules("{ kind = \"pool\", sizes = [\"4M\"], depth = 64 }", false).is_empty());
    }

    #[test]
    fn a_minimal_board_is_valid() {
        assert_eq!(one(""), Vec::<&str>::new());
    }

    #[test]
    fn rule_schema_version() {
        let text = format!("{}{}", ARM.replace("= 1", "= 2"), region("r", "a", "h", ""));
        assert_eq!(rules(&text), ["schema-version"]);
        let text = format!(
            "{}{}",
            ARM.replace("schema-version = 1\n", ""),
            region("r", "a", "h", "")
        );
        assert_eq!(rules(&text), ["schema-version"]);
    }

    #[test]
    fn rule_missing_key() {
        assert_eq!(
            rules(&format!(
                "schema-version = 1\n{}",
                region("r", "a", "h", "")
            )),
            ["missing-key"]
        );
        assert_eq!(
            rules(&format!("{ARM}[[region]]\nname = \"r\"\n")),
            ["missing-key"]
        );
        assert_eq!(rules("schema-version = 1\n[board]\nname = \"b\"\n[[region]]\nname = \"r\"\ncma = \"a\"\nheap = \"h\"\n"), ["missing-key"]);
    }

    #[test]
    fn rule_board_name() {
        for bad in [
            "Acme",
            "acme_evb",
            "-acme",
            "acme-",
            "1acme",
            &"a".repeat(49),
        ] {
            let text = format!(
                "{}{}",
                ARM.replace("\"b\"", &format!("\"{bad}\"")),
                region("r", "a", "h", "")
            );
            assert_eq!(rules(&text), ["board-name"], "{bad}");
        }
    }

    #[test]
    fn rule_board_arch() {
        let text = format!(
            "{}{}",
            ARM.replace("arm64", "aarch64"),
            region("r", "a", "h", "")
        );
        let d = run(&text).unwrap_err();
        assert_eq!(d[0].rule, "board-arch");
        assert_eq!(d[0].help.as_deref(), Some("did you mean `arm64`?"));
    }

    #[test]
    fn rule_board_maintainer() {
        for bad in [
            "Jane",
            "<jane@example.com>",
            "Jane <jane>",
            "Jane <ja ne@x.org>",
            "J <a@b>\nx",
            // Found by `cargo xtask fuzz`: a right-to-left override reached the rst page.
            "Jane <ja\u{202e}ne@example.com>",
            "Ja\u{2028}ne <jane@example.com>",
            // Found by `cargo xtask fuzz`: a line of the rst page longer than docutils reads.
            &format!("{} <jane@example.com>", "J".repeat(MAX_MAINTAINER)),
        ] {
            let text = format!(
                "{ARM}maintainer = {}\n{}",
                toml::Value::String(bad.to_string()),
                region("r", "a", "h", "")
            );
            assert_eq!(rules(&text), ["board-maintainer"], "{bad:?}");
        }
        let text = format!(
            "{ARM}maintainer = \"Jane Doe <jane@example.com>\"\n{}",
            region("r", "a", "h", "")
        );
        assert!(rules(&text).is_empty());
    }

    #[test]
    fn rule_board_description_length() {
        let at = |n: usize| {
            format!(
                "{ARM}description = \"{}\"\n{}",
                "d".repeat(n),
                region("r", "a", "h", "")
            )
        };
        assert!(rules(&at(MAX_DESCRIPTION)).is_empty());
        assert_eq!(rules(&at(MAX_DESCRIPTION + 1)), ["board-description"]);
    }

    #[test]
    fn rule_reserve_alloc_range_count() {
        let ranges = |n: usize| vec!["[0x4000_0000, \"1G\"]"; n].join(", ");
        let text = |n: usize| {
            format!(
                "{ARM}{}",
                region(
                    "r",
                    "r",
                    "h",
                    &format!(
                        "reserve = {{ size = \"4M\", alloc-ranges = [{}] }}",
                        ranges(n)
                    )
                )
            )
        };
        assert!(rules(&text(MAX_ALLOC_RANGES)).is_empty());
        assert_eq!(rules(&text(MAX_ALLOC_RANGES + 1)), ["reserve-alloc-range"]);
    }

    #[test]
    fn rule_board_description() {
        let text = format!(
            "{ARM}description = \"two\\nlines\"\n{}",
            region("r", "a", "h", "")
        );
        assert_eq!(rules(&text), ["board-description"]);
    }

    #[test]
    fn rule_no_regions() {
        assert_eq!(rules(ARM), ["no-regions"]);
    }

    #[test]
    fn rule_region_name() {
        assert_eq!(
            rules(&format!("{ARM}{}", region("Video", "a", "h", ""))),
            ["region-name"]
        );
        assert_eq!(
            rules(&format!("{ARM}{}", region("vid_eo", "a", "h", ""))),
            ["region-name"]
        );
    }

    #[test]
    fn rule_region_name_duplicate() {
        let text = format!(
            "{ARM}{}{}",
            region("r", "a", "h", ""),
            region("r", "b", "i", "")
        );
        let d = run(&text).unwrap_err();
        assert_eq!(d[0].rule, "region-name-duplicate");
        assert_eq!(d[0].secondary.len(), 1, "both definitions are named");
    }

    #[test]
    fn rule_cma_name() {
        assert_eq!(one("").len(), 0);
        assert_eq!(
            rules(&format!("{ARM}{}", region("r", "a/b", "h", ""))),
            ["cma-name"]
        );
        assert_eq!(
            rules(&format!("{ARM}{}", region("r", "", "h", ""))),
            ["cma-name"]
        );
        let long_stem = "n".repeat(32);
        let text = format!(
            "{ARM}{}",
            region("r", &long_stem, "h", "reserve = { size = \"4M\" }")
        );
        assert_eq!(rules(&text), ["cma-name"]);
    }

    fn three(fallbacks: [&str; 3]) -> Result<ir::Board, Vec<Diagnostic>> {
        let extra = |f: &str| {
            if f.is_empty() {
                String::new()
            } else {
                format!("fallback = [{f}]")
            }
        };
        run(&format!(
            "{ARM}{}{}{}",
            region("a", "a-area", "ha", &extra(fallbacks[0])),
            region("b", "b-area", "hb", &extra(fallbacks[1])),
            region("c", "c-area", "hc", &extra(fallbacks[2])),
        ))
    }

    fn fallback_rules(fallbacks: [&str; 3]) -> Vec<&'static str> {
        match three(fallbacks) {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(|d| d.rule).collect(),
        }
    }

    #[test]
    fn fallback_chains_reach_the_ir_with_their_areas() {
        let board = three(["\"c\", \"b\"", "\"c\"", ""]).expect("valid");
        assert_eq!(board.regions[0].fallback, ["c", "b"]);
        assert_eq!(board.regions[0].fallback_cma, ["c-area", "b-area"]);
        assert_eq!(board.regions[1].fallback_cma, ["c-area"]);
        assert!(board.regions[2].fallback.is_empty());
        assert!(three(["", "", ""]).is_ok());
        assert!(three(["", "", "\"a\""]).is_ok());
    }

    #[test]
    fn rule_fallback_unknown() {
        let d = three(["\"d\"", "", ""]).unwrap_err();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].rule, "fallback-unknown");
        assert_eq!(d[0].path, "region[0].fallback[0]");
        // Heap and area names are not region names.
        assert_eq!(fallback_rules(["\"hb\"", "", ""]), ["fallback-unknown"]);
    }

    #[test]
    fn rule_fallback_self() {
        assert_eq!(fallback_rules(["", "\"b\"", ""]), ["fallback-self"]);
    }

    #[test]
    fn rule_fallback_duplicate() {
        assert_eq!(
            fallback_rules(["\"b\", \"b\"", "", ""]),
            ["fallback-duplicate"]
        );
    }

    #[test]
    fn rule_fallback_cycle() {
        // Two regions, reported once.
        assert_eq!(fallback_rules(["\"b\"", "\"a\"", ""]), ["fallback-cycle"]);
        // Three regions.
        let d = three(["\"b\"", "\"c\"", "\"a\""]).unwrap_err();
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].rule, "fallback-cycle");
        assert_eq!(d[0].path, "region[0].fallback[0]");
        assert!(
            d[0].message.contains("`a` -> `b` -> `c` -> `a`"),
            "{}",
            d[0].message
        );
        // Two chains into one region are not a cycle.
        assert!(three(["\"c\"", "\"c\"", ""]).is_ok());
    }

    #[test]
    fn one_loop_is_one_report() {
        // a -> b -> a and b -> c -> b: one component, one report, naming the third region.
        let d = three(["\"b\"", "\"a\", \"c\"", "\"b\""]).unwrap_err();
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].message.contains("`a` -> `b` -> `a`"),
            "{}",
            d[0].message
        );
        assert!(
            d[0].help.as_deref().unwrap_or_default().contains("`c`"),
            "{:?}",
            d[0].help
        );
        // Two separate loops are two reports.
        let text = format!(
            "{ARM}{}{}{}{}",
            region("a", "a-area", "ha", "fallback = [\"b\"]"),
            region("b", "b-area", "hb", "fallback = [\"a\"]"),
            region("c", "c-area", "hc", "fallback = [\"d\"]"),
            region("d", "d-area", "hd", "fallback = [\"c\"]"),
        );
        assert_eq!(run(&text).unwrap_err().len(), 2);
    }

    #[test]
    fn components_are_found_without_recursion() {
        let n = 100_000;
        let edges: Vec<Vec<(usize, Range<usize>, String)>> = (0..n)
            .map(|i| vec![((i + 1) % n, 0..0, String::new())])
            .collect();
        let c = strongly_connected(&edges);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].len(), n);
        let chain: Vec<Vec<(usize, Range<usize>, String)>> = (0..n)
            .map(|i| {
                if i + 1 < n {
                    vec![(i + 1, 0..0, String::new())]
                } else {
                    Vec::new()
                }
            })
            .collect();
        assert_eq!(strongly_connected(&chain).len(), n);
    }

    #[test]
    fn accounting_is_inherited_from_defaults_and_overridden_per_region() {
        let board = run(&format!(
            "{ARM}[defaults]\naccounting = true\n{}{}",
            region("a", "a-area", "ha", ""),
            region("b", "b-area", "hb", "accounting = false"),
        ))
        .expect("valid");
        let accounting: Vec<bool> = board.regions.iter().map(|r| r.accounting).collect();
        assert_eq!(accounting, [true, false]);
        // Not reserved: the capacity is the largest buffer's footprint (256M by default).
        assert_eq!(board.regions[0].dmem_capacity, 256 << 20);
        assert_eq!(board.regions[1].dmem_capacity, 0);
        let board = run(&format!("{ARM}{}", region("a", "a-area", "ha", ""))).expect("valid");
        assert!(!board.regions[0].accounting, "off by default");
    }

    #[test]
    fn hook_files_reach_the_ir_once() {
        let board = run(&format!(
            "{ARM}{}{}",
            region("a", "a-area", "ha", "hooks = \"hooks/acme_protect.rs\""),
            region("b", "b-area", "hb", "hooks = \"hooks/acme_protect.rs\""),
        ))
        .expect("valid");
        assert_eq!(board.hook_files.len(), 1);
        let h = &board.hook_files[0];
        assert_eq!(h.path, "hooks/acme_protect.rs");
        assert_eq!(h.module, "hooks_acme_protect");
        assert_eq!(h.ops_static, "HOOKS_ACME_PROTECT");
        assert_eq!(
            board.regions[1].hooks_static.as_deref(),
            Some("HOOKS_ACME_PROTECT")
        );
    }

    #[test]
    fn rule_hooks_path() {
        for bad in [
            "/abs/hooks.rs",
            "../hooks.rs",
            "./hooks.rs",
            "hooks//x.rs",
            "hooks/x.c",
            "hooks/X.rs",
            "hooks/1x.rs",
            "hooks/a-b.rs",
            "",
        ] {
            assert_eq!(one(&format!("hooks = \"{bad}\"")), ["hooks-path"], "{bad}");
        }
        assert_eq!(
            one("hooks = \"vendor/acme_protect.rs\""),
            Vec::<&str>::new()
        );
        // Two files that would land on one name.
        assert_eq!(
            rules(&format!(
                "{ARM}{}{}",
                region("a", "a-area", "ha", "hooks = \"x/p.rs\""),
                region("b", "b-area", "hb", "hooks = \"y/p.rs\""),
            )),
            ["hooks-path"]
        );
    }

    #[test]
    fn rule_cma_duplicate() {
        let text = format!(
            "{ARM}{}{}",
            region("r", "a", "h", ""),
            region("s", "a", "i", "")
        );
        let d = run(&text).unwrap_err();
        assert_eq!(d[0].rule, "cma-duplicate");
        assert!(
            d[0].message.contains("region `r` and region `s`"),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn rule_cma_x86_64() {
        assert_eq!(
            rules(&format!("{X86}{}", region("r", "reserved", "h", ""))),
            Vec::<&str>::new()
        );
        assert_eq!(
            rules(&format!("{X86}{}", region("r", "linux,cma", "h", ""))),
            ["cma-x86-64"]
        );
    }

    #[test]
    fn rule_reserve_arch() {
        let text = format!(
            "{X86}{}",
            region("r", "reserved", "h", "reserve = { size = \"4M\" }")
        );
        assert_eq!(rules(&text), ["reserve-arch"]);
    }

    #[test]
    fn rule_reserve_size() {
        assert_eq!(one("reserve = { size = 0 }"), ["reserve-size"]);
        assert_eq!(one("reserve = { size = \"6M\" }"), ["reserve-size"]);
    }

    #[test]
    fn rule_reserve_placement() {
        let text = format!(
            "{ARM}{}",
            region(
                "r",
                "r@60000000",
                "h",
                "reserve = { base = 0x60000000, size = \"4M\", alignment = \"4M\" }"
            )
        );
        assert_eq!(rules(&text), ["reserve-placement"]);
    }

    #[test]
    fn rule_reserve_alignment() {
        let text = format!(
            "{ARM}{}",
            region(
                "r",
                "r@60100000",
                "h",
                "reserve = { base = 0x60100000, size = \"4M\" }"
            )
        );
        assert_eq!(rules(&text), ["reserve-alignment"]);
        let text = format!(
            "{ARM}{}",
            region(
                "r",
                "r",
                "h",
                "reserve = { size = \"4M\", alignment = \"3K\" }"
            )
        );
        assert_eq!(rules(&text), ["reserve-alignment"]);
    }

    #[test]
    fn rule_reserve_range() {
        let text = format!(
            "{ARM}{}",
            region(
                "r",
                "r@ffffffffffc00000",
                "h",
                "reserve = { base = 0xffff_ffff_ffc0_0000, size = \"8M\" }"
            )
        );
        assert_eq!(rules(&text), ["reserve-range"]);
    }

    #[test]
    fn rule_reserve_alloc_range() {
        let text = format!(
            "{ARM}{}",
            region(
                "r",
                "r",
                "h",
                "reserve = { size = \"8M\", alloc-ranges = [[0x40000000, \"4M\"]] }"
            )
        );
        assert_eq!(rules(&text), ["reserve-alloc-range"]);
        let text = format!(
            "{ARM}{}",
            region(
                "r",
                "r",
                "h",
                "reserve = { size = \"8M\", alloc-ranges = [[0x40000000, 0]] }"
            )
        );
        assert_eq!(rules(&text), ["reserve-alloc-range"]);
    }

    #[test]
    fn rule_reserve_default_duplicate() {
        let text = format!(
            "{ARM}{}{}",
            region("r", "r", "h", "reserve = { size = \"4M\", default = true }"),
            region("s", "s", "i", "reserve = { size = \"4M\", default = true }")
        );
        assert_eq!(rules(&text), ["reserve-default-duplicate"]);
    }

    #[test]
    fn rule_cma_reserve_mismatch() {
        let text = format!(
            "{ARM}{}",
            region(
                "r",
                "r@70000000",
                "h",
                "reserve = { base = 0x60000000, size = \"4M\" }"
            )
        );
        let d = run(&text).unwrap_err();
        assert_eq!(d[0].rule, "cma-reserve-mismatch");
        assert_eq!(d[0].help.as_deref(), Some("write `cma = \"r@60000000\"`"));
        let text = format!(
            "{ARM}{}",
            region("r", "r@60000000", "h", "reserve = { size = \"4M\" }")
        );
        assert_eq!(rules(&text), ["cma-reserve-mismatch"]);
    }

    #[test]
    fn rule_variants() {
        assert_eq!(one("variants = []"), ["variants"]);
        assert_eq!(one("variants = [\"cahced\"]"), ["variants"]);
        assert_eq!(one("variants = [\"cached\", \"cached\"]"), ["variants"]);
    }

    #[test]
    fn rule_heap_name() {
        for bad in ["Camera", "cam/era", "cam era", "cam%1", ""] {
            assert_eq!(
                rules(&format!("{ARM}{}", region("r", "a", bad, ""))),
                ["heap-name"],
                "{bad}"
            );
        }
        let long = "h".repeat(60);
        assert_eq!(
            rules(&format!("{ARM}{}", region("r", "a", &long, ""))),
            Vec::<&str>::new()
        );
        assert_eq!(
            rules(&format!(
                "{ARM}{}",
                region("r", "a", &long, "variants = [\"uncached\"]")
            )),
            ["heap-name"]
        );
        assert_eq!(
            rules(&format!("{ARM}{}", region("r", "a", "cam@1.x,y_z-w", ""))),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn rule_heap_name_reserved() {
        for name in RESERVED_HEAP_NAMES {
            assert_eq!(
                rules(&format!("{ARM}{}", region("r", "a", name, ""))),
                ["heap-name-reserved"],
                "{name}"
            );
        }
        // The uncached twin of `system` is `system-uncached`.
        let text = format!(
            "{ARM}{}",
            region("r", "a", "system", "variants = [\"uncached\"]")
        );
        assert_eq!(rules(&text), ["heap-name-reserved"]);
    }

    #[test]
    fn rule_heap_name_cma_clash() {
        let text = format!(
            "{ARM}{}{}",
            region("r", "camera", "h", ""),
            region("s", "b", "camera", "")
        );
        let d = run(&text).unwrap_err();
        assert_eq!(d[0].rule, "heap-name-cma-clash");
        assert_eq!(d[0].secondary.len(), 1);
    }

    #[test]
    fn rule_heap_name_duplicate() {
        let text = format!(
            "{ARM}{}{}",
            region("r", "a", "h", ""),
            region("s", "b", "h", "")
        );
        assert_eq!(rules(&text), ["heap-name-duplicate"]);
        // Uncached twins count: `h-uncached` of r clashes with a heap named `h-uncached`.
        let text = format!(
            "{ARM}{}{}",
            region("r", "a", "h", "variants = [\"cached\", \"uncached\"]"),
            region("s", "b", "h-uncached", "")
        );
        assert_eq!(rules(&text), ["heap-name-duplicate"]);
    }

    #[test]
    fn rule_too_many_heaps() {
        let mut text = ARM.to_string();
        for i in 0..65 {
            text.push_str(&region(
                &format!("r{i}"),
                &format!("a{i}"),
                &format!("h{i}"),
                "variants = [\"cached\", \"uncached\"]",
            ));
        }
        assert_eq!(rules(&text), ["too-many-heaps"]);
    }

    #[test]
    fn rule_alignment_power_of_two() {
        assert_eq!(one("alignment = \"12K\""), ["alignment-power-of-two"]);
        assert_eq!(one("alignment = \"2K\""), ["alignment-power-of-two"]);
        assert_eq!(
            one("alignment = { size-order = true, max = \"3M\" }"),
            ["alignment-power-of-two"]
        );
    }

    #[test]
    fn rule_alignment_too_large() {
        assert_eq!(one("alignment = \"8G\""), ["alignment-too-large"]);
    }

    #[test]
    fn rule_granule_multiple() {
        assert_eq!(one("granule = \"6K\""), ["granule-multiple"]);
        assert_eq!(one("granule = 0"), ["granule-multiple"]);
    }

    /// A policy repaired to look for more problems must not reach the rules that divide by its
    /// granule (a zero granule next to a pool panicked with a division by zero).
    #[test]
    fn a_region_with_a_bad_policy_stays_out_of_the_ir() {
        let pool = "strategy = { kind = \"pool\", sizes = [\"1M\"], depth = 2 }";
        assert_eq!(one(&format!("granule = 0\n{pool}")), ["granule-multiple"]);
        assert_eq!(
            one(&format!("granule = \"6K\"\n{pool}")),
            ["granule-multiple"]
        );
        assert_eq!(
            one(&format!("guard = {{ before = 100 }}\n{pool}")),
            ["guard-multiple"]
        );
    }

    #[test]
    fn rule_guard_multiple() {
        assert_eq!(one("guard = { before = 100 }"), ["guard-multiple"]);
        // Both bad guards are reported, each at its own key.
        let d = run(&format!(
            "{ARM}{}",
            region("r", "a", "h", "guard = { before = 100, after = 200 }")
        ))
        .unwrap_err();
        let paths: Vec<_> = d.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["region[0].guard.before", "region[0].guard.after"]);
    }

    #[test]
    fn rule_max_alloc_multiple() {
        assert_eq!(
            one("granule = \"64K\"\nmax-alloc = \"100K\""),
            ["max-alloc-multiple"]
        );
        assert_eq!(one("max-alloc = 0"), ["max-alloc-multiple"]);
    }

    #[test]
    fn rule_policy_overflow() {
        assert_eq!(
            one("max-alloc = 0xffff_ffff_ffff_f000\nguard = { after = \"4K\" }"),
            ["policy-overflow"]
        );
    }

    #[test]
    fn rule_max_alloc_exceeds_region() {
        let text = format!(
            "{ARM}{}",
            region(
                "r",
                "r",
                "h",
                "reserve = { size = \"4M\" }\nmax-alloc = \"8M\""
            )
        );
        let d = run(&text).unwrap_err();
        assert_eq!(d[0].rule, "max-alloc-exceeds-region");
        assert_eq!(d[0].secondary.len(), 1);
    }

    #[test]
    fn rule_reserve_overlap() {
        let text = format!(
            "{ARM}{}{}",
            region(
                "video",
                "video@90000000",
                "v",
                "reserve = { base = 0x9000_0000, size = \"64M\" }"
            ),
            region(
                "camera",
                "camera@92000000",
                "c",
                "reserve = { base = 0x9200_0000, size = \"64M\" }"
            )
        );
        let d = run(&text).unwrap_err();
        assert_eq!(d[0].rule, "reserve-overlap");
        assert_eq!(
            d[0].message,
            "region `camera` (0x9200_0000..0x9600_0000) overlaps region `video` (0x9000_0000..0x9400_0000)"
        );
        assert_eq!(d[0].secondary.len(), 1);
    }

    #[test]
    fn world_writable_with_opt_in_is_a_warning() {
        let text = format!(
            "{ARM}{}",
            region(
                "r",
                "r-area",
                "h",
                "access = { mode = \"0666\", world-writable = true }"
            )
        );
        let (board, warnings) = run_with_warnings(&text).expect("accepted");
        assert_eq!(board.heaps[0].access.mode, "0666");
        let rules: Vec<_> = warnings.iter().map(|d| d.rule).collect();
        assert_eq!(rules, ["access-world-writable"]);
        assert_eq!(warnings[0].severity, crate::diag::Severity::Warning);
    }

    #[test]
    fn rule_access_world_writable_unused() {
        assert_eq!(
            one("access = { mode = \"0660\", world-writable = true }"),
            ["access-world-writable-unused"]
        );
        assert!(one("access = { mode = \"0660\", world-writable = false }").is_empty());
    }

    #[test]
    fn rule_access_world_writable() {
        assert_eq!(
            one("access = { mode = \"0666\" }"),
            ["access-world-writable"]
        );
        let text = format!(
            "{ARM}[defaults]\naccess = {{ mode = 0o662 }}\n{}",
            region("r", "a", "h", "")
        );
        assert_eq!(rules(&text), ["access-world-writable"]);
    }

    /// Read access to a heap's node is enough to allocate from it (upstream checks no write
    /// mode), so any bit for others is world access.
    #[test]
    fn rule_access_world_access() {
        for mode in ["0644", "0444", "0604", "0601", "0661"] {
            assert_eq!(
                one(&format!("access = {{ mode = \"{mode}\" }}")),
                ["access-world-access"],
                "{mode}"
            );
        }
        assert!(one("access = { mode = \"0640\" }").is_empty());
        assert!(one("access = { mode = \"0400\" }").is_empty());
        // The opt-in makes it a warning, by its new name or its old one.
        for key in ["world-access", "world-writable"] {
            let text = format!(
                "{ARM}{}",
                region(
                    "r",
                    "r-area",
                    "h",
                    &format!("access = {{ mode = \"0444\", {key} = true }}")
                )
            );
            let (board, warnings) = run_with_warnings(&text).expect("accepted");
            assert_eq!(board.heaps[0].access.mode, "0444");
            let rules: Vec<_> = warnings.iter().map(|d| d.rule).collect();
            assert_eq!(rules, ["access-world-access"], "{key}");
        }
        // Both names at once: one too many (the mode is still allowed, with its warning).
        assert_eq!(
            one("access = { mode = \"0666\", world-access = true, world-writable = true }"),
            ["access-world-alias", "access-world-writable"]
        );
        assert_eq!(
            one("access = { mode = \"0660\", world-access = true }"),
            ["access-world-writable-unused"]
        );
    }

    #[test]
    fn rule_access_mode() {
        assert_eq!(one("access = { mode = \"4660\" }"), ["access-mode"]);
    }

    #[test]
    fn rule_access_owner_and_group() {
        assert_eq!(one("access = { owner = \"\" }"), ["access-owner"]);
        assert_eq!(one("access = { owner = \"Root\" }"), ["access-owner"]);
        assert_eq!(
            one("access = { group = \"video group\" }"),
            ["access-group"]
        );
        assert_eq!(one("access = { group = \"1video\" }"), ["access-group"]);
    }

    #[test]
    fn every_problem_is_reported_in_one_run() {
        let text = format!(
            "{ARM}{}{}",
            region(
                "r",
                "a",
                "system",
                "granule = \"6K\"\naccess = { mode = \"0666\" }"
            ),
            region("r", "a", "h", "variants = []")
        );
        assert_eq!(
            rules(&text),
            [
                "access-world-writable",
                "cma-duplicate",
                "granule-multiple",
                "heap-name-reserved",
                "region-name-duplicate",
                "variants"
            ]
        );
    }

    #[test]
    fn the_ir_is_complete_and_sorted() {
        let text = format!(
            "{ARM}[defaults]\naccess = {{ mode = \"0660\", group = \"video\" }}\n{}{}{}",
            region("zeta", "zeta@64000000", "zeta", "reserve = { base = 0x6400_0000, size = \"8M\" }\nvariants = [\"cached\", \"uncached\"]"),
            region("alpha", "alpha@60000000", "alpha", "reserve = { base = 0x6000_0000, size = \"4M\" }\nalignment = { size-order = true }\naccess = { owner = \"system\" }"),
            region("dyn", "dyn", "dyn-heap", "reserve = { size = \"4M\", alloc-ranges = [[0x4000_0000, \"1G\"]], default = true }"),
        );
        let b = run(&text).unwrap();
        assert_eq!(b.module, "b_heaps");
        assert_eq!(b.description, "b board");
        assert_eq!(b.source, "board-configs/b.toml");
        let names: Vec<_> = b.heaps.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["alpha", "dyn-heap", "zeta", "zeta-uncached"]);
        let regions: Vec<_> = b.regions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            regions,
            ["zeta", "alpha", "dyn"],
            "regions stay in file order"
        );
        let nodes: Vec<_> = b.reserved.iter().map(|r| r.node.as_str()).collect();
        assert_eq!(nodes, ["dyn", "alpha@60000000", "zeta@64000000"]);
        let alpha = &b.regions[1];
        assert_eq!(
            (
                alpha.align_kind.as_str(),
                alpha.align_order,
                alpha.align_bytes
            ),
            ("size-order", 8, 1 << 20)
        );
        assert_eq!(
            alpha.max_alloc,
            4 << 20,
            "max-alloc defaults to the region size"
        );
        assert_eq!(alpha.access.mode, "0660");
        assert_eq!(alpha.access.owner, "system");
        assert_eq!(alpha.access.group, "video");
        assert_eq!(b.regions[0].uncached_heap.as_deref(), Some("zeta-uncached"));
        assert!(b.reserved[0].default);
        assert_eq!(b.reserved[0].alloc_ranges, [(0x4000_0000, 1 << 30)]);
        assert_eq!(b.reserved[1].label, "heapgen_alpha");
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let b = run(&format!("{X86}{}", region("r", "reserved", "h", ""))).unwrap();
        let r = &b.regions[0];
        assert_eq!(
            (r.granule, r.align_bytes, r.max_alloc),
            (4096, 4096, DEFAULT_MAX_ALLOC)
        );
        assert_eq!(r.access.mode, "0600");
        assert_eq!(r.size, None);
        assert!(b.reserved.is_empty());
    }
}
