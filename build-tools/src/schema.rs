//! The JSON Schema (draft-07) of board file v1, for editors (taplo, Even Better TOML).
//!
//! These types exist only to describe the file: parsing is done by `model.rs`, which accepts
//! exactly the keys described here (a test holds the two together), and a checked-in copy at
//! `Documentation/board-file.schema.json` is kept fresh by another test.

#![allow(dead_code)]

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

/// A size in bytes: an integer, hex (`"0x1000"`) or a number with a binary unit (`"64M"`).
struct Size;

impl JsonSchema for Size {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A size in bytes: an integer, hex (\"0x1000\") or a number with a binary unit (\"4K\", \"64M\", \"1G\"; 1K = 1024).",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^(0[xX][0-9a-fA-F_]+|[0-9][0-9_]*\\s*([kKMGT]|[KMGT]i?B)?)$" }
            ]
        })
    }
}

/// An octal file mode.
struct Mode;

impl JsonSchema for Mode {
    fn schema_name() -> Cow<'static, str> {
        "Mode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Octal mode of the device nodes, as a string (\"0660\") or a TOML octal integer (0o660). No bit for others unless `world-access` allows it: read access allocates.",
            "anyOf": [
                { "type": "string", "pattern": "^(0o)?[0-7]{1,4}$" },
                { "type": "integer", "minimum": 0, "maximum": 511 }
            ]
        })
    }
}

/// A heapgen board file, schema version 1.
#[derive(JsonSchema)]
#[schemars(title = "heapgen board file")]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct BoardFile {
    /// The board file format version. Must be 1.
    #[schemars(range(min = 1, max = 1))]
    schema_version: u32,
    /// The board.
    board: Board,
    /// Values every region inherits unless it sets its own.
    defaults: Option<Defaults>,
    /// The board's regions: one CMA area each, with the heap(s) over it.
    #[schemars(length(min = 1))]
    region: Vec<Region>,
}

/// `[board]`.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Board {
    /// Board name, `[a-z][a-z0-9-]*`; the module is `<name with - as _>_heaps`.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]*$"), length(max = 48))]
    name: String,
    /// Target architecture.
    arch: crate::ir::Arch,
    /// One line describing the board.
    description: Option<String>,
    /// The kernel page size the board's policies are in: "4K" (the default), "16K" or "64K"
    /// (arm64 only).
    page_size: Option<Size>,
    /// Who maintains the board file and what is generated from it, `Name <email>`.
    #[schemars(regex(pattern = r"^[^<>\n]*<[^<>@\s]+@[^<>@\s]+>$"))]
    maintainer: Option<String>,
}

/// A size-order alignment: each buffer is aligned to the order of its size, capped at `max`.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct SizeOrder {
    /// Must be `true`.
    size_order: bool,
    /// The cap (a power of two, at least 4K). Default 1M.
    max: Option<Size>,
}

/// Alignment: a size (fixed) or a size-order table.
#[derive(JsonSchema)]
#[serde(untagged)]
enum AlignmentSpec {
    /// Every buffer starts on a multiple of this power of two (at least 4K).
    Fixed(Size),
    /// Upstream's behaviour.
    SizeOrder(SizeOrder),
}

/// Guard areas around each buffer.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Guard {
    /// Guard before the payload (a multiple of 4K, padded up to the alignment). Default 0.
    before: Option<Size>,
    /// Guard after the payload (a multiple of 4K). Default 0.
    after: Option<Size>,
}

/// Device node permissions.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Access {
    /// Mode of `/dev/dma_heap/<name>`. Default "0600".
    mode: Option<Mode>,
    /// Owner user. Default "root".
    #[schemars(regex(pattern = r"^[a-z_][a-z0-9_-]*$"))]
    owner: Option<String>,
    /// Owner group. Default "root".
    #[schemars(regex(pattern = r"^[a-z_][a-z0-9_-]*$"))]
    group: Option<String>,
    /// Allows a `mode` with any bit for others, read access included (reported as a warning).
    /// Default false.
    world_access: Option<bool>,
    /// The former name of `world-access`, still accepted.
    world_writable: Option<bool>,
}

/// `[defaults]`.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Defaults {
    /// Default alignment. Default "4K".
    alignment: Option<AlignmentSpec>,
    /// Default granule. Default "4K".
    granule: Option<Size>,
    /// Default guards. Default none.
    guard: Option<Guard>,
    /// Default largest buffer. Default: the region's size, or 256M when unknown.
    max_alloc: Option<Size>,
    /// Default device node permissions.
    access: Option<Access>,
    /// Default for `accounting`. Default false.
    accounting: Option<bool>,
}

/// Heap variants.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
enum Variant {
    /// `/dev/dma_heap/<heap>`, cached CPU mappings.
    Cached,
    /// `/dev/dma_heap/<heap>-uncached`, write-combined CPU mappings.
    Uncached,
}

/// Memory to reserve in the device tree (arm64 only).
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Reserve {
    /// Fixed base address (4M-aligned on arm64); the node is `<cma stem>@<base>`.
    base: Option<Size>,
    /// Size (a non-zero multiple of 4M on arm64).
    size: Size,
    /// Alignment of a dynamically placed region.
    alignment: Option<Size>,
    /// Where a dynamically placed region may go: `[base, size]` pairs.
    alloc_ranges: Option<Vec<(Size, Size)>>,
    /// Make this the kernel's default CMA area (`linux,cma-default`). Default false.
    default: Option<bool>,
}

/// `[[region]]`.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Region {
    /// Region name, `[a-z][a-z0-9-]*`.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]*$"), length(max = 32))]
    name: String,
    /// The kernel name of the CMA area the region binds to ("reserved" for `cma=`).
    cma: String,
    /// Heap name: `/dev/dma_heap/<heap>`, `[a-z0-9@._,-]`, at most 64 characters.
    #[schemars(regex(pattern = r"^[a-z0-9@._,-]+$"), length(min = 1, max = 64))]
    heap: String,
    /// Reserve the region in the device tree (emits `reserved-memory.dtsi`).
    reserve: Option<Reserve>,
    /// Alignment. Default: `[defaults]`, else "4K".
    alignment: Option<AlignmentSpec>,
    /// Requests are rounded up to this (a multiple of 4K). Default: `[defaults]`, else "4K".
    granule: Option<Size>,
    /// Guard areas. Default: `[defaults]`, else none.
    guard: Option<Guard>,
    /// Largest buffer. Default: `[defaults]`, else the region's size, else 256M.
    max_alloc: Option<Size>,
    /// Heaps to create. Default ["cached"].
    #[schemars(length(min = 1))]
    variants: Option<Vec<Variant>>,
    /// Device node permissions. Default: `[defaults]`, else "0600" root:root.
    access: Option<Access>,
    /// Regions (by name) whose areas are tried in order when this region's area cannot satisfy
    /// a request. Not transitive. Default [] (none).
    fallback: Option<Vec<String>>,
    /// Strategy hook file: a `.rs` file relative to the board file, defining `RegionHooks`
    /// (implementing `hooks::StrategyHooks`). Default none.
    hooks: Option<String>,
    /// How buffers are obtained. Default { kind = "direct" }.
    strategy: Option<Strategy>,
    /// Charge every buffer to the allocating task's dmem cgroup (dmem region
    /// "heapgen/<region name>"), so that `dmem.max` limits it. Needs a kernel with
    /// CONFIG_CGROUP_DMEM. Default: `[defaults]`, else false.
    accounting: Option<bool>,
}

/// Allocation strategy of a region.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Strategy {
    /// "direct" (from CMA, zeroed on the allocation path), "pool" (pre-zeroed buffers) or
    /// "headroom" (part of the area kept evacuated and zeroed ahead of demand).
    kind: StrategyKind,
    /// Pool size classes: ascending granule multiples, at most max-alloc, 1 to 8 of them.
    #[schemars(length(min = 1, max = 8))]
    sizes: Option<Vec<Size>>,
    /// Buffers kept per size class (pool only).
    #[schemars(range(min = 1, max = 64))]
    depth: Option<u32>,
    /// Bytes of the CMA area kept allocated, evacuated and zeroed ahead of demand: a non-zero
    /// multiple of the page size and of the granule, at most the region's size (headroom only).
    size: Option<Size>,
}

/// A strategy kind.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
enum StrategyKind {
    /// Allocate every buffer from CMA.
    Direct,
    /// Keep pre-zeroed buffers of hot sizes.
    Pool,
    /// Keep part of the area evacuated and zeroed ahead of demand.
    Headroom,
}

/// The schema as a JSON value.
pub fn schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut value = generator.into_root_schema_for::<BoardFile>().to_value();
    strip_null(&mut value);
    value
}

/// TOML has no null: an optional key is simply absent. Removes the `null` alternatives schemars
/// gives `Option` fields.
fn strip_null(v: &mut serde_json::Value) {
    use serde_json::Value;
    if let Value::Object(map) = v {
        if let Some(Value::Array(types)) = map.get_mut("type") {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                let only = types.remove(0);
                map.insert("type".into(), only);
            }
        }
        if let Some(Value::Array(alts)) = map.get_mut("anyOf") {
            alts.retain(|a| a.get("type").is_none_or(|t| t != "null"));
            if alts.len() == 1 {
                let only = alts.remove(0);
                map.remove("anyOf");
                if let Value::Object(inner) = only {
                    for (k, val) in inner {
                        map.entry(k).or_insert(val);
                    }
                }
            }
        }
        for val in map.values_mut() {
            strip_null(val);
        }
    } else if let Value::Array(items) = v {
        for val in items {
            strip_null(val);
        }
    }
}

/// The schema as pretty JSON text with a trailing newline, as `heapgen schema` prints it.
pub fn schema_json() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    s.push('\n');
    s
}

/// Every key path the schema describes (`region.reserve.alloc-ranges`), sorted.
pub fn key_paths() -> Vec<String> {
    fn walk(root: &serde_json::Value, v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        let resolved = match v.get("$ref").and_then(|r| r.as_str()) {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap_or_default();
                root.get("definitions")
                    .and_then(|d| d.get(name))
                    .unwrap_or(v)
            }
            None => v,
        };
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(alts) = resolved.get(key).and_then(|a| a.as_array()) {
                for a in alts {
                    walk(root, a, prefix, out);
                }
            }
        }
        if let Some(items) = resolved.get("items") {
            if items.is_object() {
                walk(root, items, prefix, out);
            }
        }
        if let Some(props) = resolved.get("properties").and_then(|p| p.as_object()) {
            for (k, p) in props {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push(path.clone());
                walk(root, p, &path, out);
            }
        }
    }
    let root = schema();
    let mut out = Vec::new();
    walk(&root, &root, "", &mut out);
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;

    fn keys_under(prefix: &str) -> Vec<String> {
        let mut v: Vec<String> = key_paths()
            .into_iter()
            .filter_map(|p| {
                let rest = if prefix.is_empty() {
                    Some(p.as_str())
                } else {
                    p.strip_prefix(&format!("{prefix}."))
                };
                rest.filter(|r| !r.contains('.')).map(str::to_string)
            })
            .collect();
        v.sort();
        v
    }

    fn sorted(keys: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn schema_is_draft_07() {
        assert_eq!(
            schema()["$schema"],
            "http://json-schema.org/draft-07/schema#"
        );
    }

    #[test]
    fn schema_keys_are_the_keys_the_parser_accepts() {
        assert_eq!(keys_under(""), sorted(model::ROOT_KEYS));
        assert_eq!(keys_under("board"), sorted(model::BOARD_KEYS));
        assert_eq!(keys_under("defaults"), sorted(model::DEFAULTS_KEYS));
        assert_eq!(keys_under("region"), sorted(model::REGION_KEYS));
        assert_eq!(keys_under("region.guard"), sorted(model::GUARD_KEYS));
        assert_eq!(keys_under("region.access"), sorted(model::ACCESS_KEYS));
        assert_eq!(keys_under("region.reserve"), sorted(model::RESERVE_KEYS));
        assert_eq!(
            keys_under("region.alignment"),
            sorted(model::ALIGNMENT_KEYS)
        );
    }
}
