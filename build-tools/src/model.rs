//! The raw board file model (board file v1), with the source span of every value.
//!
//! Parsing walks the spanned TOML tree of `toml::de::DeTable` by hand instead of deriving
//! `Deserialize`: serde stops at the first error, and a board integrator wants every problem of a
//! file in one run. Unknown keys become `unknown-key` diagnostics with a "did you mean", and wrong
//! types become `type-mismatch`. Nothing is validated here beyond shape; see `validate/`.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::diag::{did_you_mean, Collected, Diagnostic, Rule};
use crate::size::{parse_integer_literal, parse_size};

/// A value and the byte range it was written at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sp<T> {
    /// The value.
    pub value: T,
    /// Its byte range in the board file.
    pub span: Range<usize>,
}

impl<T> Sp<T> {
    fn new(value: T, span: Range<usize>) -> Self {
        Self { value, span }
    }
}

/// Rule: the board file is not TOML.
pub const TOML_SYNTAX: Rule = Rule {
    name: "toml-syntax",
    summary: "the board file is TOML",
    docs: "Diagnostics",
};

/// Rule: a key the board file format does not have.
pub const UNKNOWN_KEY: Rule = Rule {
    name: "unknown-key",
    summary: "every key is one the board file format documents",
    docs: "Conventions",
};

/// Rule: a value of the wrong TOML type.
pub const TYPE_MISMATCH: Rule = Rule {
    name: "type-mismatch",
    summary: "every value has its key's type",
    docs: "Diagnostics",
};

/// Rule: a size that does not parse.
pub const SIZE_SYNTAX: Rule = Rule {
    name: "size-syntax",
    summary: "a size is an integer, hex, or a number with a binary unit",
    docs: "Conventions",
};

/// Rule: an alignment table that is not `size-order = true`.
pub const ALIGNMENT_KIND: Rule = Rule {
    name: "alignment-kind",
    summary: "an alignment table says `size-order = true`",
    docs: "region.alignment",
};

/// Rule: more `[[region]]` tables than a board can have heaps.
pub const TOO_MANY_REGIONS: Rule = Rule {
    name: "too-many-regions",
    summary: "a board has at most as many regions as heaps",
    docs: "region",
};

/// The rules of the board file's shape, checked while it is parsed.
pub const RULES: &[Rule] = &[
    TOML_SYNTAX,
    UNKNOWN_KEY,
    TYPE_MISMATCH,
    SIZE_SYNTAX,
    ALIGNMENT_KIND,
    TOO_MANY_REGIONS,
];

/// The most `[[region]]` tables a board file may have: each region is at least one heap, so
/// a board with more cannot be valid (`too-many-heaps`). Regions past this one are not read.
pub const MAX_REGIONS: usize = crate::validate::MAX_HEAPS;

/// Keys of the document root.
pub const ROOT_KEYS: &[&str] = &["schema-version", "board", "defaults", "region"];
/// Keys of `[board]`.
pub const BOARD_KEYS: &[&str] = &["name", "arch", "description", "maintainer", "page-size"];
/// Keys of `[defaults]`.
pub const DEFAULTS_KEYS: &[&str] = &[
    "alignment",
    "granule",
    "guard",
    "max-alloc",
    "access",
    "accounting",
];
/// Keys of `[[region]]`.
pub const REGION_KEYS: &[&str] = &[
    "name",
    "cma",
    "heap",
    "reserve",
    "alignment",
    "granule",
    "guard",
    "max-alloc",
    "variants",
    "access",
    "fallback",
    "hooks",
    "strategy",
    "accounting",
];
/// Keys of a size-order `alignment` table.
pub const ALIGNMENT_KEYS: &[&str] = &["size-order", "max"];
/// Keys of `guard`.
pub const GUARD_KEYS: &[&str] = &["before", "after"];
/// Keys of `access`.
pub const ACCESS_KEYS: &[&str] = &["mode", "owner", "group", "world-access", "world-writable"];
/// Keys of `reserve`.
pub const RESERVE_KEYS: &[&str] = &["base", "size", "alignment", "alloc-ranges", "default"];
/// Keys of `strategy`.
pub const STRATEGY_KEYS: &[&str] = &["kind", "sizes", "depth", "size"];

/// The whole board file.
#[derive(Clone, Debug, Default)]
pub struct RawBoard {
    /// `schema-version`.
    pub schema_version: Option<Sp<i64>>,
    /// `[board]`, with the span of its header.
    pub board: Option<Sp<RawBoardSection>>,
    /// `[defaults]`.
    pub defaults: RawDefaults,
    /// `[[region]]` tables in file order, each with the span of its header.
    pub regions: Vec<Sp<RawRegion>>,
}

/// `[board]`.
#[derive(Clone, Debug, Default)]
pub struct RawBoardSection {
    /// `name`.
    pub name: Option<Sp<String>>,
    /// `arch`.
    pub arch: Option<Sp<String>>,
    /// `description`.
    pub description: Option<Sp<String>>,
    /// `maintainer`.
    pub maintainer: Option<Sp<String>>,
    /// `page-size`.
    pub page_size: Option<Sp<u64>>,
}

/// How a region's buffers are aligned, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawAlignment {
    /// A size string: every buffer is aligned to it.
    Fixed(u64),
    /// `{ size-order = true, max = "1M" }`: order of the buffer size, capped at `max`.
    SizeOrder {
        /// The cap, when given.
        max: Option<Sp<u64>>,
    },
}

/// `guard`.
#[derive(Clone, Debug, Default)]
pub struct RawGuard {
    /// `before`.
    pub before: Option<Sp<u64>>,
    /// `after`.
    pub after: Option<Sp<u64>>,
}

/// `access`.
#[derive(Clone, Debug, Default)]
pub struct RawAccess {
    /// `mode`, as a number (the span points at what was written).
    pub mode: Option<Sp<u32>>,
    /// `owner`.
    pub owner: Option<Sp<String>>,
    /// `group`.
    pub group: Option<Sp<String>>,
    /// `world-access`: the explicit opt-in a `mode` with any bit for others needs.
    pub world_access: Option<Sp<bool>>,
    /// `world-writable`: the former name of `world-access`, still accepted.
    pub world_writable: Option<Sp<bool>>,
}

/// `[defaults]`.
#[derive(Clone, Debug, Default)]
pub struct RawDefaults {
    /// `alignment`.
    pub alignment: Option<Sp<RawAlignment>>,
    /// `granule`.
    pub granule: Option<Sp<u64>>,
    /// `guard`.
    pub guard: Option<Sp<RawGuard>>,
    /// `max-alloc`.
    pub max_alloc: Option<Sp<u64>>,
    /// `access`.
    pub access: Option<Sp<RawAccess>>,
    /// `accounting`.
    pub accounting: Option<Sp<bool>>,
}

/// One `alloc-ranges` entry: `[base, size]`, with the span of the pair.
pub type RawRange = Sp<(Sp<u64>, Sp<u64>)>;

/// `reserve`.
#[derive(Clone, Debug, Default)]
pub struct RawReserve {
    /// `base`.
    pub base: Option<Sp<u64>>,
    /// `size`.
    pub size: Option<Sp<u64>>,
    /// `alignment`.
    pub alignment: Option<Sp<u64>>,
    /// `alloc-ranges`: `[base, size]` pairs.
    pub alloc_ranges: Option<Sp<Vec<RawRange>>>,
    /// `default`.
    pub default: Option<Sp<bool>>,
}

/// `[[region]]`.
#[derive(Clone, Debug, Default)]
pub struct RawRegion {
    /// `name`.
    pub name: Option<Sp<String>>,
    /// `cma`.
    pub cma: Option<Sp<String>>,
    /// `heap`.
    pub heap: Option<Sp<String>>,
    /// `reserve`.
    pub reserve: Option<Sp<RawReserve>>,
    /// `alignment`.
    pub alignment: Option<Sp<RawAlignment>>,
    /// `granule`.
    pub granule: Option<Sp<u64>>,
    /// `guard`.
    pub guard: Option<Sp<RawGuard>>,
    /// `max-alloc`.
    pub max_alloc: Option<Sp<u64>>,
    /// `variants`.
    pub variants: Option<Sp<Vec<Sp<String>>>>,
    /// `access`.
    pub access: Option<Sp<RawAccess>>,
    /// `fallback`: names of the regions tried, in order, when this one is exhausted.
    pub fallback: Option<Sp<Vec<Sp<String>>>>,
    /// `hooks`: path of the region's strategy hook file, relative to the board file.
    pub hooks: Option<Sp<String>>,
    /// `strategy`: how buffers are obtained (`direct` from CMA, from a `pool`, or from a
    /// `headroom`).
    pub strategy: Option<Sp<RawStrategy>>,
    /// `accounting`: charge the region's buffers to the allocating task's dmem cgroup.
    pub accounting: Option<Sp<bool>>,
}

/// `strategy = { kind = "pool", sizes = [...], depth = N }` or
/// `strategy = { kind = "headroom", size = "16M" }`.
#[derive(Clone, Debug, Default)]
pub struct RawStrategy {
    /// `kind`: `"direct"`, `"pool"` or `"headroom"`.
    pub kind: Option<Sp<String>>,
    /// `sizes`: the pool's size classes.
    pub sizes: Option<Sp<Vec<Sp<u64>>>>,
    /// `depth`: buffers kept per size class.
    pub depth: Option<Sp<i64>>,
    /// `size`: the bytes of the area a headroom keeps allocated ahead of demand.
    pub size: Option<Sp<u64>>,
}

type Entry<'a, 'i> = (
    &'a toml::Spanned<std::borrow::Cow<'i, str>>,
    &'a toml::Spanned<DeValue<'i>>,
);

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

struct Walker {
    diags: Collected,
}

impl Walker {
    fn mismatch(&mut self, path: &str, value: &toml::Spanned<DeValue<'_>>, expected: &str) {
        self.diags.push(Diagnostic::new(
            &TYPE_MISMATCH,
            path,
            value.span(),
            format!("expected {expected}, found {}", type_name(value.get_ref())),
            format!("expected {expected}"),
        ));
    }

    /// Reports unknown keys of `table`, returns its known entries in source order.
    fn entries<'a, 'i>(
        &mut self,
        path: &str,
        table: &'a DeTable<'i>,
        known: &[&str],
    ) -> Vec<Entry<'a, 'i>> {
        let mut entries: Vec<Entry<'a, 'i>> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        for (k, _) in &entries {
            let key: &str = k.get_ref();
            let key_path = join(path, key);
            if known.contains(&key) {
                continue;
            }
            let mut d = Diagnostic::new(
                &UNKNOWN_KEY,
                key_path,
                k.span(),
                format!("unknown key `{key}`"),
                "unknown key",
            );
            if self.diags.wants(k.span().start) {
                d = match did_you_mean(key, known) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("expected one of {}", quote_list(known))),
                };
            }
            self.diags.push(d);
        }
        entries
            .into_iter()
            .filter(|(k, _)| known.contains(&k.get_ref().as_ref()))
            .collect()
    }

    fn string(&mut self, path: &str, v: &toml::Spanned<DeValue<'_>>) -> Option<Sp<String>> {
        match v.get_ref() {
            DeValue::String(s) => Some(Sp::new(s.to_string(), v.span())),
            _ => {
                self.mismatch(path, v, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, path: &str, v: &toml::Spanned<DeValue<'_>>) -> Option<Sp<bool>> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Sp::new(*b, v.span())),
            _ => {
                self.mismatch(path, v, "a boolean");
                None
            }
        }
    }

    fn size(&mut self, path: &str, v: &toml::Spanned<DeValue<'_>>) -> Option<Sp<u64>> {
        let parsed = match v.get_ref() {
            DeValue::String(s) => parse_size(s),
            DeValue::Integer(i) => parse_integer_literal(i.as_str(), i.radix()),
            _ => {
                self.mismatch(path, v, "a size (\"64M\", \"0x1000\" or an integer)");
                return None;
            }
        };
        match parsed {
            Ok(n) => Some(Sp::new(n, v.span())),
            Err(e) => {
                self.diags.push(
                    Diagnostic::new(
                        &SIZE_SYNTAX,
                        path,
                        v.span(),
                        format!("invalid size: {e}"),
                        "not a size",
                    )
                    .with_help("sizes are integers, hex (\"0x1000\") or have a binary unit (\"4K\", \"64M\", \"1G\")"),
                );
                None
            }
        }
    }

    fn table<'a, 'i>(
        &mut self,
        path: &str,
        v: &'a toml::Spanned<DeValue<'i>>,
    ) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.mismatch(path, v, "a table");
                None
            }
        }
    }

    fn board(&mut self, v: &toml::Spanned<DeValue<'_>>) -> Option<Sp<RawBoardSection>> {
        let t = self.table("board", v)?;
        let mut b = RawBoardSection::default();
        for (k, v) in self.entries("board", t, BOARD_KEYS) {
            let p = join("board", k.get_ref());
            match k.get_ref().as_ref() {
                "name" => b.name = self.string(&p, v),
                "arch" => b.arch = self.string(&p, v),
                "description" => b.description = self.string(&p, v),
                "maintainer" => b.maintainer = self.string(&p, v),
                "page-size" => b.page_size = self.size(&p, v),
                _ => unreachable!("filtered by entries()"),
            }
        }
        Some(Sp::new(b, v.span()))
    }

    fn alignment(
        &mut self,
        path: &str,
        v: &toml::Spanned<DeValue<'_>>,
    ) -> Option<Sp<RawAlignment>> {
        match v.get_ref() {
            DeValue::Table(t) => {
                let mut size_order = None;
                let mut max = None;
                for (k, v) in self.entries(path, t, ALIGNMENT_KEYS) {
                    let p = join(path, k.get_ref());
                    match k.get_ref().as_ref() {
                        "size-order" => size_order = self.boolean(&p, v),
                        "max" => max = self.size(&p, v),
                        _ => unreachable!("filtered by entries()"),
                    }
                }
                match size_order {
                    Some(Sp { value: true, .. }) => {
                        Some(Sp::new(RawAlignment::SizeOrder { max }, v.span()))
                    }
                    Some(Sp { value: false, span }) => {
                        self.diags.push(
                            Diagnostic::new(
                                &ALIGNMENT_KIND,
                                join(path, "size-order"),
                                span,
                                "`size-order = false` does not choose an alignment",
                                "must be true",
                            )
                            .with_help("write a fixed alignment as a size instead, e.g. `alignment = \"64K\"`"),
                        );
                        None
                    }
                    None => {
                        self.diags.push(
                            Diagnostic::new(
                                &ALIGNMENT_KIND,
                                path,
                                v.span(),
                                "an alignment table needs `size-order = true`",
                                "missing `size-order = true`",
                            )
                            .with_help("write a fixed alignment as a size instead, e.g. `alignment = \"64K\"`"),
                        );
                        None
                    }
                }
            }
            _ => self
                .size(path, v)
                .map(|s| Sp::new(RawAlignment::Fixed(s.value), s.span)),
        }
    }

    fn guard(&mut self, path: &str, v: &toml::Spanned<DeValue<'_>>) -> Option<Sp<RawGuard>> {
        let t = self.table(path, v)?;
        let mut g = RawGuard::default();
        for (k, val) in self.entries(path, t, GUARD_KEYS) {
            let p = join(path, k.get_ref());
            match k.get_ref().as_ref() {
                "before" => g.before = self.size(&p, val),
                "after" => g.after = self.size(&p, val),
                _ => unreachable!("filtered by entries()"),
            }
        }
        Some(Sp::new(g, v.span()))
    }

    fn mode(&mut self, path: &str, v: &toml::Spanned<DeValue<'_>>) -> Option<Sp<u32>> {
        let help =
            "write the mode in octal, as a string (\"0660\") or a TOML octal integer (0o660)";
        let parsed = match v.get_ref() {
            DeValue::String(s) => {
                let digits = s.strip_prefix("0o").unwrap_or(s);
                if digits.is_empty()
                    || digits.len() > 5
                    || !digits.chars().all(|c| ('0'..='7').contains(&c))
                {
                    Err(format!("`{s}` is not an octal mode"))
                } else {
                    u32::from_str_radix(digits, 8).map_err(|e| e.to_string())
                }
            }
            DeValue::Integer(i) if i.radix() == 8 => u32::from_str_radix(
                i.as_str()
                    .trim_start_matches("0o")
                    .replace('_', "")
                    .as_str(),
                8,
            )
            .map_err(|e| e.to_string()),
            DeValue::Integer(i) => Err(format!(
                "`{}` is not octal (a decimal integer here is almost always a mistake)",
                i.as_str()
            )),
            _ => {
                self.mismatch(path, v, "an octal mode string");
                return None;
            }
        };
        match parsed {
            Ok(m) if m <= 0o7777 => Some(Sp::new(m, v.span())),
            Ok(m) => {
                self.diags.push(
                    Diagnostic::new(
                        &crate::validate::access::ACCESS_MODE,
                        path,
                        v.span(),
                        format!("mode {m:o} is larger than 07777"),
                        "not a file mode",
                    )
                    .with_help(help),
                );
                None
            }
            Err(e) => {
                self.diags.push(
                    Diagnostic::new(
                        &crate::validate::access::ACCESS_MODE,
                        path,
                        v.span(),
                        e,
                        "not an octal mode",
                    )
                    .with_help(help),
                );
                None
            }
        }
    }

    fn access(&mut self, path: &str, v: &toml::Spanned<DeValue<'_>>) -> Option<Sp<RawAccess>> {
        let t = self.table(path, v)?;
        let mut a = RawAccess::default();
        for (k, val) in self.entries(path, t, ACCESS_KEYS) {
            let p = join(path, k.get_ref());
            match k.get_ref().as_ref() {
                "mode" => a.mode = self.mode(&p, val),
                "owner" => a.owner = self.string(&p, val),
                "group" => a.group = self.string(&p, val),
                "world-access" => a.world_access = self.boolean(&p, val),
                "world-writable" => a.world_writable = self.boolean(&p, val),
                _ => unreachable!("filtered by entries()"),
            }
        }
        Some(Sp::new(a, v.span()))
    }

    fn defaults(&mut self, v: &toml::Spanned<DeValue<'_>>) -> RawDefaults {
        let mut d = RawDefaults::default();
        let Some(t) = self.table("defaults", v) else {
            return d;
        };
        for (k, val) in self.entries("defaults", t, DEFAULTS_KEYS) {
            let p = join("defaults", k.get_ref());
            match k.get_ref().as_ref() {
                "alignment" => d.alignment = self.alignment(&p, val),
                "granule" => d.granule = self.size(&p, val),
                "guard" => d.guard = self.guard(&p, val),
                "max-alloc" => d.max_alloc = self.size(&p, val),
                "access" => d.access = self.access(&p, val),
                "accounting" => d.accounting = self.boolean(&p, val),
                _ => unreachable!("filtered by entries()"),
            }
        }
        d
    }

    fn alloc_ranges(
        &mut self,
        path: &str,
        v: &toml::Spanned<DeValue<'_>>,
    ) -> Option<Sp<Vec<RawRange>>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.mismatch(path, v, "an array of [base, size] pairs");
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            match item.get_ref() {
                DeValue::Array(pair) if pair.len() == 2 => {
                    let base = self.size(&format!("{p}[0]"), &pair[0]);
                    let size = self.size(&format!("{p}[1]"), &pair[1]);
                    if let (Some(base), Some(size)) = (base, size) {
                        out.push(Sp::new((base, size), item.span()));
                    }
                }
                _ => self.mismatch(&p, item, "a [base, size] pair"),
            }
        }
        Some(Sp::new(out, v.span()))
    }

    fn reserve(&mut self, path: &str, v: &toml::Spanned<DeValue<'_>>) -> Option<Sp<RawReserve>> {
        let t = self.table(path, v)?;
        let mut r = RawReserve::default();
        for (k, val) in self.entries(path, t, RESERVE_KEYS) {
            let p = join(path, k.get_ref());
            match k.get_ref().as_ref() {
                "base" => r.base = self.size(&p, val),
                "size" => r.size = self.size(&p, val),
                "alignment" => r.alignment = self.size(&p, val),
                "alloc-ranges" => r.alloc_ranges = self.alloc_ranges(&p, val),
                "default" => r.default = self.boolean(&p, val),
                _ => unreachable!("filtered by entries()"),
            }
        }
        Some(Sp::new(r, v.span()))
    }

    fn strings(
        &mut self,
        path: &str,
        v: &toml::Spanned<DeValue<'_>>,
    ) -> Option<Sp<Vec<Sp<String>>>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.mismatch(path, v, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(s) = self.string(&format!("{path}[{i}]"), item) {
                out.push(s);
            }
        }
        Some(Sp::new(out, v.span()))
    }

    fn strategy(&mut self, path: &str, v: &toml::Spanned<DeValue<'_>>) -> Option<Sp<RawStrategy>> {
        let t = self.table(path, v)?;
        let mut st = RawStrategy::default();
        for (k, val) in self.entries(path, t, STRATEGY_KEYS) {
            let p = join(path, k.get_ref());
            match k.get_ref().as_ref() {
                "kind" => st.kind = self.string(&p, val),
                "sizes" => {
                    let DeValue::Array(items) = val.get_ref() else {
                        self.mismatch(&p, val, "an array of sizes");
                        continue;
                    };
                    let mut out = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        if let Some(s) = self.size(&format!("{p}[{i}]"), item) {
                            out.push(s);
                        }
                    }
                    st.sizes = Some(Sp::new(out, val.span()));
                }
                "depth" => match val.get_ref() {
                    DeValue::Integer(i) => {
                        // Out of i64 range: certainly out of the depth's range, which the
                        // validator reports with the allowed bounds.
                        let n = i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
                            .unwrap_or(i64::MAX);
                        st.depth = Some(Sp::new(n, val.span()));
                    }
                    _ => self.mismatch(&p, val, "an integer"),
                },
                "size" => st.size = self.size(&p, val),
                _ => unreachable!("filtered by entries()"),
            }
        }
        Some(Sp::new(st, v.span()))
    }

    fn too_many_regions(&mut self, count: usize, first_extra: &toml::Spanned<DeValue<'_>>) {
        self.diags.push(
            Diagnostic::new(
                &TOO_MANY_REGIONS,
                format!("region[{MAX_REGIONS}]"),
                first_extra.span(),
                format!("the board has {count} regions, more than {MAX_REGIONS}"),
                "one region too many",
            )
            .with_help(format!(
                "every region is at least one heap and a board has at most {MAX_REGIONS} heaps; \
                 the regions from here on are not checked"
            )),
        );
    }

    fn region(&mut self, index: usize, v: &toml::Spanned<DeValue<'_>>) -> Option<Sp<RawRegion>> {
        let path = format!("region[{index}]");
        let t = self.table(&path, v)?;
        let mut r = RawRegion::default();
        for (k, val) in self.entries(&path, t, REGION_KEYS) {
            let p = join(&path, k.get_ref());
            match k.get_ref().as_ref() {
                "name" => r.name = self.string(&p, val),
                "cma" => r.cma = self.string(&p, val),
                "heap" => r.heap = self.string(&p, val),
                "reserve" => r.reserve = self.reserve(&p, val),
                "alignment" => r.alignment = self.alignment(&p, val),
                "granule" => r.granule = self.size(&p, val),
                "guard" => r.guard = self.guard(&p, val),
                "max-alloc" => r.max_alloc = self.size(&p, val),
                "variants" => r.variants = self.strings(&p, val),
                "access" => r.access = self.access(&p, val),
                "fallback" => r.fallback = self.strings(&p, val),
                "hooks" => r.hooks = self.string(&p, val),
                "strategy" => r.strategy = self.strategy(&p, val),
                "accounting" => r.accounting = self.boolean(&p, val),
                _ => unreachable!("filtered by entries()"),
            }
        }
        Some(Sp::new(r, v.span()))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn quote_list(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The size up to which every syntax error of a board file is reported, in bytes.
pub const RECOVERY_LIMIT: usize = 64 << 10;

fn syntax_diagnostic(e: &toml::de::Error) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let msg = e.message().trim();
    let first = msg.lines().next().unwrap_or("invalid TOML").to_string();
    Diagnostic::new(&TOML_SYNTAX, "", span, first, "invalid TOML")
}

/// Parses a board file's text. Returns the raw model (as far as it could be read) and every
/// syntax and shape problem found. When the TOML itself does not parse, the model is `None`.
pub fn parse(text: &str) -> (Option<RawBoard>, Collected) {
    // A valid document is parsed once. An invalid one is parsed again to report every syntax
    // error, unless it is large: recovery keeps every error (a few hundred bytes each, three
    // per line of garbage), so past RECOVERY_LIMIT only the first is reported.
    let (doc, errors) = match DeTable::parse(text) {
        Ok(doc) => (doc, Vec::new()),
        Err(first) if text.len() > RECOVERY_LIMIT => {
            let mut d = syntax_diagnostic(&first);
            d.help = Some(format!(
                "only the first syntax error of a file over {} KiB is reported",
                RECOVERY_LIMIT >> 10
            ));
            return (None, std::iter::once(d).collect());
        }
        Err(_) => DeTable::parse_recoverable(text),
    };
    if !errors.is_empty() {
        let diags = errors.iter().map(syntax_diagnostic).collect();
        return (None, diags);
    }
    let mut w = Walker {
        diags: Collected::new(),
    };
    let mut raw = RawBoard::default();
    for (k, v) in w.entries("", doc.get_ref(), ROOT_KEYS) {
        match k.get_ref().as_ref() {
            "schema-version" => match v.get_ref() {
                DeValue::Integer(i) => {
                    let n =
                        i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).unwrap_or(-1);
                    raw.schema_version = Some(Sp::new(n, v.span()));
                }
                _ => w.mismatch("schema-version", v, "the integer 1"),
            },
            "board" => raw.board = w.board(v),
            "defaults" => raw.defaults = w.defaults(v),
            "region" => match v.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if i == MAX_REGIONS {
                            w.too_many_regions(items.len(), item);
                            break;
                        }
                        if let Some(r) = w.region(i, item) {
                            raw.regions.push(r);
                        }
                    }
                }
                _ => w.mismatch("region", v, "an array of tables (`[[region]]`)"),
            },
            _ => unreachable!("filtered by entries()"),
        }
    }
    (Some(raw), w.diags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<&'static str> {
        parse(text).1.iter().map(|d| d.rule).collect()
    }

    #[test]
    fn toml_syntax_errors_are_reported() {
        let r = rules("schema-version = = 1\n");
        assert!(
            !r.is_empty() && r.iter().all(|r| *r == "toml-syntax"),
            "{r:?}"
        );
    }

    #[test]
    fn unknown_keys_suggest_the_closest_key() {
        let d = parse("[board]\nnmae = \"x\"\n").1.into_vec();
        assert_eq!(d[0].rule, "unknown-key");
        assert_eq!(d[0].path, "board.nmae");
        assert_eq!(d[0].help.as_deref(), Some("did you mean `name`?"));
    }

    #[test]
    fn accounting_is_a_boolean_of_regions_and_defaults() {
        let (raw, d) = parse("[defaults]\naccounting = true\n[[region]]\naccounting = false\n");
        assert!(d.is_empty(), "{d:?}");
        let raw = raw.unwrap();
        assert_eq!(raw.defaults.accounting.map(|a| a.value), Some(true));
        assert_eq!(
            raw.regions[0].value.accounting.as_ref().map(|a| a.value),
            Some(false)
        );
        assert_eq!(
            rules("[[region]]\naccounting = \"dmem\"\n"),
            ["type-mismatch"]
        );
        // `strategy` is a region key only: a pool's sizes depend on the region.
        assert_eq!(rules("[defaults]\nstrategy = {}\n"), ["unknown-key"]);
    }

    #[test]
    fn wrong_types_are_type_mismatches() {
        assert_eq!(rules("[board]\nname = 3\n"), ["type-mismatch"]);
        assert_eq!(rules("region = 1\n"), ["type-mismatch"]);
    }

    #[test]
    fn sizes_parse_from_strings_and_integers() {
        let (raw, d) = parse("[[region]]\ngranule = \"64K\"\nmax-alloc = 0x100000\n");
        assert!(d.is_empty(), "{d:?}");
        let r = &raw.unwrap().regions[0].value;
        assert_eq!(r.granule.as_ref().unwrap().value, 64 << 10);
        assert_eq!(r.max_alloc.as_ref().unwrap().value, 1 << 20);
        assert_eq!(rules("[[region]]\ngranule = \"64Q\"\n"), ["size-syntax"]);
    }

    #[test]
    fn a_headroom_size_is_a_size() {
        let (raw, d) = parse("[[region]]\nstrategy = { kind = \"headroom\", size = \"16M\" }\n");
        assert!(d.is_empty(), "{d:?}");
        let st = &raw.unwrap().regions[0]
            .value
            .strategy
            .clone()
            .unwrap()
            .value;
        assert_eq!(st.size.as_ref().map(|s| s.value), Some(16 << 20));
        assert_eq!(
            rules("[[region]]\nstrategy = { kind = \"headroom\", size = \"16Q\" }\n"),
            ["size-syntax"]
        );
        assert_eq!(
            rules("[[region]]\nstrategy = { kind = \"headroom\", size = [\"16M\"] }\n"),
            ["type-mismatch"]
        );
    }

    #[test]
    fn size_order_alignment_needs_true() {
        let (raw, d) = parse("[[region]]\nalignment = { size-order = true, max = \"1M\" }\n");
        assert!(d.is_empty());
        assert!(matches!(
            raw.unwrap().regions[0]
                .value
                .alignment
                .as_ref()
                .unwrap()
                .value,
            RawAlignment::SizeOrder {
                max: Some(Sp {
                    value: 0x10_0000,
                    ..
                })
            }
        ));
        assert_eq!(
            rules("[[region]]\nalignment = { size-order = false }\n"),
            ["alignment-kind"]
        );
        assert_eq!(
            rules("[[region]]\nalignment = { max = \"1M\" }\n"),
            ["alignment-kind"]
        );
    }

    #[test]
    fn modes_are_octal() {
        let (raw, d) = parse("[defaults]\naccess = { mode = 0o640 }\n");
        assert!(d.is_empty());
        assert_eq!(
            raw.unwrap()
                .defaults
                .access
                .unwrap()
                .value
                .mode
                .unwrap()
                .value,
            0o640
        );
        assert_eq!(
            rules("[defaults]\naccess = { mode = 660 }\n"),
            ["access-mode"]
        );
        assert_eq!(
            rules("[defaults]\naccess = { mode = \"0968\" }\n"),
            ["access-mode"]
        );
    }
}
