//! Rules of a region's allocation strategy (`region.strategy`): `direct`, or a `pool` of
//! pre-allocated buffers.

use super::Validator;
use crate::diag::Rule;
use crate::ir;
use crate::model::{RawStrategy, Sp};
use crate::size::format_size;

/// Rule: an unknown or missing strategy kind.
pub const STRATEGY_KIND: Rule = Rule {
    name: "strategy-kind",
    summary: "the strategy kind is `direct` or `pool`",
    docs: "region.strategy.kind",
};

/// Rule: a pool key next to `kind = "direct"`.
pub const STRATEGY_KEY: Rule = Rule {
    name: "strategy-key",
    summary: "`sizes` and `depth` only go with `kind = \"pool\"`",
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
];

/// The largest pool depth (buffers kept per size class).
pub const MAX_POOL_DEPTH: i64 = 64;

/// The largest number of size classes of a pool.
pub const MAX_POOL_SIZES: usize = 8;

/// Checks every region's `strategy` (every rule of this family) and fills in the IR's pools.
/// Regions whose policy is invalid are not in `regions`; their strategy is checked only as far
/// as it does not depend on the policy.
pub(super) fn check(v: &mut Validator<'_>, regions: &mut [ir::Region]) {
    let raw = v.raw;
    for (i, rsp) in raw.regions.iter().enumerate() {
        let Some(st) = &rsp.value.strategy else {
            continue;
        };
        let path = format!("region[{i}].strategy");
        if !is_pool(v, &path, st) {
            continue;
        }
        let depth = depth(v, &path, st);
        let Some(sizes) = sizes(v, &path, st) else {
            continue;
        };
        let ordered = ascending(v, &path, sizes);
        let name = rsp.value.name.as_ref().map(|n| n.value.as_str());
        let Some(region) = regions.iter_mut().find(|r| Some(r.name.as_str()) == name) else {
            continue;
        };
        let classes = classes(v, &path, sizes, region);
        let (true, true, Some(depth)) = (ordered, classes, depth) else {
            continue;
        };
        let depth_span = st.value.depth.as_ref().map(|d| &d.span);
        if !fits(v, &path, sizes, depth, depth_span, region) {
            continue;
        }
        region.pool = Some(ir::Pool {
            sizes: sizes.value.iter().map(|s| s.value).collect(),
            depth,
        });
    }
}

/// Checks `kind` (rules `strategy-kind`, `strategy-key`); returns whether the strategy is a
/// pool.
fn is_pool(v: &mut Validator<'_>, path: &str, st: &Sp<RawStrategy>) -> bool {
    let kind = st.value.kind.as_ref();
    match kind.map(|k| k.value.as_str()) {
        Some("pool") => true,
        Some("direct") => {
            for (key, span) in [
                ("sizes", st.value.sizes.as_ref().map(|s| s.span.clone())),
                ("depth", st.value.depth.as_ref().map(|d| d.span.clone())),
            ] {
                if let Some(span) = span {
                    v.err(
                        STRATEGY_KEY
                            .at(
                                format!("{path}.{key}"),
                                span,
                                format!("`{key}` has no meaning for the `direct` strategy"),
                                "only for `kind = \"pool\"`",
                            )
                            .with_help("remove the key, or write `kind = \"pool\"`"),
                    );
                }
            }
            false
        }
        other => {
            let (kpath, span, found) = match kind {
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
                        "expected \"direct\" or \"pool\"",
                    )
                    .with_help("write `kind = \"direct\"` (the default) or `kind = \"pool\"`"),
            );
            false
        }
    }
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
}
