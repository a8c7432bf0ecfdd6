//! Rules of a region's allocation policy (`alignment`, `granule`, `guard`, `max-alloc`, each
//! inherited from `[defaults]`): decided by `heapgen_policy::Policy::check`, the code the
//! kernel runtime allocates with.

use std::ops::Range;

use heapgen_policy::{Alignment, Policy, PolicyError};

use super::Validator;
use crate::diag::Rule;
use crate::ir::{self, AlignKind};
use crate::model::{RawAlignment, RawGuard, RawRegion, Sp};
use crate::size::format_size;

/// Rule: an alignment that is not a power of two of at least a page.
pub const ALIGNMENT_POWER_OF_TWO: Rule = Rule {
    name: "alignment-power-of-two",
    summary: "an alignment is a power of two of at least the page size",
    docs: "region.alignment",
};

/// Rule: an alignment the policy core refuses.
pub const ALIGNMENT_TOO_LARGE: Rule = Rule {
    name: "alignment-too-large",
    summary: "an alignment is one the policy core can lay out",
    docs: "region.alignment",
};

/// Rule: a granule that is not a non-zero multiple of the page size.
pub const GRANULE_MULTIPLE: Rule = Rule {
    name: "granule-multiple",
    summary: "the granule is a non-zero multiple of the page size",
    docs: "region.granule",
};

/// Rule: a guard that is not a multiple of the page size.
pub const GUARD_MULTIPLE: Rule = Rule {
    name: "guard-multiple",
    summary: "guards are multiples of the page size",
    docs: "region.guard",
};

/// Rule: a `max-alloc` that is not a non-zero multiple of the granule.
pub const MAX_ALLOC_MULTIPLE: Rule = Rule {
    name: "max-alloc-multiple",
    summary: "`max-alloc` is a non-zero multiple of the granule",
    docs: "region.max-alloc",
};

/// Rule: the largest request with its guards and padding overflows 64 bits.
pub const POLICY_OVERFLOW: Rule = Rule {
    name: "policy-overflow",
    summary: "the largest request with guards and alignment padding fits in 64 bits",
    docs: "region.max-alloc",
};

/// Rule: a `max-alloc` larger than the reserved region.
pub const MAX_ALLOC_EXCEEDS_REGION: Rule = Rule {
    name: "max-alloc-exceeds-region",
    summary: "`max-alloc` is at most the region's size",
    docs: "region.max-alloc",
};

/// The rules of this family.
pub const RULES: &[Rule] = &[
    ALIGNMENT_POWER_OF_TWO,
    ALIGNMENT_TOO_LARGE,
    GRANULE_MULTIPLE,
    GUARD_MULTIPLE,
    MAX_ALLOC_MULTIPLE,
    POLICY_OVERFLOW,
    MAX_ALLOC_EXCEEDS_REGION,
];

/// `max-alloc` of a region whose size is unknown (the `cma=` area) when nothing is set.
pub const DEFAULT_MAX_ALLOC: u64 = 256 << 20;

/// The cap of a size-order alignment without `max` (upstream's `CONFIG_CMA_ALIGNMENT` of 8).
pub const DEFAULT_SIZE_ORDER_MAX: u64 = 1 << 20;

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

/// A region's policy values, each with where it was set.
struct Resolved {
    align: Origin<RawAlignment>,
    kind: AlignKind,
    /// The alignment, when it is a power of two of pages.
    alignment: Option<Alignment>,
    granule: Origin<u64>,
    guard_before: Origin<u64>,
    guard_after: Origin<u64>,
    max_alloc: Origin<u64>,
}

/// A valid policy, as the IR holds it.
pub(super) struct ValidPolicy {
    pub align_kind: AlignKind,
    pub align_order: u32,
    pub align_bytes: u64,
    pub granule: u64,
    pub guard_before: u64,
    pub guard_after: u64,
    pub max_alloc: u64,
}

/// Checks region `i`'s policy (every rule of this family); returns it when valid. `size` is
/// the region's size when it reserves one.
pub(super) fn check(
    v: &mut Validator<'_>,
    i: usize,
    r: &RawRegion,
    header: &Range<usize>,
    name: &str,
    size: Option<&Sp<u64>>,
) -> Option<ValidPolicy> {
    let p = resolve(v, i, r, header, size.map(|s| s.value));
    let fits = fits_region(v, &p.max_alloc, size, name);
    let alignment = p.alignment?;
    let valid = check_policy(v, &p, alignment, name);
    let order = match alignment {
        Alignment::Fixed { order } | Alignment::SizeOrder { max_order: order } => order,
    };
    (fits && valid).then(|| ValidPolicy {
        align_kind: p.kind,
        align_order: order,
        align_bytes: v.page_size << order,
        granule: p.granule.value,
        guard_before: p.guard_before.value,
        guard_after: p.guard_after.value,
        max_alloc: p.max_alloc.value,
    })
}

/// Picks region `i`'s policy values from the region, `[defaults]` or the built-in defaults
/// (rule `alignment-power-of-two`).
fn resolve(
    v: &mut Validator<'_>,
    i: usize,
    r: &RawRegion,
    header: &Range<usize>,
    size: Option<u64>,
) -> Resolved {
    let raw = v.raw;
    let d = &raw.defaults;
    let p = |key: &str| format!("region[{i}].{key}");
    let align = pick(
        r.alignment.as_ref(),
        &p("alignment"),
        d.alignment.as_ref(),
        "defaults.alignment",
        RawAlignment::Fixed(v.page_size),
        header,
    );
    let granule = pick(
        r.granule.as_ref(),
        &p("granule"),
        d.granule.as_ref(),
        "defaults.granule",
        v.page_size,
        header,
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
        header,
    );
    let guard_after = pick(
        rg.value.after.as_ref(),
        &p("guard.after"),
        dg.value.after.as_ref(),
        "defaults.guard.after",
        0,
        header,
    );
    let (kind, alignment) = alignment(v, &align);
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
        header,
    );
    Resolved {
        align,
        kind,
        alignment,
        granule,
        guard_before,
        guard_after,
        max_alloc,
    }
}

/// The kind and value of an alignment (rule `alignment-power-of-two`).
fn alignment(
    v: &mut Validator<'_>,
    align: &Origin<RawAlignment>,
) -> (AlignKind, Option<Alignment>) {
    match &align.value {
        RawAlignment::Fixed(bytes) => (
            AlignKind::Fixed,
            align_order(v, *bytes, &align.span, &align.path)
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
                AlignKind::SizeOrder,
                align_order(v, bytes, &span, &path)
                    .map(|max_order| Alignment::SizeOrder { max_order }),
            )
        }
    }
}

/// The alignment order of a size, or a diagnostic when it is not a power of two of at least
/// the page size.
fn align_order(v: &mut Validator<'_>, bytes: u64, span: &Range<usize>, path: &str) -> Option<u32> {
    let page = v.page_size;
    if bytes >= page && bytes.is_power_of_two() {
        return Some(bytes.trailing_zeros() - page.trailing_zeros());
    }
    v.err(ALIGNMENT_POWER_OF_TWO.at(
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

/// Checks `max-alloc` against the region's size (rule `max-alloc-exceeds-region`); returns
/// whether it fits.
fn fits_region(
    v: &mut Validator<'_>,
    max_alloc: &Origin<u64>,
    size: Option<&Sp<u64>>,
    name: &str,
) -> bool {
    let Some(size) = size.filter(|s| max_alloc.value > s.value) else {
        return true;
    };
    v.err(
        MAX_ALLOC_EXCEEDS_REGION
            .at(
                max_alloc.path.clone(),
                max_alloc.span.clone(),
                format!(
                    "max-alloc {} of region `{name}` is larger than the region ({})",
                    format_size(max_alloc.value),
                    format_size(size.value)
                ),
                "larger than the region",
            )
            .with_secondary(size.span.clone(), "the region's size"),
    );
    false
}

/// Asks the policy core whether the policy is valid (rules `granule-multiple`,
/// `guard-multiple`, `alignment-too-large`, `max-alloc-multiple`, `policy-overflow`).
///
/// `check` stops at the first problem; each found is repaired and the policy asked again, so
/// that every independent problem of the policy is reported in one run. A repaired policy is
/// only good for finding more problems: a policy with any problem is invalid.
fn check_policy(v: &mut Validator<'_>, p: &Resolved, alignment: Alignment, name: &str) -> bool {
    let mut policy = Policy {
        page_shift: v.page_shift(),
        alignment,
        granule: p.granule.value,
        guard_before: p.guard_before.value,
        guard_after: p.guard_after.value,
        max_alloc: p.max_alloc.value,
    };
    for round in 0..6 {
        let Err(e) = policy.check() else {
            return round == 0;
        };
        let (rule, origin, value) = match e {
            PolicyError::BadGranule => {
                policy.granule = v.page_size;
                policy.max_alloc = v.page_size;
                (
                    &GRANULE_MULTIPLE,
                    (&p.granule.span, &p.granule.path),
                    p.granule.value,
                )
            }
            PolicyError::BadGuard => {
                let before_bad = Policy {
                    guard_after: 0,
                    ..policy
                }
                .check()
                    == Err(PolicyError::BadGuard);
                let guard = if before_bad {
                    policy.guard_before = 0;
                    &p.guard_before
                } else {
                    policy.guard_after = 0;
                    &p.guard_after
                };
                (&GUARD_MULTIPLE, (&guard.span, &guard.path), guard.value)
            }
            PolicyError::BadAlignment => {
                policy.alignment = Alignment::Fixed { order: 0 };
                (
                    &ALIGNMENT_TOO_LARGE,
                    (&p.align.span, &p.align.path),
                    alignment_bytes(&alignment, v.page_size),
                )
            }
            PolicyError::BadMaxAlloc => {
                policy.max_alloc = policy.granule;
                (
                    &MAX_ALLOC_MULTIPLE,
                    (&p.max_alloc.span, &p.max_alloc.path),
                    p.max_alloc.value,
                )
            }
            PolicyError::Overflow
            | PolicyError::TooLarge
            | PolicyError::ZeroLength
            | PolicyError::BadPageSize => {
                v.err(POLICY_OVERFLOW.at(
                    p.max_alloc.path.clone(),
                    p.max_alloc.span.clone(),
                    format!(
                        "the largest request ({}) with guards and alignment padding does not fit in 64 bits",
                        format_size(p.max_alloc.value)
                    ),
                    e.as_str(),
                ));
                return false;
            }
        };
        report(v, rule, origin, e, name, value);
    }
    false
}

/// Reports a problem the policy core found with the value at `origin` (its span and path).
fn report(
    v: &mut Validator<'_>,
    rule: &Rule,
    origin: (&Range<usize>, &String),
    e: PolicyError,
    name: &str,
    value: u64,
) {
    v.err(rule.at(
        origin.1.clone(),
        origin.0.clone(),
        format!(
            "{} (region `{name}`, value {})",
            e.as_str(),
            format_size(value)
        ),
        e.as_str(),
    ));
}

fn alignment_bytes(a: &Alignment, page_size: u64) -> u64 {
    let order = match a {
        Alignment::Fixed { order } => *order,
        Alignment::SizeOrder { max_order } => *max_order,
    };
    page_size.checked_shl(order).unwrap_or(u64::MAX)
}

/// Sets the dmem capacity of every accounted region: its size when reserved, else the
/// footprint of its largest buffer.
pub(super) fn dmem_capacities(regions: &mut [ir::Region], page_shift: u32) {
    for r in regions.iter_mut().filter(|r| r.accounting) {
        r.dmem_capacity = r.size.unwrap_or_else(|| {
            r.policy(page_shift)
                .layout(r.max_alloc)
                .map_or(r.max_alloc, |l| l.total_len)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

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
}
