//! Validation: the raw model to the IR, collecting every problem instead of stopping at the first.
//!
//! Every rule has a stable name (the `rule` of its diagnostics), a [`Rule`] constant next to its
//! check and unit tests next to both, in the module of its family: [`board`] (the file and its
//! `[board]` table), [`cma`], [`reserve`], [`heaps`], [`policy`], [`access`], [`fallback`],
//! [`strategy`] and [`hooks`]. [`RULES`] lists them all, the parser's ([`crate::model::RULES`])
//! included. Policy arithmetic (granule, guards, alignment order, `max-alloc`, overflow of the
//! largest request) is not written here: each region's `heapgen_policy::Policy` is built and
//! `Policy::check` decides, the same code the kernel runtime allocates with.
//!
//! The checks share one [`Validator`]: the diagnostics found so far and the tables that rules
//! across regions need (names already used, placed regions). A board is valid when no error was
//! pushed; a check whose result a later rule needs returns it as an `Option` (`None`: diagnosed).

use std::collections::BTreeMap;
use std::ops::Range;

use heapgen_policy::DEFAULT_PAGE_SHIFT;

use crate::diag::{Collected, Diagnostic, Rule};
use crate::ir;
use crate::model::{RawBoard, RawRegion, Sp};
use crate::size::format_size;

pub mod access;
pub mod board;
pub mod cma;
pub mod fallback;
pub mod heaps;
pub mod hooks;
pub mod policy;
pub mod reserve;
pub mod strategy;

pub use access::DEFAULT_MODE;
pub use board::{
    is_recipe_file_name, is_unprintable, page_sizes, MAX_BOARD_NAME, MAX_DESCRIPTION,
    MAX_MAINTAINER, MAX_REGION_NAME,
};
pub use cma::CMDLINE_CMA_AREA;
pub use heaps::{
    file_context, selinux_type_base, MAX_HEAPS, MAX_HEAP_NAME, RESERVED_HEAP_NAMES, VARIANTS,
};
pub use policy::{DEFAULT_MAX_ALLOC, DEFAULT_SIZE_ORDER_MAX};
pub use reserve::{cma_granularity, MAX_ALLOC_RANGES};
pub use strategy::{MAX_POOL_DEPTH, MAX_POOL_SIZES};

/// Rule: a required key is missing.
pub const MISSING_KEY: Rule = Rule {
    name: "missing-key",
    summary: "the keys a board file needs are there",
    docs: "Diagnostics",
};

/// Every rule of the board file, by family.
pub const RULE_FAMILIES: &[&[Rule]] = &[
    crate::model::RULES,
    &[MISSING_KEY],
    board::RULES,
    cma::RULES,
    reserve::RULES,
    heaps::RULES,
    policy::RULES,
    access::RULES,
    fallback::RULES,
    strategy::RULES,
    hooks::RULES,
];

/// Every rule of the board file (what users see as `error[<name>]`), the parser's included.
pub fn rules() -> impl Iterator<Item = &'static Rule> {
    RULE_FAMILIES.iter().flat_map(|family| family.iter())
}

/// The identifier form of a name: every character outside `[A-Za-z0-9_]` becomes `_`.
pub fn ident(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
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

/// Where a name was first used, for the other side of a conflict.
#[derive(Clone, Debug)]
struct FirstUse {
    /// The region that used it.
    region: String,
    /// Where.
    span: Range<usize>,
}

/// What the validation of a board file knows besides the raw model.
pub struct Input<'a> {
    /// The name generated files give the board file (see [`crate::source_name`]).
    pub source: &'a str,
    /// The board file's bytes: their sha256 and a copy go into the generated trees.
    pub bytes: &'a [u8],
    /// Reads a hook file by its path as written in the board file (`hooks = "<path>.rs"`), or
    /// says why it cannot be used (rule `hooks-file`). Called once per hook file, and only for
    /// a board that is otherwise valid.
    pub read_hook: &'a dyn Fn(&str) -> Result<Vec<u8>, hooks::Unusable>,
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("source", &self.source)
            .field("bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// The state every rule shares: the diagnostics found so far, the board-wide values they
/// depend on, and the names and places later regions are checked against.
struct Validator<'a> {
    raw: &'a RawBoard,
    diags: Collected,
    warnings: Collected,
    /// The board's architecture, when `board.arch` is valid.
    arch: Option<ir::Arch>,
    /// The board's page size (`board.page-size`), in bytes: the unit of every policy.
    page_size: u64,
    /// Region name -> where it is first defined.
    region_names: BTreeMap<String, Range<usize>>,
    /// The CMA area of every region (valid or not), for the heap/CMA clash rule.
    cma_areas: BTreeMap<String, FirstUse>,
    /// CMA areas bound so far, for `cma-duplicate`.
    cma_bound: BTreeMap<String, FirstUse>,
    /// Heap names (uncached twins included) used so far.
    heap_names: BTreeMap<String, FirstUse>,
    /// The first region whose `reserve` is the default CMA area.
    default_reserve: Option<FirstUse>,
    /// Regions placed at a fixed base, for `reserve-overlap`.
    placed: Vec<reserve::Placed>,
}

impl<'a> Validator<'a> {
    fn new(raw: &'a RawBoard, found: Collected) -> Self {
        Self {
            raw,
            diags: found,
            warnings: Collected::new(),
            arch: None,
            page_size: 1 << DEFAULT_PAGE_SHIFT,
            region_names: BTreeMap::new(),
            cma_areas: BTreeMap::new(),
            cma_bound: BTreeMap::new(),
            heap_names: BTreeMap::new(),
            default_reserve: None,
            placed: Vec::new(),
        }
    }

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
}

/// A region that passed every rule of its own, ready for the IR.
struct ValidRegion {
    region: ir::Region,
    heaps: Vec<ir::HeapNode>,
    reserve: Option<ir::Reserve>,
}

/// Validates a raw board and builds the IR with the warnings found, or returns every problem
/// found (errors and warnings; the first [`crate::diag::MAX_KEPT`] kept, the others counted).
///
/// `found` holds what was found before (the parser's problems): a board with any error is
/// refused, and its hook files are not read.
pub fn validate(
    raw: &RawBoard,
    found: Collected,
    input: &Input<'_>,
) -> Result<(ir::Board, Collected), Collected> {
    let mut v = Validator::new(raw, found);
    board::check_source(&mut v, input.source);
    board::schema_version(&mut v);
    let table = board::board_table(&mut v);
    if let Some(a) = &raw.defaults.access {
        access::check(&mut v, "defaults.access", a);
    }
    board::no_regions(&mut v);
    cma::collect_areas(&mut v);
    let mut regions = Vec::new();
    let mut reserved = Vec::new();
    let mut heap_nodes: Vec<ir::HeapNode> = Vec::new();
    for (i, rsp) in raw.regions.iter().enumerate() {
        if let Some(valid) = region(&mut v, i, rsp) {
            regions.push(valid.region);
            heap_nodes.extend(valid.heaps);
            reserved.extend(valid.reserve);
        }
    }
    policy::dmem_capacities(&mut regions, v.page_shift());
    fallback::check(&mut v, &mut regions);
    strategy::check(&mut v, &mut regions);
    let hook_refs = hooks::check(&mut v, &mut regions);
    heaps::too_many(&mut v);
    reserve::overlaps(&mut v);
    // Hook files are read once the board is otherwise valid: nothing is read for a board file
    // that is refused anyway.
    let hook_files = if v.diags.is_empty() {
        hooks::read(&mut v, hook_refs, input.read_hook)
    } else {
        Vec::new()
    };

    if !v.diags.is_empty() {
        v.diags.append(v.warnings);
        return Err(v.diags);
    }
    let (Some(name), Some(arch)) = (table.name, v.arch) else {
        unreachable!("missing board name or arch is always diagnosed");
    };
    heap_nodes.sort_by(|a, b| a.name.cmp(&b.name));
    heaps::assign_selinux_types(&mut heap_nodes);
    reserved.sort_by(|a, b| (a.base, &a.node).cmp(&(b.base, &b.node)));
    let description = if table.description.is_empty() {
        format!("{name} board")
    } else {
        table.description
    };
    let page_shift = v.page_shift();
    let board = ir::Board {
        kernel_options: kernel_options(&regions),
        upstream_heaps: upstream_heaps(&regions, &reserved),
        test_heaps: test_heaps(&regions, v.page_size),
        module: format!("{}_heaps", ident(&name)),
        br2_external: format!("HEAPGEN_{}", ident(&name).to_ascii_uppercase()),
        source_file: input
            .source
            .rsplit('/')
            .next()
            .unwrap_or(input.source)
            .to_string(),
        name,
        arch,
        description,
        maintainer: table.maintainer,
        source: input.source.to_string(),
        source_sha256: crate::render::sha256_hex(input.bytes),
        source_contents: input.bytes.to_vec(),
        page_size: v.page_size,
        page_shift,
        other_page_sizes: board::OTHER_PAGE_SHIFTS
            .iter()
            .filter(|s| **s != page_shift)
            .map(|s| ir::PageSize {
                shift: *s,
                label: format_size(1 << s),
            })
            .collect(),
        heapgen_version: env!("CARGO_PKG_VERSION").to_string(),
        regions,
        heaps: heap_nodes,
        reserved,
        hook_files,
    };
    Ok((board, v.warnings))
}

/// Checks one region against every rule of its own (and the names earlier regions took), and
/// returns it for the IR when it passed them all.
fn region(v: &mut Validator<'_>, i: usize, rsp: &Sp<RawRegion>) -> Option<ValidRegion> {
    let r = &rsp.value;
    let header = &rsp.span;
    let name = board::region_name(v, i, r, header);
    let shown = match &name {
        Ok(n) | Err(n) => n.clone(),
    };
    let cma = cma::check(v, i, r, header, &shown);
    let reservation = reserve::check(v, i, r, &shown);
    let heap = heaps::check(v, i, r, header, &shown);
    let policy = policy::check(v, i, r, header, &shown, reservation.size.as_ref());
    let access = access::region(v, i, r, header);

    let (Ok(name), Some(cma), Some(reserve), Some(heap), Some(policy)) =
        (name, cma, reservation.node, heap, policy)
    else {
        return None;
    };
    let heaps = [(&heap.cached, false), (&heap.uncached, true)]
        .into_iter()
        .filter_map(|(hn, uncached)| {
            hn.as_ref().map(|hn| ir::HeapNode {
                name: hn.clone(),
                region: name.clone(),
                uncached,
                access: access.clone(),
                selinux_type: String::new(),
                file_context: file_context(hn),
            })
        })
        .collect();
    let region = ir::Region {
        ident: ident(&name),
        name,
        cma,
        heap: heap.cached,
        uncached_heap: heap.uncached,
        align_kind: policy.align_kind,
        align_order: policy.align_order,
        align_bytes: policy.align_bytes,
        granule: policy.granule,
        guard_before: policy.guard_before,
        guard_after: policy.guard_after,
        max_alloc: policy.max_alloc,
        size: reservation.size.map(|s| s.value),
        access,
        fallback: Vec::new(),
        fallback_cma: Vec::new(),
        hooks_static: None,
        hooks: None,
        pool: None,
        headroom: None,
        accounting: r
            .accounting
            .as_ref()
            .or(v.raw.defaults.accounting.as_ref())
            .is_some_and(|a| a.value),
        dmem_capacity: 0,
    };
    Some(ValidRegion {
        region,
        heaps,
        reserve,
    })
}

/// Every heap of `regions` with the policy the test suite checks (the lines of
/// `test/heaps.conf`): a region's cached heap, then its uncached twin.
fn test_heaps(regions: &[ir::Region], page_size: u64) -> Vec<ir::TestHeap> {
    let mut out = Vec::new();
    for r in regions {
        let align = match r.align_kind {
            ir::AlignKind::Fixed => r.align_bytes,
            ir::AlignKind::SizeOrder => page_size,
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
        let headroom = or_dash(
            r.headroom
                .as_ref()
                .map_or(String::new(), |h| h.bytes.to_string()),
        );
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
                    headroom: headroom.clone(),
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

/// Helpers of the rule tests of every family.
#[cfg(test)]
mod testing {
    use super::*;
    use crate::model;

    pub const ARM: &str = "schema-version = 1\n[board]\nname = \"b\"\narch = \"arm64\"\n";
    pub const X86: &str = "schema-version = 1\n[board]\nname = \"b\"\narch = \"x86_64\"\n";

    /// A region binding an existing area, without `reserve`.
    pub fn region(name: &str, cma: &str, heap: &str, extra: &str) -> String {
        format!("[[region]]\nname = \"{name}\"\ncma = \"{cma}\"\nheap = \"{heap}\"\n{extra}\n")
    }

    pub fn run(text: &str) -> Result<ir::Board, Vec<Diagnostic>> {
        run_with_warnings(text).map(|(board, _)| board)
    }

    pub fn run_with_warnings(text: &str) -> Result<(ir::Board, Vec<Diagnostic>), Vec<Diagnostic>> {
        let (raw, d) = model::parse(text);
        assert!(d.is_empty(), "parse problems: {d:?}");
        // The rules alone: every hook file reads as empty.
        let input = Input {
            source: "board-configs/b.toml",
            bytes: b"",
            read_hook: &|_| Ok(Vec::new()),
        };
        validate(&raw.unwrap(), Collected::new(), &input)
            .map(|(board, warnings)| (board, warnings.into_vec()))
            .map_err(Collected::into_vec)
    }

    pub fn rules(text: &str) -> Vec<&'static str> {
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

    pub fn one(extra: &str) -> Vec<&'static str> {
        rules(&format!("{ARM}{}", region("r", "r-area", "h", extra)))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{one, region, rules, run, ARM, X86};
    use super::{ir, DEFAULT_MAX_ALLOC};

    #[test]
    fn rule_names_are_unique_and_every_rule_constant_is_registered() {
        let mut names: Vec<&str> = super::rules().map(|r| r.name).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a rule name is registered twice");
        let defined: usize = [
            include_str!("mod.rs"),
            include_str!("board.rs"),
            include_str!("cma.rs"),
            include_str!("reserve.rs"),
            include_str!("heaps.rs"),
            include_str!("policy.rs"),
            include_str!("access.rs"),
            include_str!("fallback.rs"),
            include_str!("strategy.rs"),
            include_str!("hooks.rs"),
            include_str!("../model.rs"),
        ]
        .iter()
        .map(|s| s.matches(concat!(": Rule = ", "Rule {")).count())
        .sum();
        assert_eq!(defined, count, "a rule constant is not in RULE_FAMILIES");
        for r in super::rules() {
            assert!(!r.summary.is_empty() && !r.docs.is_empty(), "{}", r.name);
        }
    }

    #[test]
    fn a_minimal_board_is_valid() {
        assert_eq!(one(""), Vec::<&str>::new());
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
            (alpha.align_kind, alpha.align_order, alpha.align_bytes),
            (ir::AlignKind::SizeOrder, 8, 1 << 20)
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
