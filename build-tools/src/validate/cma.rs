//! Rules of the CMA area a region binds (`region.cma`).

use std::ops::Range;

use super::{FirstUse, Validator, MISSING_KEY};
use crate::diag::Rule;
use crate::ir;
use crate::model::RawRegion;

/// Rule: `cma` is not a CMA area name (or its stem not a device-tree node name).
pub const CMA_NAME: Rule = Rule {
    name: "cma-name",
    summary: "a CMA area name is `[A-Za-z0-9,._+@-]`, at most 64 characters",
    docs: "region.cma",
};

/// Rule: two regions bind one CMA area.
pub const CMA_DUPLICATE: Rule = Rule {
    name: "cma-duplicate",
    summary: "each CMA area is bound by one region",
    docs: "region.cma",
};

/// Rule: an x86_64 region binds an area other than the `cma=` one.
pub const CMA_X86_64: Rule = Rule {
    name: "cma-x86-64",
    summary: "x86_64 regions bind the `cma=` area, `reserved`",
    docs: "region.cma",
};

/// The rules of this family.
pub const RULES: &[Rule] = &[CMA_NAME, CMA_DUPLICATE, CMA_X86_64];

/// The name of the area the `cma=` command line creates.
pub const CMDLINE_CMA_AREA: &str = "reserved";

/// Whether `c` may appear in a device-tree node name.
pub(super) fn is_dt_node_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ",._+-".contains(c)
}

/// Records the CMA area of every region that names one, for the heap/CMA clash rule.
pub(super) fn collect_areas(v: &mut Validator<'_>) {
    let raw = v.raw;
    for r in &raw.regions {
        if let (Some(c), Some(n)) = (&r.value.cma, &r.value.name) {
            v.cma_areas
                .entry(c.value.clone())
                .or_insert_with(|| FirstUse {
                    region: n.value.clone(),
                    span: c.span.clone(),
                });
        }
    }
}

/// Checks region `i`'s `cma` (rules `missing-key`, `cma-name`, `cma-duplicate`, `cma-x86-64`);
/// returns the area when valid.
pub(super) fn check(
    v: &mut Validator<'_>,
    i: usize,
    r: &RawRegion,
    header: &Range<usize>,
    name: &str,
) -> Option<String> {
    let path = format!("region[{i}].cma");
    let Some(c) = &r.cma else {
        v.err(
            MISSING_KEY
                .at(
                    path,
                    header.clone(),
                    format!("region `{name}` does not say which CMA area it uses"),
                    "missing `cma`",
                )
                .with_help(
                    "name the kernel's CMA area, e.g. `cma = \"reserved\"` for the `cma=` area",
                ),
        );
        return None;
    };
    let mut valid = !c.value.is_empty()
        && c.value.len() <= 64
        && c.value.chars().all(|ch| is_dt_node_char(ch) || ch == '@');
    if !valid {
        v.err(CMA_NAME.at(
            path.clone(),
            c.span.clone(),
            format!("invalid CMA area name `{}`", c.value),
            "CMA area names use [A-Za-z0-9,._+@-], at most 64 characters",
        ));
    }
    if let Some(first) = v.cma_bound.get(&c.value) {
        let d = CMA_DUPLICATE
            .at(
                path.clone(),
                c.span.clone(),
                format!(
                    "CMA area `{}` is bound by region `{}` and region `{name}`",
                    c.value, first.region
                ),
                format!("bound again by `{name}`"),
            )
            .with_secondary(
                first.span.clone(),
                format!("first bound by `{}`", first.region),
            )
            .with_help("one region per CMA area; give each region its own area");
        v.err(d);
        valid = false;
    } else {
        v.cma_bound.insert(
            c.value.clone(),
            FirstUse {
                region: name.to_string(),
                span: c.span.clone(),
            },
        );
    }
    if v.arch == Some(ir::Arch::X86_64) && c.value != CMDLINE_CMA_AREA {
        v.err(
            CMA_X86_64
                .at(
                    path,
                    c.span.clone(),
                    format!("x86_64 has no CMA area `{}`", c.value),
                    "x86_64 only has the `cma=` area",
                )
                .with_help(
                    "on x86_64 bind `cma = \"reserved\"`, the area the `cma=` command line creates",
                ),
        );
        valid = false;
    }
    valid.then(|| c.value.clone())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

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
}
