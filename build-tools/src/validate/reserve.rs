//! Rules of the memory a region reserves (`region.reserve`): its size, placement and
//! device-tree node, and the overlap of fixed regions.

use std::ops::Range;

use super::cma::{is_dt_node_char, CMA_NAME};
use super::{ident, FirstUse, Validator, MISSING_KEY};
use crate::diag::Rule;
use crate::ir;
use crate::model::{RawRegion, RawReserve, Sp};
use crate::size::{format_addr, format_size};

/// Rule: an x86_64 region reserves memory.
pub const RESERVE_ARCH: Rule = Rule {
    name: "reserve-arch",
    summary: "only device-tree boards (arm64) reserve memory",
    docs: "region.reserve",
};

/// Rule: the reserved size is zero or not whole CMA pageblocks.
pub const RESERVE_SIZE: Rule = Rule {
    name: "reserve-size",
    summary: "a reserved size is a non-zero multiple of the CMA granularity",
    docs: "region.reserve",
};

/// Rule: `alignment` or `alloc-ranges` next to a fixed `base`.
pub const RESERVE_PLACEMENT: Rule = Rule {
    name: "reserve-placement",
    summary: "`alignment` and `alloc-ranges` only apply to dynamically placed regions",
    docs: "region.reserve",
};

/// Rule: a misaligned base, or an alignment that is not a power of two of pages.
pub const RESERVE_ALIGNMENT: Rule = Rule {
    name: "reserve-alignment",
    summary: "a base is aligned to the CMA granularity; an alignment is a power of two of pages",
    docs: "region.reserve",
};

/// Rule: base + size beyond the 64-bit address space.
pub const RESERVE_RANGE: Rule = Rule {
    name: "reserve-range",
    summary: "a fixed region ends inside the 64-bit address space",
    docs: "region.reserve",
};

/// Rule: an unusable or too long `alloc-ranges`.
pub const RESERVE_ALLOC_RANGE: Rule = Rule {
    name: "reserve-alloc-range",
    summary: "at most 64 allocation ranges, each non-empty, in range and large enough",
    docs: "region.reserve",
};

/// Rule: two regions are the default CMA area.
pub const RESERVE_DEFAULT_DUPLICATE: Rule = Rule {
    name: "reserve-default-duplicate",
    summary: "at most one region is the default CMA area",
    docs: "region.reserve",
};

/// Rule: the region binds another area than the node its `reserve` creates.
pub const CMA_RESERVE_MISMATCH: Rule = Rule {
    name: "cma-reserve-mismatch",
    summary: "a reserving region binds the CMA area its node creates",
    docs: "region.cma",
};

/// Rule: two fixed regions overlap.
pub const RESERVE_OVERLAP: Rule = Rule {
    name: "reserve-overlap",
    summary: "fixed regions do not overlap",
    docs: "region.reserve",
};

/// The rules of this family.
pub const RULES: &[Rule] = &[
    RESERVE_ARCH,
    RESERVE_SIZE,
    RESERVE_PLACEMENT,
    RESERVE_ALIGNMENT,
    RESERVE_RANGE,
    RESERVE_ALLOC_RANGE,
    RESERVE_DEFAULT_DUPLICATE,
    CMA_RESERVE_MISMATCH,
    RESERVE_OVERLAP,
];

/// The most `alloc-ranges` of one reserved region: they go on one device-tree property and one
/// line of the rst page.
pub const MAX_ALLOC_RANGES: usize = 64;

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

/// A region placed at a fixed base, for the overlap rule.
#[derive(Clone, Debug)]
pub(super) struct Placed {
    /// The region's name.
    region: String,
    /// Its first byte.
    base: u64,
    /// The byte after its last.
    end: u64,
    /// Where `base` is written.
    span: Range<usize>,
    /// The key path of `base`.
    path: String,
}

/// What a region's `reserve` gives the other rules.
pub(super) struct Reservation {
    /// The region's size, when `reserve` gives a non-zero one (even if other keys of `reserve`
    /// are wrong: the policy is still checked against it).
    pub size: Option<Sp<u64>>,
    /// The device-tree node: `Some(None)` for a region that reserves nothing, `None` when the
    /// reserve is invalid (diagnosed).
    pub node: Option<Option<ir::Reserve>>,
}

/// Checks region `i`'s `reserve` (rules `reserve-*`, `cma-name` and `cma-reserve-mismatch`).
pub(super) fn check(v: &mut Validator<'_>, i: usize, r: &RawRegion, name: &str) -> Reservation {
    let Some(res) = &r.reserve else {
        return Reservation {
            size: None,
            node: Some(None),
        };
    };
    let rv = &res.value;
    let mut valid = true;
    if v.arch == Some(ir::Arch::X86_64) {
        v.err(
            RESERVE_ARCH
                .at(
                    format!("region[{i}].reserve"),
                    res.span.clone(),
                    "x86_64 boards cannot reserve memory",
                    "x86_64 has no device tree",
                )
                .with_help("size the area with the `cma=` kernel command line instead and remove `reserve`"),
        );
        valid = false;
    }
    let size = reserved_size(v, i, res);
    valid &= size.is_ok();
    let size = size.unwrap_or_else(|size| size);
    valid &= match &rv.base {
        Some(base) => fixed(v, i, res, base, size.as_ref(), name),
        None => dynamic(v, i, rv, size.as_ref()),
    };
    valid &= default_area(v, i, rv, name);
    let node = r
        .cma
        .as_ref()
        .and_then(|c| node(v, i, res, c, size.as_ref(), name))
        .filter(|_| valid)
        .map(Some);
    Reservation { size, node }
}

/// Checks `reserve.size` (rules `missing-key`, `reserve-size`): the size, `Err` with the size
/// the other rules still check against when it is invalid.
fn reserved_size(
    v: &mut Validator<'_>,
    i: usize,
    res: &Sp<RawReserve>,
) -> Result<Option<Sp<u64>>, Option<Sp<u64>>> {
    let path = format!("region[{i}].reserve.size");
    match &res.value.size {
        None => {
            v.err(MISSING_KEY.at(
                format!("region[{i}].reserve"),
                res.span.clone(),
                "`reserve` needs a `size`",
                "missing `size`",
            ));
            Err(None)
        }
        Some(s) if s.value == 0 => {
            v.err(RESERVE_SIZE.at(
                path,
                s.span.clone(),
                "a reserved region cannot be empty",
                "zero",
            ));
            Err(None)
        }
        Some(s) => {
            let Some(arch) = v.arch else {
                return Ok(Some(s.clone()));
            };
            let g = cma_granularity(arch, v.page_size);
            if s.value % g == 0 {
                return Ok(Some(s.clone()));
            }
            v.err(
                RESERVE_SIZE
                    .at(
                        path,
                        s.span.clone(),
                        format!(
                            "size {} is not a multiple of {}, the CMA granularity on {}",
                            format_size(s.value),
                            format_size(g),
                            arch.as_str()
                        ),
                        format!("not a multiple of {}", format_size(g)),
                    )
                    .with_help("CMA areas are made of whole pageblocks"),
            );
            Err(Some(s.clone()))
        }
    }
}

/// Checks a reserve at a fixed `base` (rules `reserve-placement`, `reserve-alignment`,
/// `reserve-range`) and records where it lies; returns whether it is valid.
fn fixed(
    v: &mut Validator<'_>,
    i: usize,
    res: &Sp<RawReserve>,
    base: &Sp<u64>,
    size: Option<&Sp<u64>>,
    name: &str,
) -> bool {
    let rv = &res.value;
    let rp = |key: &str| format!("region[{i}].reserve.{key}");
    let mut valid = true;
    for (key, extra) in [
        ("alignment", rv.alignment.as_ref().map(|a| a.span.clone())),
        (
            "alloc-ranges",
            rv.alloc_ranges.as_ref().map(|a| a.span.clone()),
        ),
    ] {
        if let Some(span) = extra {
            v.err(
                RESERVE_PLACEMENT
                    .at(
                        rp(key),
                        span,
                        format!("`{key}` only applies to dynamically placed regions"),
                        "conflicts with `base`",
                    )
                    .with_secondary(base.span.clone(), "the region is placed here"),
            );
            valid = false;
        }
    }
    if let Some(arch) = v.arch {
        let g = cma_granularity(arch, v.page_size);
        if base.value % g != 0 {
            v.err(
                RESERVE_ALIGNMENT
                    .at(
                        rp("base"),
                        base.span.clone(),
                        format!(
                            "base {} is not aligned to {}, the CMA granularity on {}",
                            format_addr(base.value),
                            format_size(g),
                            arch.as_str()
                        ),
                        format!("not {}-aligned", format_size(g)),
                    )
                    .with_help("the kernel refuses to turn a misaligned region into a CMA area"),
            );
            valid = false;
        }
    }
    if let Some(s) = size {
        match base.value.checked_add(s.value) {
            None => {
                v.err(RESERVE_RANGE.at(
                    format!("region[{i}].reserve"),
                    res.span.clone(),
                    "base + size is beyond the 64-bit address space",
                    "overflows",
                ));
                valid = false;
            }
            Some(end) => v.placed.push(Placed {
                region: name.to_string(),
                base: base.value,
                end,
                span: base.span.clone(),
                path: rp("base"),
            }),
        }
    }
    valid
}

/// Checks a dynamically placed reserve (rules `reserve-alignment`, `reserve-alloc-range`);
/// returns whether it is valid.
fn dynamic(v: &mut Validator<'_>, i: usize, rv: &RawReserve, size: Option<&Sp<u64>>) -> bool {
    let rp = |key: &str| format!("region[{i}].reserve.{key}");
    let mut valid = true;
    if let Some(a) = &rv.alignment {
        if !(a.value >= v.page_size && a.value.is_power_of_two()) {
            let d = RESERVE_ALIGNMENT.at(
                rp("alignment"),
                a.span.clone(),
                format!(
                    "alignment {} is not a power of two of at least {}, the page size",
                    format_size(a.value),
                    format_size(v.page_size)
                ),
                format!("not a power of two >= {}", format_size(v.page_size)),
            );
            v.err(d);
            valid = false;
        }
    }
    let Some(ranges) = &rv.alloc_ranges else {
        return valid;
    };
    if ranges.value.len() > MAX_ALLOC_RANGES {
        v.err(RESERVE_ALLOC_RANGE.at(
            rp("alloc-ranges"),
            ranges.span.clone(),
            format!(
                "{} allocation ranges, more than {MAX_ALLOC_RANGES}",
                ranges.value.len()
            ),
            "too many ranges",
        ));
        valid = false;
    }
    let size = size.map(|s| s.value);
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
            v.err(RESERVE_ALLOC_RANGE.at(
                format!("region[{i}].reserve.alloc-ranges[{j}]"),
                range.span.clone(),
                msg,
                "unusable range",
            ));
            valid = false;
        }
    }
    valid
}

/// Checks `reserve.default` (rule `reserve-default-duplicate`); returns whether it is valid.
fn default_area(v: &mut Validator<'_>, i: usize, rv: &RawReserve, name: &str) -> bool {
    let Some(d) = rv.default.as_ref().filter(|d| d.value) else {
        return true;
    };
    if let Some(first) = &v.default_reserve {
        let e = RESERVE_DEFAULT_DUPLICATE
            .at(
                format!("region[{i}].reserve.default"),
                d.span.clone(),
                format!(
                    "regions `{}` and `{name}` are both the default CMA area",
                    first.region
                ),
                "second default",
            )
            .with_secondary(
                first.span.clone(),
                format!("`{}` is the default here", first.region),
            );
        v.err(e);
        return false;
    }
    v.default_reserve = Some(FirstUse {
        region: name.to_string(),
        span: d.span.clone(),
    });
    true
}

/// Checks that the node `reserve` creates is the CMA area the region binds (rules `cma-name`,
/// `cma-reserve-mismatch`) and returns the node when it is.
fn node(
    v: &mut Validator<'_>,
    i: usize,
    res: &Sp<RawReserve>,
    c: &Sp<String>,
    size: Option<&Sp<u64>>,
    name: &str,
) -> Option<ir::Reserve> {
    let rv = &res.value;
    let path = format!("region[{i}].cma");
    let stem = c.value.split('@').next().unwrap_or_default();
    let expected = match &rv.base {
        Some(b) => format!("{stem}@{:x}", b.value),
        None => stem.to_string(),
    };
    if stem.is_empty() || stem.len() > 31 || !stem.chars().all(is_dt_node_char) {
        v.err(CMA_NAME.at(
            path,
            c.span.clone(),
            format!("`{stem}` is not a device-tree node name"),
            "node names use [A-Za-z0-9,._+-], 1 to 31 characters",
        ));
        return None;
    }
    if c.value != expected {
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
            CMA_RESERVE_MISMATCH
                .at(
                    path,
                    c.span.clone(),
                    format!(
                        "`reserve` creates the CMA area `{expected}`, but the region binds `{}`",
                        c.value
                    ),
                    format!("expected `{expected}`"),
                )
                .with_secondary(other_span, why)
                .with_help(format!("write `cma = \"{expected}\"`")),
        );
        return None;
    }
    Some(ir::Reserve {
        region: name.to_string(),
        node: expected,
        label: format!("heapgen_{}", ident(name)),
        base: rv.base.as_ref().map(|b| b.value),
        size: size.map_or(0, |s| s.value),
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
    })
}

/// Checks that no two fixed regions overlap (rule `reserve-overlap`).
pub(super) fn overlaps(v: &mut Validator<'_>) {
    let placed = std::mem::take(&mut v.placed);
    for (k, a) in placed.iter().enumerate() {
        for b in &placed[k + 1..] {
            if a.base < b.end && b.base < a.end {
                v.err(
                    RESERVE_OVERLAP
                        .at(
                            b.path.clone(),
                            b.span.clone(),
                            format!(
                                "region `{}` ({}..{}) overlaps region `{}` ({}..{})",
                                b.region,
                                format_addr(b.base),
                                format_addr(b.end),
                                a.region,
                                format_addr(a.base),
                                format_addr(a.end)
                            ),
                            format!("`{}` starts here", b.region),
                        )
                        .with_secondary(a.span.clone(), format!("`{}` starts here", a.region)),
                );
            }
        }
    }
    v.placed = placed;
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

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
}
