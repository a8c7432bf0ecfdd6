//! Rules of a region's heaps (`region.heap`, `region.variants`): their names, and how many a
//! board creates.

use std::ops::Range;

use super::{FirstUse, Validator, MISSING_KEY};
use crate::diag::{did_you_mean, Rule};
use crate::ir;
use crate::model::{RawRegion, Sp};

/// Rule: an empty, unknown or repeated variant.
pub const VARIANTS_RULE: Rule = Rule {
    name: "variants",
    summary: "variants are `cached` and/or `uncached`, each once",
    docs: "region.variants",
};

/// Rule: a heap name is not a device node name.
pub const HEAP_NAME: Rule = Rule {
    name: "heap-name",
    summary: "a heap name is `[a-z0-9@._,-]`, at most 64 characters",
    docs: "region.heap",
};

/// Rule: a heap name the kernel's own heaps use.
pub const HEAP_NAME_RESERVED: Rule = Rule {
    name: "heap-name-reserved",
    summary: "heap names are not those of the kernel's own heaps",
    docs: "region.heap",
};

/// Rule: a heap name that is a CMA area's (upstream's CMA heap takes it).
pub const HEAP_NAME_CMA_CLASH: Rule = Rule {
    name: "heap-name-cma-clash",
    summary: "heap names are not the names of the board's CMA areas",
    docs: "region.heap",
};

/// Rule: two heaps of one name.
pub const HEAP_NAME_DUPLICATE: Rule = Rule {
    name: "heap-name-duplicate",
    summary: "heap names are unique, uncached twins included",
    docs: "region.heap",
};

/// Rule: more than [`MAX_HEAPS`] heaps.
pub const TOO_MANY_HEAPS: Rule = Rule {
    name: "too-many-heaps",
    summary: "a board creates at most 128 heaps",
    docs: "region",
};

/// The rules of this family.
pub const RULES: &[Rule] = &[
    VARIANTS_RULE,
    HEAP_NAME,
    HEAP_NAME_RESERVED,
    HEAP_NAME_CMA_CLASH,
    HEAP_NAME_DUPLICATE,
    TOO_MANY_HEAPS,
];

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

/// The longest heap name, in bytes.
pub const MAX_HEAP_NAME: usize = 64;

/// The variant names a region may ask for.
pub const VARIANTS: &[&str] = &["cached", "uncached"];

fn is_heap_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || "@._,-".contains(c)
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
pub(super) fn assign_selinux_types(heaps: &mut [ir::HeapNode]) {
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

/// The variants a region asks for.
#[derive(Clone, Copy, Debug)]
struct Variants {
    cached: bool,
    uncached: bool,
}

/// The heap names of a valid region.
pub(super) struct HeapNames {
    /// The cached heap, unless the region is uncached only.
    pub cached: Option<String>,
    /// The uncached twin (`<heap>-uncached`), when asked for.
    pub uncached: Option<String>,
}

/// Checks region `i`'s `variants` and `heap` (rules `variants`, `missing-key`, `heap-name*`);
/// returns its heap names when valid.
pub(super) fn check(
    v: &mut Validator<'_>,
    i: usize,
    r: &RawRegion,
    header: &Range<usize>,
    name: &str,
) -> Option<HeapNames> {
    let variants = variants(v, i, r);
    let wanted = variants.unwrap_or_else(|w| w);
    let Some(h) = &r.heap else {
        v.err(
            MISSING_KEY
                .at(
                    format!("region[{i}].heap"),
                    header.clone(),
                    format!("region `{name}` has no heap name"),
                    "missing `heap`",
                )
                .with_help("name the heap after the memory, e.g. `heap = \"camera\"` for /dev/dma_heap/camera"),
        );
        return None;
    };
    let valid = heap_names(v, i, h, wanted, name);
    (variants.is_ok() && valid).then(|| HeapNames {
        cached: wanted.cached.then(|| h.value.clone()),
        uncached: wanted.uncached.then(|| format!("{}-uncached", h.value)),
    })
}

/// Checks region `i`'s `variants` (rule `variants`): the variants, `Err` with those understood
/// when the list is invalid.
fn variants(v: &mut Validator<'_>, i: usize, r: &RawRegion) -> Result<Variants, Variants> {
    let Some(vs) = &r.variants else {
        return Ok(Variants {
            cached: true,
            uncached: false,
        });
    };
    let mut valid = true;
    let mut found = Variants {
        cached: false,
        uncached: false,
    };
    if vs.value.is_empty() {
        v.err(
            VARIANTS_RULE
                .at(
                    format!("region[{i}].variants"),
                    vs.span.clone(),
                    "a region needs at least one variant",
                    "empty",
                )
                .with_help("use [\"cached\"], [\"uncached\"] or [\"cached\", \"uncached\"]"),
        );
        valid = false;
    }
    for (j, item) in vs.value.iter().enumerate() {
        let path = format!("region[{i}].variants[{j}]");
        let flag = match item.value.as_str() {
            "cached" => &mut found.cached,
            "uncached" => &mut found.uncached,
            other => {
                let mut d = VARIANTS_RULE.at(
                    path,
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
                valid = false;
                continue;
            }
        };
        if *flag {
            v.err(VARIANTS_RULE.at(
                path,
                item.span.clone(),
                format!("variant `{}` is listed twice", item.value),
                "duplicate",
            ));
            valid = false;
        }
        *flag = true;
    }
    if valid {
        Ok(found)
    } else {
        Err(found)
    }
}

/// Why a heap name has characters a heap name cannot have, if it has.
fn bad_characters(heap: &str) -> Option<String> {
    let bad_chars: Vec<char> = heap.chars().filter(|&c| !is_heap_char(c)).collect();
    if !heap.is_empty() && bad_chars.is_empty() {
        return None;
    }
    Some(if bad_chars.contains(&'/') {
        "a heap name is a device node name and cannot contain `/`".to_string()
    } else if heap.is_empty() {
        "empty heap name".to_string()
    } else {
        let mut s: Vec<String> = bad_chars.iter().map(|c| format!("`{c}`")).collect();
        s.dedup();
        format!(
            "invalid character{} {}",
            if s.len() == 1 { "" } else { "s" },
            s.join(", ")
        )
    })
}

/// Checks the names of the heaps region `i` creates over `heap` and records them (rules
/// `heap-name`, `heap-name-reserved`, `heap-name-cma-clash`, `heap-name-duplicate`); returns
/// whether they are valid.
fn heap_names(
    v: &mut Validator<'_>,
    i: usize,
    h: &Sp<String>,
    wanted: Variants,
    region: &str,
) -> bool {
    let path = format!("region[{i}].heap");
    let mut valid = true;
    let mut names = Vec::new();
    if wanted.cached {
        names.push((h.value.clone(), false));
    }
    if wanted.uncached {
        names.push((format!("{}-uncached", h.value), true));
    }
    if let Some(why) = bad_characters(&h.value) {
        v.err(
            HEAP_NAME
                .at(
                    path.clone(),
                    h.span.clone(),
                    format!("invalid heap name `{}`: {why}", h.value),
                    "heap names use [a-z0-9@._,-]",
                )
                .with_help(
                    "name the memory, not the allocator, e.g. \"camera\" or \"framebuffer-noecc\"",
                ),
        );
        valid = false;
    }
    for (n, is_uncached) in &names {
        if n.len() > MAX_HEAP_NAME {
            v.err(HEAP_NAME.at(
                path.clone(),
                h.span.clone(),
                format!("heap name `{n}` is longer than {MAX_HEAP_NAME} characters"),
                "too long",
            ));
            valid = false;
        }
        if RESERVED_HEAP_NAMES.contains(&n.as_str()) {
            v.err(
                HEAP_NAME_RESERVED
                    .at(
                        path.clone(),
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
            valid = false;
        }
        valid &= unique(v, &path, h, n, region);
    }
    valid
}

/// Checks that the heap name `n` is neither a CMA area's nor another heap's, and records it;
/// returns whether it is unique.
fn unique(v: &mut Validator<'_>, path: &str, h: &Sp<String>, n: &str, region: &str) -> bool {
    let mut valid = true;
    if let Some(area) = v.cma_areas.get(n) {
        let d = HEAP_NAME_CMA_CLASH
            .at(
                path,
                h.span.clone(),
                format!(
                    "heap name `{n}` is the name of the CMA area of region `{}`",
                    area.region
                ),
                "clashes with a CMA area name",
            )
            .with_secondary(
                area.span.clone(),
                "the kernel's CMA heap already uses this name",
            )
            .with_help("upstream creates a heap named after every CMA area; name the heap after what the memory is for");
        v.err(d);
        valid = false;
    }
    if let Some(first) = v.heap_names.get(n) {
        let d = HEAP_NAME_DUPLICATE
            .at(
                path,
                h.span.clone(),
                format!(
                    "heap `{n}` of region `{region}` is also a heap of region `{}`",
                    first.region
                ),
                format!("`{n}` again"),
            )
            .with_secondary(
                first.span.clone(),
                format!("`{n}` of region `{}`", first.region),
            );
        v.err(d);
        valid = false;
    } else {
        v.heap_names.insert(
            n.to_string(),
            FirstUse {
                region: region.to_string(),
                span: h.span.clone(),
            },
        );
    }
    valid
}

/// Checks how many heaps the board creates (rule `too-many-heaps`).
pub(super) fn too_many(v: &mut Validator<'_>) {
    let heap_count = v.heap_names.len();
    if heap_count > MAX_HEAPS {
        let board_span = v.raw.board.as_ref().map_or(0..0, |b| b.span.clone());
        v.err(TOO_MANY_HEAPS.at(
            "region",
            board_span,
            format!("the board creates {heap_count} heaps, more than {MAX_HEAPS}"),
            "too many heaps",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

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
}
