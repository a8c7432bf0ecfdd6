//! Importing a board file from an existing device tree (`heapgen import`).
//!
//! A device-tree source is preprocessed the way the kernel's build does it (`cpp -nostdinc
//! -undef -x assembler-with-cpp -D__DTS__` with the `--include` directories) and compiled with
//! `dtc`; a blob (`.dtb`) is read as it is. The flattened tree is checked for shape (header,
//! bounds, nesting) and then read with the `flat_device_tree` crate.
//!
//! Every reusable `shared-dma-pool` child of `/reserved-memory` becomes a `[[region]]` whose
//! `reserve` reproduces the node: the same name, placement, size, alignment, allocation ranges
//! and `linux,cma-default`. Nodes that are not CMA areas (`no-map`, not `reusable`, another
//! `compatible`, disabled) are left out with the reason. Vendor heap bindings that allocate from
//! an imported area (Samsung's `samsung,dma-heap-*` nodes, the children of Qualcomm's
//! `qcom,dma-heaps`) give the region its heap name, alignment and uncached twin; what has no
//! heapgen equivalent becomes a comment in the board file, and a secure heap a `TODO` for the
//! protection hook the integrator has to write.

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ir::Arch;
use crate::size::{format_addr, format_size};
use crate::validate::{is_unprintable, CMDLINE_CMA_AREA, MAX_BOARD_NAME, RESERVED_HEAP_NAMES};

/// The largest device-tree blob `import` reads, in bytes: 2 MiB, the arm64 kernel's
/// `MAX_FDT_SIZE`. A kernel board's blob takes well under 300 KiB.
pub const MAX_DTB: u64 = 2 << 20;

/// The deepest node nesting `import` accepts. Real trees nest a handful of levels; the parser
/// recurses per level, so a hostile blob must not be able to nest deeper.
pub const MAX_DEPTH: usize = 64;

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// The longest region name a board file accepts (`region-name`).
const MAX_REGION_NAME: usize = crate::validate::MAX_REGION_NAME;

/// Options of [`import`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The board's architecture; `None` decides it from the CPUs' `compatible` (arm64 unless
    /// they are Intel's).
    pub arch: Option<Arch>,
    /// Directories for `#include <...>` and `/include/` (`--include`), in order.
    pub includes: Vec<PathBuf>,
}

/// Why a device tree could not be imported. Nothing is written in any of these cases.
#[derive(Debug)]
pub enum Error {
    /// The input file cannot be read.
    Read(PathBuf, std::io::Error),
    /// A tool (`cpp`, `dtc`) could not be run.
    Tool(&'static str, std::io::Error),
    /// The preprocessor or `dtc` refused the source; its messages.
    Refused {
        /// `cpp` or `dtc`.
        tool: &'static str,
        /// The input file.
        input: PathBuf,
        /// What the tool printed.
        stderr: String,
    },
    /// The blob is not a usable flattened device tree.
    NotDtb(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read(p, e) => write!(f, "cannot read `{}`: {e}", p.display()),
            Error::Tool(tool, e) => write!(
                f,
                "cannot run `{tool}`: {e} (import needs `cpp` and `dtc` for a .dts: Debian's `cpp` and `device-tree-compiler`)"
            ),
            Error::Refused {
                tool,
                input,
                stderr,
            } => write!(
                f,
                "`{tool}` refused `{}`:\n{}",
                input.display(),
                stderr.trim_end()
            ),
            Error::NotDtb(why) => write!(f, "not a flattened device tree: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// A `/reserved-memory` child left out of the board file, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftOut {
    /// The node's path.
    pub node: String,
    /// Why heapgen cannot allocate from it.
    pub reason: String,
}

/// What [`import`] made of a device tree.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The board file, with comments.
    pub text: String,
    /// The board name chosen.
    pub board: String,
    /// The regions, in device-tree order.
    pub regions: Vec<String>,
    /// The `/reserved-memory` children left out.
    pub left_out: Vec<LeftOut>,
    /// How many `/reserved-memory` children are reusable `shared-dma-pool` nodes (imported or
    /// not: a disabled one is counted too).
    pub reusable_pools: usize,
}

/// Reads a device tree as a blob: a `.dtb` as it is, anything else as a source, preprocessed
/// and compiled.
pub fn read_device_tree(path: &Path, includes: &[PathBuf]) -> Result<Vec<u8>, Error> {
    let bytes = read_capped(path)?;
    if bytes.starts_with(&FDT_MAGIC.to_be_bytes()) || path.extension().is_some_and(|e| e == "dtb") {
        return Ok(bytes);
    }
    compile_source(path, includes)
}

fn read_capped(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let failed = |e| Error::Read(path.to_path_buf(), e);
    let file = std::fs::File::open(path).map_err(failed)?;
    let mut bytes = Vec::new();
    file.take(MAX_DTB + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > MAX_DTB {
        return Err(Error::NotDtb(format!(
            "`{}` has more than {MAX_DTB} bytes (2 MiB, the kernel's largest device tree)",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Preprocesses and compiles a device-tree source the way the kernel's `cmd_dtc` does.
fn compile_source(path: &Path, includes: &[PathBuf]) -> Result<Vec<u8>, Error> {
    let work = tempfile::tempdir().map_err(|e| Error::Tool("cpp", e))?;
    let pre = work.path().join("preprocessed.dts");
    let dtb = work.path().join("tree.dtb");
    let mut cpp = Command::new("cpp");
    cpp.args([
        "-nostdinc",
        "-undef",
        "-D__DTS__",
        "-x",
        "assembler-with-cpp",
    ]);
    for dir in includes {
        cpp.arg("-I").arg(dir);
    }
    cpp.arg("-o").arg(&pre).arg(path);
    run_tool("cpp", &mut cpp, path)?;
    let mut dtc = Command::new("dtc");
    dtc.args(["-q", "-I", "dts", "-O", "dtb", "-b", "0"]);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        dtc.arg("-i").arg(dir);
    }
    for dir in includes {
        dtc.arg("-i").arg(dir);
    }
    dtc.arg("-o").arg(&dtb).arg(&pre);
    run_tool("dtc", &mut dtc, path)?;
    read_capped(&dtb)
}

fn run_tool(tool: &'static str, cmd: &mut Command, input: &Path) -> Result<(), Error> {
    let out = cmd.output().map_err(|e| Error::Tool(tool, e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Refused {
            tool,
            input: input.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Reads the device tree at `path` and imports it; `stem` for the board name is the file's.
pub fn import_path(path: &Path, options: &Options) -> Result<Imported, Error> {
    let blob = read_device_tree(path, &options.includes)?;
    let source = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    import(&blob, &source, options)
}

/// Imports a device-tree blob. `source` is the input's file name: it is named in the board
/// file's header and its stem is the board name of last resort.
pub fn import(blob: &[u8], source: &str, options: &Options) -> Result<Imported, Error> {
    check_shape(blob)?;
    let tree = Tree::read(blob)?;
    Ok(Importer::new(&tree, source, options).run())
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Checks the blob's header and walks its structure block once: every offset inside the blob,
/// every token known, nesting at most [`MAX_DEPTH`], names and properties in bounds. The parser
/// then only sees well-formed blobs.
fn check_shape(blob: &[u8]) -> Result<(), Error> {
    let bad = |s: String| Err(Error::NotDtb(s));
    if blob.len() < 40 {
        return bad(format!(
            "{} bytes, shorter than a flattened device tree header (40 bytes)",
            blob.len()
        ));
    }
    let h = |i: usize| be32(blob, i * 4).unwrap_or(0) as usize;
    if h(0) as u32 != FDT_MAGIC {
        return bad("it does not start with the magic number 0xd00dfeed".into());
    }
    let (total, off_struct, off_strings, version) = (h(1), h(2), h(3), h(5));
    let (size_strings, size_struct) = (h(8), h(9));
    if total > blob.len() {
        return bad(format!(
            "the header says {total} bytes, the file has {}",
            blob.len()
        ));
    }
    if version < 17 {
        return bad(format!(
            "format version {version}; import reads version 17 (dtc's)"
        ));
    }
    let in_blob = |off: usize, len: usize| off.checked_add(len).is_some_and(|end| end <= total);
    if !in_blob(off_struct, size_struct) || !in_blob(off_strings, size_strings) {
        return bad("the header's blocks lie outside the blob".into());
    }
    let block = &blob[off_struct..off_struct + size_struct];
    let mut at = 0;
    let mut depth = 0usize;
    let align = |n: usize| n.div_ceil(4) * 4;
    loop {
        let Some(token) = be32(block, at) else {
            return bad("the structure block ends without FDT_END".into());
        };
        at += 4;
        match token {
            FDT_BEGIN_NODE => {
                let Some(len) = block.get(at..).and_then(|r| r.iter().position(|&b| b == 0)) else {
                    return bad("a node name is not terminated".into());
                };
                at += align(len + 1);
                depth += 1;
                if depth > MAX_DEPTH {
                    return bad(format!("nodes nest deeper than {MAX_DEPTH} levels"));
                }
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return bad("a node ends that never began".into());
                }
                depth -= 1;
            }
            FDT_PROP => {
                let (Some(len), Some(name)) = (be32(block, at), be32(block, at + 4)) else {
                    return bad("a property header is cut off".into());
                };
                if name as usize >= size_strings {
                    return bad("a property name lies outside the strings block".into());
                }
                at = at + 8 + align(len as usize);
                if at > block.len() {
                    return bad("a property value runs past the structure block".into());
                }
            }
            FDT_NOP => {}
            FDT_END if depth == 0 => return Ok(()),
            FDT_END => return bad("the tree ends inside a node".into()),
            other => return bad(format!("unknown structure token {other:#x}")),
        }
    }
}

/// One node of the tree, owned.
#[derive(Debug)]
struct Node {
    path: String,
    name: String,
    props: Vec<(String, Vec<u8>)>,
    children: Vec<usize>,
}

impl Node {
    fn prop(&self, name: &str) -> Option<&[u8]> {
        self.props
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn has(&self, name: &str) -> bool {
        self.prop(name).is_some()
    }

    fn strings(&self, name: &str) -> Vec<String> {
        self.prop(name).map_or_else(Vec::new, |v| {
            v.split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
    }

    fn string(&self, name: &str) -> Option<String> {
        self.strings(name).into_iter().next()
    }

    fn u32(&self, name: &str) -> Option<u32> {
        self.prop(name)
            .filter(|v| v.len() == 4)
            .and_then(|v| be32(v, 0))
    }

    fn compatible(&self, c: &str) -> bool {
        self.strings("compatible").iter().any(|s| s == c)
    }

    /// `status` absent, `"okay"` or `"ok"`: what the kernel's `of_device_is_available` takes.
    fn available(&self) -> bool {
        self.string("status")
            .is_none_or(|s| s == "okay" || s == "ok")
    }
}

/// The whole tree, in depth-first order (index 0 is the root).
struct Tree {
    nodes: Vec<Node>,
    phandles: BTreeMap<u32, usize>,
}

impl Tree {
    fn read(blob: &[u8]) -> Result<Tree, Error> {
        let fdt = flat_device_tree::Fdt::new(blob)
            .map_err(|e| Error::NotDtb(format!("the parser refused it: {e}")))?;
        let root = fdt
            .find_node("/")
            .ok_or_else(|| Error::NotDtb("it has no root node".into()))?;
        let mut tree = Tree {
            nodes: Vec::new(),
            phandles: BTreeMap::new(),
        };
        tree.add(root, String::new());
        Ok(tree)
    }

    fn add(&mut self, node: flat_device_tree::node::FdtNode<'_, '_>, path: String) -> usize {
        let index = self.nodes.len();
        let props: Vec<(String, Vec<u8>)> = node
            .properties()
            .map(|p| (p.name.to_string(), p.value.to_vec()))
            .collect();
        self.nodes.push(Node {
            path: if path.is_empty() {
                "/".into()
            } else {
                path.clone()
            },
            name: node.name.to_string(),
            props,
            children: Vec::new(),
        });
        for key in ["phandle", "linux,phandle"] {
            if let Some(p) = self.nodes[index].u32(key) {
                self.phandles.entry(p).or_insert(index);
            }
        }
        for child in node.children() {
            let child_path = format!("{path}/{}", child.name);
            let c = self.add(child, child_path);
            self.nodes[index].children.push(c);
        }
        index
    }

    fn root(&self) -> &Node {
        &self.nodes[0]
    }

    fn child(&self, parent: &Node, name: &str) -> Option<&Node> {
        parent
            .children
            .iter()
            .map(|&i| &self.nodes[i])
            .find(|n| n.name == name)
    }
}

/// Reads `cells` big-endian 32-bit cells (1 or 2) at `*at` of `v`, advancing.
fn read_cells(v: &[u8], at: &mut usize, cells: u32) -> Option<u64> {
    let mut value = 0u64;
    for _ in 0..cells {
        value = (value << 32) | u64::from(be32(v, *at)?);
        *at += 4;
    }
    Some(value)
}

/// A property that is exactly a list of `(address, size)` pairs.
fn pairs(v: &[u8], address_cells: u32, size_cells: u32) -> Option<Vec<(u64, u64)>> {
    let entry = 4 * (address_cells + size_cells) as usize;
    if entry == 0 || v.is_empty() || v.len() % entry != 0 {
        return None;
    }
    let mut at = 0;
    let mut out = Vec::new();
    while at < v.len() {
        let a = read_cells(v, &mut at, address_cells)?;
        let s = read_cells(v, &mut at, size_cells)?;
        out.push((a, s));
    }
    Some(out)
}

/// A property that is exactly one number of `cells` cells.
fn number(v: &[u8], cells: u32) -> Option<u64> {
    if v.len() != 4 * cells as usize {
        return None;
    }
    read_cells(v, &mut 0, cells)
}

/// Where a reusable pool is.
#[derive(Clone, Debug)]
enum Placement {
    Fixed {
        base: u64,
        size: u64,
    },
    Dynamic {
        size: u64,
        alignment: Option<u64>,
        ranges: Vec<(u64, u64)>,
    },
}

/// Properties of a reusable `shared-dma-pool` node that `reserve` reproduces.
const POOL_PROPS: &[&str] = &[
    "compatible",
    "reusable",
    "reg",
    "size",
    "alignment",
    "alloc-ranges",
    "linux,cma-default",
    "phandle",
    "linux,phandle",
    "status",
];

/// A vendor heap binding: a node that makes a heap over a `memory-region`.
#[derive(Clone, Debug)]
struct Binding {
    path: String,
    /// `samsung,dma-heap-cma` or `qcom,dma-heaps`.
    kind: String,
    heap: Option<String>,
    uncached: bool,
    alignment: Option<Alignment>,
    /// Why the heap is secure (the property that says so), if it is.
    secure: Vec<String>,
    /// The area it allocates from, if it names one.
    region: Option<usize>,
    /// Notes: properties without an equivalent, conversions.
    notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Alignment {
    Fixed(u64),
    SizeOrder(u64),
}

/// Properties every binding may have and that need no comment.
const BINDING_PLUMBING: &[&str] = &["compatible", "memory-region", "phandle", "status"];

/// The properties of a `samsung,dma-heap-*` node import reads.
const SAMSUNG_PROPS: &[&str] = &[
    "dma-heap,name",
    "dma-heap,alignment",
    "dma-heap,uncached",
    "dma-heap,secure",
    "dma-heap,dynamic-secure",
    "dma-heap,untouchable",
    "dma-heap,protection_id",
];

/// The properties of a `qcom,dma-heaps` child import reads.
const QCOM_PROPS: &[&str] = &[
    "qcom,dma-heap-name",
    "qcom,dma-heap-type",
    "qcom,uncached-heap",
    "qcom,max-align",
    "qcom,token",
];

/// The page size of the kernel the vendor drivers' orders count in: what heapgen assumes.
const PAGE: u64 = 4096;

/// Qualcomm's `qcom,dma-heap-type` values (`qcom_dma_heap_dt_constants.h`).
fn qcom_heap_type(t: u32) -> &'static str {
    match t {
        0 => "HEAP_TYPE_SECURE_CARVEOUT",
        1 => "HEAP_TYPE_CARVEOUT (HEAP_TYPE_CMA in the oldest trees)",
        2 => "HEAP_TYPE_CMA",
        3 => "HEAP_TYPE_TUI_CARVEOUT",
        _ => "an unknown type",
    }
}

struct Importer<'t> {
    tree: &'t Tree,
    source: String,
    options: &'t Options,
}

/// A region being built.
struct Region {
    node: usize,
    name: String,
    cma: String,
    placement: Placement,
    default: bool,
    heap: String,
    cached: bool,
    uncached: bool,
    alignment: Option<Alignment>,
    hooks_todo: bool,
    notes: Vec<String>,
}

impl<'t> Importer<'t> {
    fn new(tree: &'t Tree, source: &str, options: &'t Options) -> Self {
        Self {
            tree,
            source: source.to_string(),
            options,
        }
    }

    fn node(&self, i: usize) -> &'t Node {
        &self.tree.nodes[i]
    }

    /// The pool a `memory-region` property points at (its first phandle).
    fn memory_region(&self, n: &Node) -> Option<usize> {
        let v = n.prop("memory-region")?;
        self.tree.phandles.get(&be32(v, 0)?).copied()
    }

    fn bindings(&self) -> Vec<Binding> {
        let mut out = Vec::new();
        for n in &self.tree.nodes {
            if let Some(kind) = n
                .strings("compatible")
                .into_iter()
                .find(|c| c.starts_with("samsung,dma-heap-"))
            {
                out.push(self.samsung(n, kind));
            }
            if n.compatible("qcom,dma-heaps") {
                for &c in &n.children {
                    out.push(self.qcom(self.node(c)));
                }
            }
        }
        out
    }

    fn unmapped(n: &Node, known: &[&str], notes: &mut Vec<String>) {
        for (name, _) in &n.props {
            if !known.contains(&name.as_str()) && !BINDING_PLUMBING.contains(&name.as_str()) {
                notes.push(format!(
                    "{}: property `{}` has no heapgen equivalent",
                    n.path,
                    inert(name)
                ));
            }
        }
    }

    /// A binding of `kind` over `n`'s `memory-region`, named by `name` and uncached when it has
    /// `uncached`.
    fn binding(&self, n: &Node, kind: String, name: &str, uncached: &str) -> Binding {
        Binding {
            path: n.path.clone(),
            kind,
            heap: n.string(name),
            uncached: n.has(uncached),
            alignment: None,
            secure: Vec::new(),
            region: self.memory_region(n),
            notes: Vec::new(),
        }
    }

    /// `samsung,dma-heap-*` (Exynos, Google Tensor): `dma-heap,name`, `dma-heap,alignment` (in
    /// bytes, rounded up to a power-of-two number of pages by the driver), `dma-heap,uncached`,
    /// and the secure flags.
    fn samsung(&self, n: &Node, kind: String) -> Binding {
        let mut b = self.binding(n, kind, "dma-heap,name", "dma-heap,uncached");
        if let Some(a) = n.u32("dma-heap,alignment") {
            let bytes = u64::from(a).max(PAGE).next_power_of_two();
            if bytes != u64::from(a) {
                b.notes.push(format!(
                    "{}: `dma-heap,alignment = <{a:#x}>` is rounded up to {} by the Samsung driver, and here",
                    n.path,
                    format_size(bytes)
                ));
            }
            b.alignment = Some(Alignment::Fixed(bytes));
        }
        for key in [
            "dma-heap,secure",
            "dma-heap,dynamic-secure",
            "dma-heap,untouchable",
        ] {
            if n.has(key) {
                b.secure.push(format!("`{key}`"));
            }
        }
        if let Some(id) = n.u32("dma-heap,protection_id") {
            b.secure.push(format!("`dma-heap,protection_id = <{id}>`"));
        }
        Self::unmapped(n, SAMSUNG_PROPS, &mut b.notes);
        b
    }

    /// A child of `qcom,dma-heaps`: `qcom,dma-heap-name`, `qcom,dma-heap-type`,
    /// `qcom,uncached-heap`, `qcom,max-align` (an order of pages that caps upstream's size-order
    /// alignment, `CONFIG_CMA_ALIGNMENT` otherwise), `qcom,token` (a secure VM's token).
    fn qcom(&self, n: &Node) -> Binding {
        let mut b = self.binding(
            n,
            "qcom,dma-heaps".into(),
            "qcom,dma-heap-name",
            "qcom,uncached-heap",
        );
        if let Some(order) = n.u32("qcom,max-align") {
            match PAGE.checked_shl(order).filter(|_| order < 52) {
                Some(max) => b.alignment = Some(Alignment::SizeOrder(max)),
                None => b.notes.push(format!(
                    "{}: `qcom,max-align = <{order}>` is not an order of pages heapgen can use",
                    n.path
                )),
            }
        }
        if let Some(t) = n.u32("qcom,dma-heap-type") {
            if t == 0 || t == 3 {
                b.secure.push(format!(
                    "`qcom,dma-heap-type = <{t}>` ({})",
                    qcom_heap_type(t)
                ));
            } else if t != 2 {
                b.notes.push(format!(
                    "{}: `qcom,dma-heap-type = <{t}>` ({}): heapgen heaps allocate from the CMA area",
                    n.path,
                    qcom_heap_type(t)
                ));
            }
        }
        if let Some(token) = n.u32("qcom,token") {
            b.secure.push(format!("`qcom,token = <{token:#x}>`"));
        }
        Self::unmapped(n, QCOM_PROPS, &mut b.notes);
        b
    }

    /// The `/reserved-memory` children: the regions and the nodes left out.
    fn pools(&self, left_out: &mut Vec<LeftOut>, reusable: &mut usize) -> Vec<(usize, Placement)> {
        let tree = self.tree;
        let Some(rm) = tree.child(tree.root(), "reserved-memory") else {
            return Vec::new();
        };
        let root_cells = (
            tree.root().u32("#address-cells").unwrap_or(1),
            tree.root().u32("#size-cells").unwrap_or(1),
        );
        let cells = (
            rm.u32("#address-cells").unwrap_or(1),
            rm.u32("#size-cells").unwrap_or(1),
        );
        // The kernel's __reserved_mem_check_root(): otherwise it ignores every child.
        let root_ok = cells == root_cells && rm.has("ranges");
        let cells_ok = (1..=2).contains(&cells.0) && (1..=2).contains(&cells.1);
        let mut out = Vec::new();
        for &i in &rm.children {
            let n = self.node(i);
            let shared = n.compatible("shared-dma-pool");
            if shared && n.has("reusable") {
                *reusable += 1;
            }
            let mut leave = |reason: String| {
                left_out.push(LeftOut {
                    node: n.path.clone(),
                    reason,
                })
            };
            if !root_ok {
                leave(format!(
                    "the kernel ignores /reserved-memory: its #address-cells/#size-cells <{}>/<{}> differ from the root's <{}>/<{}> or it has no `ranges`",
                    cells.0, cells.1, root_cells.0, root_cells.1
                ));
                continue;
            }
            if !n.available() {
                leave(format!(
                    "status = \"{}\": the kernel skips it",
                    inert(&n.string("status").unwrap_or_default())
                ));
                continue;
            }
            if !shared {
                let c = n.strings("compatible");
                leave(if c.is_empty() {
                    "no `compatible`: a carveout for a driver, not a CMA area".to_string()
                } else {
                    format!(
                        "compatible = \"{}\": not a `shared-dma-pool`, so not a CMA area",
                        inert(&c.join("\", \""))
                    )
                });
                continue;
            }
            if n.has("no-map") {
                leave("`no-map`: the memory is taken out of the kernel's map, so it cannot be a CMA area".into());
                continue;
            }
            if !n.has("reusable") {
                leave("not `reusable`: a coherent DMA pool (dma_declare_coherent_memory), not a CMA area".into());
                continue;
            }
            if !cells_ok {
                leave(format!(
                    "#address-cells/#size-cells <{}>/<{}>: heapgen reads one or two cells",
                    cells.0, cells.1
                ));
                continue;
            }
            let placement = if let Some(reg) = n.prop("reg") {
                match pairs(reg, cells.0, cells.1).as_deref() {
                    Some([(base, size)]) => Placement::Fixed {
                        base: *base,
                        size: *size,
                    },
                    Some(more) => {
                        leave(format!(
                            "`reg` has {} ranges: a CMA area is one range",
                            more.len()
                        ));
                        continue;
                    }
                    None => {
                        leave("`reg` is not a list of (address, size) cells".into());
                        continue;
                    }
                }
            } else if let Some(size) = n.prop("size") {
                let Some(size) = number(size, cells.1) else {
                    leave(format!("`size` is not {} cell(s)", cells.1));
                    continue;
                };
                let alignment = match n.prop("alignment") {
                    None => None,
                    Some(v) => match number(v, cells.1) {
                        Some(a) => Some(a),
                        None => {
                            leave(format!("`alignment` is not {} cell(s)", cells.1));
                            continue;
                        }
                    },
                };
                let ranges = match n.prop("alloc-ranges") {
                    None => Vec::new(),
                    Some(v) => match pairs(v, cells.0, cells.1) {
                        Some(r) => r,
                        None => {
                            leave("`alloc-ranges` is not a list of (address, size) cells".into());
                            continue;
                        }
                    },
                };
                Placement::Dynamic {
                    size,
                    alignment,
                    ranges,
                }
            } else {
                leave("neither `reg` nor `size`: the kernel cannot place it".into());
                continue;
            };
            out.push((i, placement));
        }
        out
    }

    fn run(&self) -> Imported {
        let mut left_out = Vec::new();
        let mut reusable = 0;
        let pools = self.pools(&mut left_out, &mut reusable);
        let bindings = self.bindings();
        let mut board_notes = Vec::new();
        let mut used_names = Vec::new();
        let mut regions: Vec<Region> = Vec::new();
        for (node, placement) in pools {
            let n = self.node(node);
            let stem = n.name.split('@').next().unwrap_or_default().to_string();
            let cma = match &placement {
                Placement::Fixed { base, .. } => format!("{stem}@{base:x}"),
                Placement::Dynamic { .. } => stem.clone(),
            };
            let name = unique(
                &sanitise(&stem, MAX_REGION_NAME, "region"),
                &used_names,
                MAX_REGION_NAME,
            );
            used_names.push(name.clone());
            let mut notes = Vec::new();
            if cma != n.name {
                notes.push(format!(
                    "{}: heapgen names the node `{cma}` after its `reg`; the kernel names the CMA area after the node, so anything that looks the area up by name must use the new one",
                    n.path
                ));
            }
            for (prop, _) in &n.props {
                if !POOL_PROPS.contains(&prop.as_str()) {
                    notes.push(format!(
                        "{}: property `{}` has no heapgen equivalent",
                        n.path,
                        inert(prop)
                    ));
                }
            }
            regions.push(Region {
                node,
                name: name.clone(),
                cma,
                default: n.has("linux,cma-default"),
                placement,
                heap: String::new(),
                cached: true,
                uncached: false,
                alignment: None,
                hooks_todo: false,
                notes,
            });
        }
        for b in &bindings {
            let target = b
                .region
                .and_then(|r| regions.iter_mut().find(|reg| reg.node == r));
            let what = format!(
                "heap `{}` ({} at {})",
                inert(b.heap.as_deref().unwrap_or("<no name>")),
                b.kind,
                b.path
            );
            match (target, b.region) {
                (Some(region), _) => self.bind(region, b, &what),
                (None, Some(r)) => board_notes.push(format!(
                    "{what} allocates from {}, which is left out",
                    self.node(r).path
                )),
                (None, None) => board_notes.push(format!(
                    "{what} has no `memory-region`: not a heap over reserved memory, nothing to import"
                )),
            }
        }
        self.name_heaps(&mut regions);
        let cmas: Vec<String> = regions.iter().map(|r| r.cma.clone()).collect();
        for r in &mut regions {
            if cmas.contains(&r.heap) || RESERVED_HEAP_NAMES.contains(&r.heap.as_str()) {
                r.notes.push(format!(
                    "TODO: the vendor's heap name `{}` is a name the kernel already uses for a heap (upstream's CMA heap names one after every CMA area, Linux 6.19 and later), so `heapgen check` refuses it (heap-name-cma-clash, heap-name-reserved). Decide: rename the heap (and its users), or rename the node so that the area gets another name",
                    inert(&r.heap)
                ));
            }
        }
        let board = self.board_name();
        let text = self.render(&board, &regions, &left_out, &board_notes);
        Imported {
            text,
            board,
            regions: regions.iter().map(|r| r.name.clone()).collect(),
            left_out,
            reusable_pools: reusable,
        }
    }

    /// Applies a vendor binding to the region it allocates from.
    fn bind(&self, region: &mut Region, b: &Binding, what: &str) {
        region.notes.extend(b.notes.iter().cloned());
        let Some(name) = &b.heap else {
            region
                .notes
                .push(format!("{what} has no heap name property; ignored"));
            return;
        };
        if b.uncached {
            let base = name.strip_suffix("-uncached").unwrap_or(name);
            if region.heap.is_empty() {
                region.heap = base.to_string();
                region.cached = false;
            }
            if format!("{}-uncached", region.heap) != *name {
                region.notes.push(format!(
                    "{what} becomes `{}-uncached`: heapgen names the write-combined twin after the heap",
                    region.heap
                ));
            }
            region.uncached = true;
        } else if region.heap.is_empty() || !region.cached {
            if !region.heap.is_empty() && region.heap != *name {
                region.notes.push(format!(
                    "{what} names the heap; the uncached twin becomes `{}-uncached`",
                    inert(name)
                ));
            }
            region.heap = name.clone();
            region.cached = true;
        } else if region.heap != *name {
            region.notes.push(format!(
                "{what} is a second heap over the same area: heapgen makes one heap per region (and its -uncached twin), so it is left out"
            ));
            return;
        }
        if let Some(a) = &b.alignment {
            match &region.alignment {
                Some(old) if old != a => region.notes.push(format!(
                    "{what} asks for another alignment than the region's other heap; the first is kept"
                )),
                _ => region.alignment = Some(a.clone()),
            }
        }
        if !b.secure.is_empty() {
            region.hooks_todo = true;
            region.notes.push(format!(
                "TODO: {what} is secure ({}). Its buffers must be protected before a device sees them, and heapgen has no property for that: write a hook file (board-file.rst, `hooks`) whose `RegionHooks` sets `const PROTECTED: bool = true` and protects each buffer in `after_alloc` and unprotects it in `before_release` with the call the vendor driver makes (an SMC, a hypervisor or a secure VM call), then set `hooks = \"hooks/{}.rs\"` here. Decide: which call, which protection id or token, and whether CPU mappings must be refused (`may_mmap`, `may_vmap`).",
                b.secure.join(", "),
                region.name.replace('-', "_")
            ));
        }
    }

    /// Gives every region without a vendor heap name one after itself, away from the names the
    /// kernel uses and from every CMA area's name.
    fn name_heaps(&self, regions: &mut [Region]) {
        let cmas: Vec<String> = regions.iter().map(|r| r.cma.clone()).collect();
        let mut taken: Vec<String> = regions
            .iter()
            .filter(|r| !r.heap.is_empty())
            .map(|r| r.heap.clone())
            .collect();
        for r in regions.iter_mut().filter(|r| r.heap.is_empty()) {
            let clashes = |h: &str, taken: &[String]| {
                RESERVED_HEAP_NAMES.contains(&h)
                    || h == CMDLINE_CMA_AREA
                    || cmas.iter().any(|c| c == h)
                    || taken.iter().any(|t| t == h)
            };
            let mut heap = r.name.clone();
            if clashes(&heap, &taken) {
                heap = format!("{}-heap", r.name);
            }
            let mut k = 2;
            while clashes(&heap, &taken) {
                heap = format!("{}-heap-{k}", r.name);
                k += 1;
            }
            r.notes.push(format!(
                "TODO: no vendor heap binding names this area's heap; `{heap}` is heapgen's guess. Name it after the memory, as userspace will open /dev/dma_heap/<heap>"
            ));
            taken.push(heap.clone());
            r.heap = heap;
        }
    }

    fn board_name(&self) -> String {
        let root = self.tree.root();
        let candidate = root
            .strings("compatible")
            .into_iter()
            .next()
            .unwrap_or_else(|| {
                Path::new(&self.source)
                    .file_stem()
                    .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
            });
        sanitise(&candidate, MAX_BOARD_NAME, "board")
    }

    fn arch(&self) -> (Arch, &'static str) {
        if let Some(a) = self.options.arch {
            return (a, "--arch");
        }
        let tree = self.tree;
        let cpus = tree.child(tree.root(), "cpus");
        let intel = cpus.is_some_and(|c| {
            c.children.iter().any(|&i| {
                tree.nodes[i]
                    .strings("compatible")
                    .iter()
                    .any(|s| s.starts_with("intel,"))
            })
        });
        if intel {
            (Arch::X86_64, "the CPUs' compatible")
        } else {
            (Arch::Arm64, "the default for a device tree")
        }
    }

    fn render(
        &self,
        board: &str,
        regions: &[Region],
        left_out: &[LeftOut],
        board_notes: &[String],
    ) -> String {
        let mut t = String::new();
        let root = self.tree.root();
        comment(
            &mut t,
            &format!(
                "Imported by `heapgen import` (heapgen {}) from {}.",
                crate::VERSION,
                inert(&self.source)
            ),
        );
        comment(
            &mut t,
            "Review every comment, decide each TODO, then run `heapgen check` and `heapgen generate`.",
        );
        t.push_str("schema-version = 1\n\n[board]\n");
        let _ = writeln!(t, "name = {}", quote(board));
        let (arch, why) = self.arch();
        let _ = writeln!(t, "arch = {}", quote(arch.as_str()));
        comment(&mut t, &format!("arch: {why}."));
        if let Some(model) = root.string("model") {
            let description: String = model
                .chars()
                .filter(|c| !is_unprintable(*c))
                .take(crate::validate::MAX_DESCRIPTION)
                .collect();
            if !description.trim().is_empty() {
                let _ = writeln!(t, "description = {}", quote(description.trim()));
            }
        }
        comment(
            &mut t,
            "TODO: page-size is 4K unless set: set it for a 16K or 64K kernel (`page-size = \"16K\"`).",
        );
        comment(
            &mut t,
            "TODO: maintainer: who maintains this board file, \"Name <email>\" (the Yocto layer needs one).",
        );
        t.push('\n');
        comment(
            &mut t,
            "TODO: who may allocate: the heaps' device nodes are 0600 root:root unless [defaults] or a region sets `access` (e.g. `access = { mode = \"0660\", group = \"video\" }`).",
        );
        if !left_out.is_empty() {
            t.push('\n');
            comment(&mut t, "Left out of /reserved-memory:");
            for l in left_out {
                comment(&mut t, &format!("- {}: {}", inert(&l.node), l.reason));
            }
        }
        if !board_notes.is_empty() {
            t.push('\n');
            for n in board_notes {
                comment(&mut t, n);
            }
        }
        if regions.is_empty() {
            t.push('\n');
            comment(
                &mut t,
                "TODO: the device tree has no reusable shared-dma-pool node: add a [[region]] per CMA area (board-file.rst).",
            );
        }
        for r in regions {
            t.push('\n');
            comment(&mut t, &inert(&self.node(r.node).path));
            t.push_str("[[region]]\n");
            let _ = writeln!(t, "name = {}", quote(&r.name));
            let _ = writeln!(t, "cma = {}", quote(&r.cma));
            let mut reserve = Vec::new();
            match &r.placement {
                Placement::Fixed { base, size } => {
                    reserve.push(format!("base = {}", quote(&format_addr(*base))));
                    reserve.push(format!("size = {}", quote(&size_text(*size))));
                }
                Placement::Dynamic {
                    size,
                    alignment,
                    ranges,
                } => {
                    reserve.push(format!("size = {}", quote(&size_text(*size))));
                    if let Some(a) = alignment {
                        reserve.push(format!("alignment = {}", quote(&size_text(*a))));
                    }
                    if !ranges.is_empty() {
                        let list: Vec<String> = ranges
                            .iter()
                            .map(|(b, s)| {
                                format!("[{}, {}]", quote(&format_addr(*b)), quote(&size_text(*s)))
                            })
                            .collect();
                        reserve.push(format!("alloc-ranges = [{}]", list.join(", ")));
                    }
                }
            }
            if r.default {
                reserve.push("default = true".into());
            }
            let _ = writeln!(t, "reserve = {{ {} }}", reserve.join(", "));
            let _ = writeln!(t, "heap = {}", quote(&r.heap));
            match &r.alignment {
                Some(Alignment::Fixed(a)) => {
                    let _ = writeln!(t, "alignment = {}", quote(&format_size(*a)));
                }
                Some(Alignment::SizeOrder(max)) => {
                    let _ = writeln!(
                        t,
                        "alignment = {{ size-order = true, max = {} }}",
                        quote(&format_size(*max))
                    );
                }
                None => {}
            }
            match (r.cached, r.uncached) {
                (true, true) => t.push_str("variants = [\"cached\", \"uncached\"]\n"),
                (false, true) => t.push_str("variants = [\"uncached\"]\n"),
                _ => {}
            }
            for n in &r.notes {
                comment(&mut t, &inert(n));
            }
        }
        t
    }
}

/// A size as a board file writes it: with a unit when one divides it, else in hex.
fn size_text(bytes: u64) -> String {
    let s = format_size(bytes);
    if s.ends_with(char::is_alphabetic) {
        s
    } else {
        format_addr(bytes)
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml_edit::Value::from(s).to_string()
}

/// Text from the device tree made safe for a one-line comment and a terminal: characters that
/// would break the line or reorder it are escaped.
fn inert(s: &str) -> String {
    crate::diag::inert(s).replace('\n', "\\u{a}")
}

/// Appends `text` as `#` comment lines of at most about 100 columns.
fn comment(out: &mut String, text: &str) {
    const WIDTH: usize = 98;
    let mut line = String::from("#");
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if line.len() + 1 + word.len() > WIDTH && line.len() > 4 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#  ");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

/// `text` as a `[a-z][a-z0-9-]*` name of at most `max` characters not ending with `-`: lower
/// case, every run of other characters one `-`, prefixed with `prefix-` when it does not start
/// with a letter.
pub fn sanitise(text: &str, max: usize, prefix: &str) -> String {
    let mut s = String::new();
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            s.push(c);
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let mut s = s.trim_end_matches('-').to_string();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s = if s.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}-{s}")
        };
    }
    s.truncate(max);
    s.trim_end_matches('-').to_string()
}

/// `name`, or `name-2`, `name-3`, ... when it is taken, within `max` characters.
fn unique(name: &str, taken: &[String], max: usize) -> String {
    if !taken.iter().any(|t| t == name) {
        return name.to_string();
    }
    (2..)
        .map(|k| {
            let suffix = format!("-{k}");
            let mut stem = name.to_string();
            stem.truncate(max - suffix.len());
            format!("{}{suffix}", stem.trim_end_matches('-'))
        })
        .find(|n| !taken.iter().any(|t| t == n))
        .expect("some suffix is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised_to_the_board_name_charset() {
        assert_eq!(sanitise("google,panther", 48, "board"), "google-panther");
        assert_eq!(sanitise("QCOM SM8550 MTP!", 48, "board"), "qcom-sm8550-mtp");
        assert_eq!(sanitise("8550", 48, "board"), "board-8550");
        assert_eq!(sanitise(",,,", 48, "board"), "board");
        assert_eq!(sanitise("a-very-long-name", 7, "r"), "a-very");
        assert_eq!(
            unique("video", &["video".into(), "video-2".into()], 32),
            "video-3"
        );
    }

    #[test]
    fn shapes_that_are_not_a_tree_are_refused() {
        let refused = |b: &[u8]| match check_shape(b) {
            Err(Error::NotDtb(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(refused(b"not a device tree at all, just text........").contains("magic"));
        assert!(refused(&[0xd0, 0x0d]).contains("shorter"));
        // A header that claims more bytes than there are.
        let mut h = vec![0u8; 40];
        h[0..4].copy_from_slice(&FDT_MAGIC.to_be_bytes());
        h[4..8].copy_from_slice(&4096u32.to_be_bytes());
        assert!(refused(&h).contains("4096 bytes"));
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        // A structure block of MAX_DEPTH + 1 nested empty nodes.
        let mut block = Vec::new();
        for _ in 0..=MAX_DEPTH {
            block.extend_from_slice(&FDT_BEGIN_NODE.to_be_bytes());
            block.extend_from_slice(&[0, 0, 0, 0]);
        }
        let off = 40u32;
        let mut blob = vec![0u8; 40];
        let total = 40 + block.len() as u32;
        for (i, v) in [
            FDT_MAGIC,
            total,
            off,
            total,
            40,
            17,
            16,
            0,
            0,
            block.len() as u32,
        ]
        .iter()
        .enumerate()
        {
            blob[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
        }
        blob.extend_from_slice(&block);
        match check_shape(&blob) {
            Err(Error::NotDtb(why)) => assert!(why.contains("deeper"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn comments_wrap_and_quote_is_toml() {
        let mut s = String::new();
        comment(&mut s, &"word ".repeat(40));
        assert!(s.lines().count() > 1, "{s}");
        assert!(s.lines().all(|l| l.starts_with('#') && l.len() <= 100));
        assert_eq!(quote("a\"b"), "'a\"b'");
        assert_eq!(inert("a\u{202e}b\n"), "a\\u{202e}b\\u{a}");
    }
}
