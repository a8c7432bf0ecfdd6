//! Rules of a region's allocation strategy (`region.strategy`): `direct`, a `pool` of
//! pre-allocated buffers, or a `headroom` of the area kept allocated ahead of demand.

use super::Validator;
use crate::diag::Rule;
use crate::ir;
use crate::model::{RawRegion, RawStrategy, Sp};
use crate::size::format_size;

/// Rule: an unknown or missing strategy kind.
pub const STRATEGY_KIND: Rule = Rule {
    name: "strategy-kind",
    summary: "the strategy kind is `direct`, `pool` or `headroom`",
    docs: "region.strategy.kind",
};

/// Rule: a key of another strategy kind (`sizes` or `depth` without `kind = "pool"`, `size`
/// without `kind = "headroom"`).
pub const STRATEGY_KEY: Rule = Rule {
    name: "strategy-key",
    summary: "`sizes` and `depth` only go with a pool, `size` only with a headroom",
    docs: "region.strategy.kind",
};

/// Rule: a pool without 1 to 8 size classes.
pub const POOL_SIZES: Rule = Rule {
    name: "pool-sizes",
    summary: "a pool has 1 to 8 size classes",
    docs: "region.strategy.sizes",
};

/// Rule: a size class that is not a multiple of the region's granule.
pub const POOL_SIZE_GRANULE: Rule = Rule {
    name: "pool-size-granule",
    summary: "size classes are non-zero multiples of the region's granule",
    docs: "region.strategy.sizes",
};

/// Rule: a size class larger than the region's `max-alloc`.
pub const POOL_SIZE_MAX_ALLOC: Rule = Rule {
    name: "pool-size-max-alloc",
    summary: "size classes are at most the region's `max-alloc`",
    docs: "region.strategy.sizes",
};

/// Rule: size classes not strictly ascending.
pub const POOL_SIZES_ORDER: Rule = Rule {
    name: "pool-sizes-order",
    summary: "size classes are strictly ascending",
    docs: "region.strategy.sizes",
};

/// Rule: a missing depth, or one outside 1..=64.
pub const POOL_DEPTH: Rule = Rule {
    name: "pool-depth",
    summary: "a pool keeps 1 to 64 buffers per size class",
    docs: "region.strategy.depth",
};

/// Rule: a full pool larger than its region.
pub const POOL_TOO_LARGE: Rule = Rule {
    name: "pool-too-large",
    summary: "a full pool fits in its region",
    docs: "region.strategy.depth",
};

/// Rule: a headroom without a size, or one that is not a non-zero multiple of the page size
/// and of the region's granule.
pub const HEADROOM_SIZE: Rule = Rule {
    name: "headroom-size",
    summary: "a headroom's `size` is a non-zero multiple of the page size and the granule",
    docs: "region.strategy.size",
};

/// Rule: a headroom larger than its region.
pub const HEADROOM_EXCEEDS_REGION: Rule = Rule {
    name: "headroom-exceeds-region",
    summary: "a headroom fits in its region",
    docs: "region.strategy.size",
};

/// Rule (a warning): a headroom of more than half its region.
pub const HEADROOM_OVER_HALF: Rule = Rule {
    name: "headroom-over-half",
    summary: "a headroom is at most half its region (a warning)",
    docs: "region.strategy.size",
};

/// The rules of this family.
pub const RULES: &[Rule] = &[
    STRATEGY_KIND,
    STRATEGY_KEY,
    POOL_SIZES,
    POOL_SIZE_GRANULE,
    POOL_SIZE_MAX_ALLOC,
    POOL_SIZES_ORDER,
    POOL_DEPTH,
    POOL_TOO_LARGE,
    HEADROOM_SIZE,
    HEADROOM_EXCEEDS_REGION,
    HEADROOM_OVER_HALF,
];

/// The largest pool depth (buffers kept per size class).
pub const MAX_POOL_DEPTH: i64 = 64;

/// The largest number of size classes of a pool.
pub const MAX_POOL_SIZES: usize = 8;

/// A strategy kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Direct,
    Pool,
    Headroom,
}

impl Kind {
    /// The kind as the board file writes it.
    fn as_str(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Pool => "pool",
            Kind::Headroom => "headroom",
        }
    }
}

/// Checks every region's `strategy` (every rule of this family) and fills in the IR's pools
/// and headrooms. Regions whose policy is invalid are not in `regions`; their strategy is
/// checked only as far as it does not depend on the policy.
pub(super) fn check(v: &mut Validator<'_>, regions: &mut [ir::Region]) {
    let raw = v.raw;
    for (i, rsp) in raw.regions.iter().enumerate() {
        let Some(st) = &rsp.value.strategy else {
            continue;
        };
        let path = format!("region[{i}].strategy");
        let name = rsp.value.name.as_ref().map(|n| n.value.as_str());
        let region = regions.iter_mut().find(|r| Some(r.name.as_str()) == name);
        match kind(v, &path, st) {
            Some(Kind::Pool) => pool(v, &path, st, region),
            Some(Kind::Headroom) => headroom(v, &path, &rsp.value, st, region),
            Some(Kind::Direct) | None => {}
        }
    }
}

/// Checks a pool (rules `pool-*`) and, when it is valid, puts it in the region's IR.
fn pool(v: &mut Validator<'_>, path: &str, st: &Sp<RawStrategy>, region: Option<&mut ir::Region>) {
    let depth = depth(v, path, st);
    let Some(sizes) = sizes(v, path, st) else {
        return;
    };
    let ordered = ascending(v, path, sizes);
    let Some(region) = region else {
        return;
    };
    let classes = classes(v, path, sizes, region);
    let (true, true, Some(depth)) = (ordered, classes, depth) else {
        return;
    };
    let depth_span = st.value.depth.as_ref().map(|d| &d.span);
    if !fits(v, path, sizes, depth, depth_span, region) {
        return;
    }
    region.pool = Some(ir::Pool {
        sizes: sizes.value.iter().map(|s| s.value).collect(),
        depth,
    });
}

/// Checks `kind` (rule `strategy-kind`) and that no key of another kind is set (rule
/// `strategy-key`); returns the kind when it is known.
fn kind(v: &mut Validator<'_>, path: &str, st: &Sp<RawStrategy>) -> Option<Kind> {
    let raw_kind = st.value.kind.as_ref();
    let kind = match raw_kind.map(|k| k.value.as_str()) {
        Some("direct") => Kind::Direct,
        Some("pool") => Kind::Pool,
        Some("headroom") => Kind::Headroom,
        other => {
            let (kpath, span, found) = match raw_kind {
                Some(k) => (format!("{path}.kind"), k.span.clone(), other.unwrap_or("")),
                None => (path.to_string(), st.span.clone(), ""),
            };
            v.err(
                STRATEGY_KIND
                    .at(
                        kpath,
                        span,
                        if found.is_empty() {
                            "the strategy has no `kind`".to_string()
                        } else {
                            format!("unknown strategy kind `{found}`")
                        },
                        "expected \"direct\", \"pool\" or \"headroom\"",
                    )
                    .with_help(
                        "write `kind = \"direct\"` (the default), `kind = \"pool\"` or `kind = \"headroom\"`",
                    ),
            );
            return None;
        }
    };
    let s = &st.value;
    for (key, owner, span) in [
        (
            "sizes",
            Kind::Pool,
            s.sizes.as_ref().map(|x| x.span.clone()),
        ),
        (
            "depth",
            Kind::Pool,
            s.depth.as_ref().map(|x| x.span.clone()),
        ),
        (
            "size",
            Kind::Headroom,
            s.size.as_ref().map(|x| x.span.clone()),
        ),
    ] {
        let Some(span) = span else {
            continue;
        };
        if owner == kind {
            continue;
        }
        let help = match (kind, key) {
            (Kind::Pool, "size") => {
                "a pool's size classes are `sizes = [...]`; `size` is a headroom's".to_string()
            }
            (Kind::Headroom, "sizes") => {
                "a headroom's size is `size = \"16M\"`; `sizes` are a pool's".to_string()
            }
            _ => format!("remove the key, or write `kind = \"{}\"`", owner.as_str()),
        };
        v.err(
            STRATEGY_KEY
                .at(
                    format!("{path}.{key}"),
                    span,
                    format!(
                        "`{key}` has no meaning for the `{}` strategy",
                        kind.as_str()
                    ),
                    format!("only for `kind = \"{}\"`", owner.as_str()),
                )
                .with_help(help),
        );
    }
    Some(kind)
}

/// Checks a pool's `depth` (rule `pool-depth`); returns it when valid.
fn depth(v: &mut Validator<'_>, path: &str, st: &Sp<RawStrategy>) -> Option<u32> {
    match &st.value.depth {
        Some(d) if (1..=MAX_POOL_DEPTH).contains(&d.value) => Some(d.value as u32),
        Some(d) => {
            v.err(
                POOL_DEPTH
                    .at(
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
            v.err(
                POOL_DEPTH
                    .at(
                        path,
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
    }
}

/// Checks that a pool has 1 to [`MAX_POOL_SIZES`] size classes (rule `pool-sizes`); returns
/// them when it has.
fn sizes<'s>(
    v: &mut Validator<'_>,
    path: &str,
    st: &'s Sp<RawStrategy>,
) -> Option<&'s Sp<Vec<Sp<u64>>>> {
    let (span, label) = match &st.value.sizes {
        Some(s) if !s.value.is_empty() && s.value.len() <= MAX_POOL_SIZES => return Some(s),
        Some(s) => (
            s.span.clone(),
            format!("expected 1..={MAX_POOL_SIZES} sizes"),
        ),
        None => (st.span.clone(), "missing `sizes`".to_string()),
    };
    v.err(
        POOL_SIZES
            .at(
                format!("{path}.sizes"),
                span,
                format!("a pool needs 1 to {MAX_POOL_SIZES} size classes"),
                label,
            )
            .with_help("list the hot buffer sizes, e.g. `sizes = [\"1M\", \"4M\"]`"),
    );
    None
}

/// Checks that the size classes are strictly ascending (rule `pool-sizes-order`); returns
/// whether they are.
fn ascending(v: &mut Validator<'_>, path: &str, sizes: &Sp<Vec<Sp<u64>>>) -> bool {
    let mut valid = true;
    for (j, pair) in sizes.value.windows(2).enumerate() {
        if pair[1].value > pair[0].value {
            continue;
        }
        valid = false;
        let what = if pair[1].value == pair[0].value {
            "repeats"
        } else {
            "is smaller than"
        };
        v.err(
            POOL_SIZES_ORDER
                .at(
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
    valid
}

/// Checks each size class against the valid region's policy (rules `pool-size-granule`,
/// `pool-size-max-alloc`); returns whether all fit it.
fn classes(
    v: &mut Validator<'_>,
    path: &str,
    sizes: &Sp<Vec<Sp<u64>>>,
    region: &ir::Region,
) -> bool {
    let mut valid = true;
    for (j, s) in sizes.value.iter().enumerate() {
        let spath = format!("{path}.sizes[{j}]");
        if s.value == 0 || s.value % region.granule != 0 {
            valid = false;
            v.err(
                POOL_SIZE_GRANULE
                    .at(
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
            valid = false;
            v.err(
                POOL_SIZE_MAX_ALLOC
                    .at(
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
    valid
}

/// Checks that a full pool fits in a region of known size (rule `pool-too-large`); returns
/// whether it does (or the size is unknown).
fn fits(
    v: &mut Validator<'_>,
    path: &str,
    sizes: &Sp<Vec<Sp<u64>>>,
    depth: u32,
    depth_span: Option<&std::ops::Range<usize>>,
    region: &ir::Region,
) -> bool {
    let policy = region.policy(v.page_shift());
    let per_round: Option<u64> = sizes.value.iter().try_fold(0u64, |acc, s| {
        policy
            .layout(s.value)
            .ok()
            .and_then(|l| acc.checked_add(l.total_len))
    });
    let held = per_round.and_then(|p| p.checked_mul(u64::from(depth)));
    let (Some(size), Some(depth_span)) = (region.size, depth_span) else {
        return true;
    };
    if held.is_some_and(|h| h <= size) {
        return true;
    }
    v.err(
        POOL_TOO_LARGE
            .at(
                format!("{path}.depth"),
                depth_span.clone(),
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
    false
}

/// Checks a headroom's `size` (rules `headroom-size`, `headroom-exceeds-region`, and the
/// warning `headroom-over-half`) and, when it is valid, puts it in the region's IR. Without
/// the region's valid policy only the page size is checked.
fn headroom(
    v: &mut Validator<'_>,
    path: &str,
    raw: &RawRegion,
    st: &Sp<RawStrategy>,
    region: Option<&mut ir::Region>,
) {
    let Some(size) = &st.value.size else {
        v.err(
            HEADROOM_SIZE
                .at(
                    path,
                    st.span.clone(),
                    "a headroom needs a `size`",
                    "missing `size`",
                )
                .with_help(
                    "add `size = \"16M\"`: the bytes of the CMA area kept evacuated and zeroed ahead of demand",
                ),
        );
        return;
    };
    let spath = format!("{path}.size");
    let page = v.page_size;
    if size.value == 0 || size.value % page != 0 {
        let (message, label) = if size.value == 0 {
            (
                "a headroom of 0 bytes holds nothing".to_string(),
                "less than one page",
            )
        } else {
            (
                format!(
                    "headroom size {} is not a multiple of the page size ({})",
                    format_size(size.value),
                    format_size(page)
                ),
                "not a page multiple",
            )
        };
        v.err(
            HEADROOM_SIZE
                .at(spath, size.span.clone(), message, label)
                .with_help(format!(
                    "a headroom is whole pages of the CMA area: at least one page ({}, board.page-size) and a multiple of it",
                    format_size(page)
                )),
        );
        return;
    }
    let Some(region) = region else {
        return;
    };
    if size.value % region.granule != 0 {
        v.err(
            HEADROOM_SIZE
                .at(
                    spath,
                    size.span.clone(),
                    format!(
                        "headroom size {} is not a multiple of region `{}`'s granule ({})",
                        format_size(size.value),
                        region.name,
                        format_size(region.granule)
                    ),
                    "not a granule multiple",
                )
                .with_help("requests take whole granules of the headroom; round the size to a multiple of the granule"),
        );
        return;
    }
    if let Some(area) = region.size {
        let area_span = raw
            .reserve
            .as_ref()
            .and_then(|r| r.value.size.as_ref())
            .map(|s| s.span.clone());
        if size.value > area {
            let mut d = HEADROOM_EXCEEDS_REGION
                .at(
                    spath,
                    size.span.clone(),
                    format!(
                        "headroom size {} is larger than region `{}` ({})",
                        format_size(size.value),
                        region.name,
                        format_size(area)
                    ),
                    "larger than the region",
                )
                .with_help("the headroom is part of the region's CMA area; lower the size or grow the region");
            if let Some(span) = area_span {
                d = d.with_secondary(span, "the region's size");
            }
            v.err(d);
            return;
        }
        if size.value > area / 2 {
            let mut d = HEADROOM_OVER_HALF
                .at(
                    spath,
                    size.span.clone(),
                    format!(
                        "headroom size {} is more than half of region `{}` ({})",
                        format_size(size.value),
                        region.name,
                        format_size(area)
                    ),
                    "more than half the region",
                )
                .with_help("an idle headroom keeps its pages from the movable memory the area is lent to; size it for the largest burst of allocations it must absorb");
            if let Some(span) = area_span {
                d = d.with_secondary(span, "the region's size");
            }
            v.warn(d);
        }
    }
    region.headroom = Some(ir::Headroom { bytes: size.value });
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    /// The rules a board breaks whose one region (1M granule, 8M max-alloc and, when `sized`, a
    /// 16M `reserve`) has the strategy table `strategy`.
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
    fn headrooms_reach_the_ir_and_heaps_conf() {
        let text = format!(
            "{ARM}{}",
            region(
                "r",
                "r-area",
                "h",
                "granule = \"1M\"\nvariants = [\"cached\", \"uncached\"]\nstrategy = { kind = \"headroom\", size = \"16M\" }"
            )
        );
        let board = run(&text).unwrap();
        let r = &board.regions[0];
        assert_eq!(r.headroom.as_ref().map(|h| h.bytes), Some(16 << 20));
        assert!(r.pool.is_none());
        // Both heaps of the region share it.
        let conf: Vec<&str> = board
            .test_heaps
            .iter()
            .map(|t| t.headroom.as_str())
            .collect();
        assert_eq!(conf, ["16777216", "16777216"]);
        let direct = run(&format!("{ARM}{}", region("r", "r-area", "h", ""))).unwrap();
        assert!(direct.regions[0].headroom.is_none());
        assert_eq!(direct.test_heaps[0].headroom, "-");
    }

    #[test]
    fn rule_strategy_kind() {
        assert_eq!(pool_rules("{ kind = \"lifo\" }", false), ["strategy-kind"]);
        assert_eq!(pool_rules("{ depth = 2 }", false), ["strategy-kind"]);
        assert_eq!(pool_rules("{ size = \"16M\" }", false), ["strategy-kind"]);
        assert!(pool_rules("{ kind = \"headroom\", size = \"4M\" }", false).is_empty());
    }

    #[test]
    fn rule_strategy_key() {
        assert_eq!(
            pool_rules("{ kind = \"direct\", sizes = [\"1M\"] }", false),
            ["strategy-key"]
        );
        assert_eq!(
            pool_rules("{ kind = \"direct\", size = \"1M\" }", false),
            ["strategy-key"]
        );
        // `size` is a headroom's, `sizes` and `depth` a pool's.
        assert_eq!(
            pool_rules(
                "{ kind = \"pool\", sizes = [\"1M\"], depth = 2, size = \"1M\" }",
                false
            ),
            ["strategy-key"]
        );
        assert_eq!(
            pool_rules(
                "{ kind = \"headroom\", size = \"4M\", sizes = [\"1M\"] }",
                false
            ),
            ["strategy-key"]
        );
        assert_eq!(
            pool_rules("{ kind = \"headroom\", size = \"4M\", depth = 2 }", false),
            ["strategy-key"]
        );
    }

    #[test]
    fn rule_headroom_size() {
        // Missing, zero, not a page multiple, not a granule (1M) multiple.
        for strategy in [
            "{ kind = \"headroom\" }",
            "{ kind = \"headroom\", size = 0 }",
            "{ kind = \"headroom\", size = \"6K\" }",
            "{ kind = \"headroom\", size = \"1536K\" }",
        ] {
            assert_eq!(pool_rules(strategy, false), ["headroom-size"], "{strategy}");
        }
        // The board's page size is the unit: 4K is not a page with 16K pages.
        let text = |size: &str| {
            format!(
                "{ARM}page-size = \"16K\"\n{}",
                region(
                    "r",
                    "r-area",
                    "h",
                    &format!("strategy = {{ kind = \"headroom\", size = \"{size}\" }}")
                )
            )
        };
        assert_eq!(rules(&text("4K")), ["headroom-size"]);
        assert!(rules(&text("16K")).is_empty());
        // Without a valid policy only the page size is checked: one problem, not two.
        assert_eq!(
            one("granule = \"6K\"\nstrategy = { kind = \"headroom\", size = \"6K\" }"),
            ["granule-multiple", "headroom-size"]
        );
        assert_eq!(
            one("granule = \"6K\"\nstrategy = { kind = \"headroom\", size = \"8K\" }"),
            ["granule-multiple"]
        );
    }

    #[test]
    fn rule_headroom_exceeds_region() {
        // The whole area is allowed (with a warning).
        assert!(pool_rules("{ kind = \"headroom\", size = \"16M\" }", true).is_empty());
        assert_eq!(
            pool_rules("{ kind = \"headroom\", size = \"17M\" }", true),
            ["headroom-exceeds-region"]
        );
        // Unknown region size: no check.
        assert!(pool_rules("{ kind = \"headroom\", size = \"1G\" }", false).is_empty());
    }

    #[test]
    fn rule_headroom_over_half_is_a_warning() {
        let text = |size: &str| {
            format!(
                "{ARM}{}",
                region(
                    "r",
                    "r@90000000",
                    "h",
                    &format!(
                        "reserve = {{ base = \"0x9000_0000\", size = \"16M\" }}\nstrategy = {{ kind = \"headroom\", size = \"{size}\" }}"
                    )
                )
            )
        };
        let (board, warnings) = run_with_warnings(&text("9M")).expect("accepted");
        let warned: Vec<_> = warnings.iter().map(|w| w.rule).collect();
        assert_eq!(warned, ["headroom-over-half"]);
        assert_eq!(
            board.regions[0].headroom.as_ref().map(|h| h.bytes),
            Some(9 << 20)
        );
        let (_, warnings) = run_with_warnings(&text("8M")).expect("accepted");
        assert!(warnings.is_empty(), "{warnings:?}");
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
}
