//! The intermediate representation: a validated board, the only thing templates see.
//!
//! Every value here is final: names are checked, sizes are in bytes, policies passed
//! `heapgen_policy::Policy::check`, and every derived value a template needs (identifiers, the
//! module name, both heap names of an uncached twin) is computed here, never in a template.

use heapgen_policy::{Alignment, Policy};
use serde::Serialize;

// The one architecture type: the IR's, the board file schema's (its documentation is the
// schema's descriptions) and the command line's (`--arch`, with `help`).
/// Target architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema, clap::ValueEnum)]
pub enum Arch {
    /// 64-bit Arm, device-tree boards.
    #[serde(rename = "arm64")]
    #[value(name = "arm64", help = "64-bit Arm")]
    Arm64,
    /// x86-64: only the `cma=` area, named `reserved`.
    #[serde(rename = "x86_64")]
    #[value(name = "x86_64", help = "x86-64")]
    X86_64,
}

impl Arch {
    /// The name used in board files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Arm64 => "arm64",
            Arch::X86_64 => "x86_64",
        }
    }
}

/// A validated board.
#[derive(Clone, Debug, Serialize)]
pub struct Board {
    /// The board name (`[a-z0-9-]`), e.g. `acme-evb`.
    pub name: String,
    /// The kernel module name, e.g. `acme_evb_heaps` (the `.ko` and the crate root file stem).
    pub module: String,
    /// Target architecture.
    pub arch: Arch,
    /// One-line human description.
    pub description: String,
    /// Who maintains the board, `Name <email>`, if the board file says.
    pub maintainer: Option<String>,
    /// The board file path as given on the command line, relative, with `/` separators.
    pub source: String,
    /// The board file's name without its directories (`qemu-arm64.toml`): what build-system
    /// recipes that run heapgen at build time expect next to them.
    pub source_file: String,
    /// The Buildroot br2-external name (`HEAPGEN_<BOARD>`, upper case, `_` for `-`).
    pub br2_external: String,
    /// sha256 of the board file's bytes, lower-case hex.
    pub source_sha256: String,
    /// The kernel page size the board is validated for (`board.page-size`), in bytes: every
    /// policy length is a multiple of it and alignment orders count such pages.
    pub page_size: u64,
    /// log2 of `page_size` (the kernel's `CONFIG_PAGE_SHIFT`).
    pub page_shift: u32,
    /// The kernel page sizes other than the board's, for the crate root's build-time check.
    pub other_page_sizes: Vec<PageSize>,
    /// The board file's bytes (shipped with the build-system trees, for regenerating there).
    #[serde(skip)]
    pub source_contents: Vec<u8>,
    /// The heapgen version that produced this IR.
    pub heapgen_version: String,
    /// Regions in board-file order.
    pub regions: Vec<Region>,
    /// Every device node the module creates (cached and uncached heaps), sorted by name.
    pub heaps: Vec<HeapNode>,
    /// Device-tree reserved-memory nodes to emit, sorted by base address then name.
    pub reserved: Vec<Reserve>,
    /// Strategy hook files copied into the module, sorted by path, each once.
    pub hook_files: Vec<HookFile>,
    /// The kernel options (`CONFIG_*`, all `=y`) the module needs, each with why: the generated
    /// kernel config fragment and the Buildroot package's fixups list them.
    pub kernel_options: Vec<KernelOption>,
    /// The heaps upstream's CMA heap driver creates over the board's CMA areas, which the
    /// generated device-node rules close, sorted by name.
    pub upstream_heaps: Vec<UpstreamHeap>,
    /// Every heap as the test suite sees it (the lines of the generated `test/heaps.conf`),
    /// in board-file order of the regions, each region's cached heap before its uncached twin.
    pub test_heaps: Vec<TestHeap>,
}

/// One heap and the policy the test suite checks it against: a line of `test/heaps.conf`,
/// which `heapgen-test` turns into the `HEAPGEN_*` environment of the test programs. Every
/// value is final; the string fields are `-` when they do not apply.
#[derive(Clone, Debug, Serialize)]
pub struct TestHeap {
    /// The heap (device node) name.
    pub heap: String,
    /// The CMA area it allocates from.
    pub cma: String,
    /// The alignment every buffer has, in bytes: the fixed alignment, or the page size for a
    /// size-order alignment (the least it promises).
    pub align: u64,
    /// Granule in bytes.
    pub granule: u64,
    /// Front guard in bytes.
    pub guard_before: u64,
    /// Back guard in bytes.
    pub guard_after: u64,
    /// Largest payload in bytes.
    pub max_alloc: u64,
    /// 1 for the write-combined (uncached) twin, else 0.
    pub uncached: u8,
    /// The CMA areas of the region's fallback regions, comma-separated, or `-`.
    pub fallback: String,
    /// The stem of the region's hook file (`protected` for `hooks/protected.rs`), or `-`.
    pub hooks: String,
    /// The heap's pool as `<size>,<size>...:<depth>` in bytes, or `-`.
    pub pool: String,
    /// The region's dmem cgroup region (`heapgen/<region>`), or `-`.
    pub accounting: String,
    /// The region's headroom in bytes (decimal), or `-`.
    pub headroom: String,
}

/// A heap that upstream's CMA heap driver (Linux 6.19 and later, `CONFIG_DMABUF_HEAPS_CMA`)
/// creates over a CMA area a heapgen region allocates from: one named after every area, and
/// `default_cma_region` over the default one. It hands the area out without the region's
/// policies (no guards, no hooks: a protected region's memory as ordinary CPU-mappable
/// buffers), so the generated udev and ueventd rules give its node mode 0000.
#[derive(Clone, Debug, Serialize)]
pub struct UpstreamHeap {
    /// The heap's name (its node is `/dev/dma_heap/<name>`).
    pub name: String,
    /// The CMA area it allocates from.
    pub cma: String,
    /// The regions over that area, in board-file order.
    pub regions: Vec<String>,
}

/// A kernel page size.
#[derive(Clone, Debug, Serialize)]
pub struct PageSize {
    /// log2 of the size (`CONFIG_PAGE_SHIFT`).
    pub shift: u32,
    /// The size as a board file writes it (`16K`).
    pub label: String,
}

/// A kernel option the module needs.
#[derive(Clone, Debug, Serialize)]
pub struct KernelOption {
    /// `CONFIG_<NAME>`.
    pub name: String,
    /// Why, in a few words.
    pub why: String,
}

/// A strategy hook file (`hooks = "<path>.rs"`), copied verbatim into the module.
#[derive(Clone, Debug, Serialize)]
pub struct HookFile {
    /// The path as written in the board file, relative to the board file's directory.
    pub source: String,
    /// Its path in the generated tree: `hooks/<file name>`.
    pub path: String,
    /// The Rust module it becomes: `hooks_<stem>`.
    pub module: String,
    /// The static holding its ops table: `HOOKS_<STEM>`.
    pub ops_static: String,
    /// The file's bytes, read while the board file is loaded.
    #[serde(skip)]
    pub contents: Vec<u8>,
}

/// One region: a CMA area and the policy of the heap(s) over it.
#[derive(Clone, Debug, Serialize)]
pub struct Region {
    /// The region's name in the board file (`[a-z0-9-]`).
    pub name: String,
    /// The region name as a Rust/C identifier (`-` replaced by `_`).
    pub ident: String,
    /// The kernel's name of the CMA area this region binds to (`reserved` for `cma=`).
    pub cma: String,
    /// The cached heap's name, or `None` when the region only has an uncached heap.
    pub heap: Option<String>,
    /// The uncached twin's name (`<heap>-uncached`), or `None`.
    pub uncached_heap: Option<String>,
    /// Alignment kind (templates see `"fixed"` or `"size-order"`).
    pub align_kind: AlignKind,
    /// Alignment order in pages (fixed), or the cap (size-order).
    pub align_order: u32,
    /// Alignment in bytes (`4096 << align_order`), for docs and tables.
    pub align_bytes: u64,
    /// Granule in bytes.
    pub granule: u64,
    /// Front guard in bytes.
    pub guard_before: u64,
    /// Back guard in bytes.
    pub guard_after: u64,
    /// Largest payload in bytes.
    pub max_alloc: u64,
    /// The region's size in bytes when known (from `reserve`), else `None`.
    pub size: Option<u64>,
    /// Access of this region's device nodes.
    pub access: Access,
    /// Regions tried in order when this region's area cannot satisfy a request (`fallback`).
    pub fallback: Vec<String>,
    /// The CMA areas of `fallback`, in the same order (what the runtime looks up).
    pub fallback_cma: Vec<String>,
    /// The static holding the region's hook ops table, when the region has `hooks`.
    pub hooks_static: Option<String>,
    /// The region's hook file as written in the board file, when it has one.
    pub hooks: Option<String>,
    /// The region's buffer pool (`strategy = { kind = "pool", ... }`), or `None`.
    pub pool: Option<Pool>,
    /// The region's headroom (`strategy = { kind = "headroom", ... }`), or `None`.
    pub headroom: Option<Headroom>,
    /// Whether the region's buffers are charged to the allocating task's dmem cgroup, under the
    /// dmem region `heapgen/<name>` (`accounting`).
    pub accounting: bool,
    /// The capacity the dmem region is registered with (its `dmem.capacity`), in bytes: the
    /// region's size when the board file reserves it, else the footprint of the largest buffer
    /// (the module cannot read the size of an area it does not reserve). 0 when not accounted.
    pub dmem_capacity: u64,
}

/// How a region's buffers are aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlignKind {
    /// Every buffer is aligned to `align_bytes`.
    Fixed,
    /// Every buffer is aligned to the order of its size, capped at `align_bytes`.
    SizeOrder,
}

impl Region {
    /// The region's policy, as the runtime builds it, for pages of `1 << page_shift` bytes.
    pub fn policy(&self, page_shift: u32) -> Policy {
        Policy {
            page_shift,
            alignment: match self.align_kind {
                AlignKind::Fixed => Alignment::Fixed {
                    order: self.align_order,
                },
                AlignKind::SizeOrder => Alignment::SizeOrder {
                    max_order: self.align_order,
                },
            },
            granule: self.granule,
            guard_before: self.guard_before,
            guard_after: self.guard_after,
            max_alloc: self.max_alloc,
        }
    }
}

/// A region's pool of pre-allocated, pre-zeroed buffers.
#[derive(Clone, Debug, Serialize)]
pub struct Pool {
    /// Payload sizes of the size classes in bytes, strictly ascending granule multiples, each at
    /// most `max-alloc`. A request is served from a class when its padded size equals the class.
    pub sizes: Vec<u64>,
    /// Buffers kept per class, 1..=64.
    pub depth: u32,
}

/// The part of a region's CMA area kept allocated ahead of demand: evacuated and zeroed in the
/// background, and carved up by requests whose footprint fits in a held extent. Both heaps of
/// the region (the uncached twin too) share it.
#[derive(Clone, Debug, Serialize)]
pub struct Headroom {
    /// Bytes kept, a non-zero multiple of the page size and of the region's granule, at most
    /// the region's size when it is known.
    pub bytes: u64,
}

/// Permissions of a `/dev/dma_heap/<name>` node.
#[derive(Clone, Debug, Serialize)]
pub struct Access {
    /// Octal mode with a leading zero, e.g. `"0660"`.
    pub mode: String,
    /// Owner user name.
    pub owner: String,
    /// Owner group name.
    pub group: String,
}

/// One `/dev/dma_heap/<name>` node.
#[derive(Clone, Debug, Serialize)]
pub struct HeapNode {
    /// The heap (and device node) name.
    pub name: String,
    /// The region it allocates from.
    pub region: String,
    /// Whether this is the write-combined (uncached) twin.
    pub uncached: bool,
    /// Device node permissions.
    pub access: Access,
    /// The SELinux type of the device node (`<heap>_heap_device`, a valid identifier: characters
    /// outside `[a-z0-9_]` become `_`; a suffix `_2`, `_3`, ... keeps two heaps whose names differ
    /// only in those characters apart).
    pub selinux_type: String,
    /// The node's path as a `file_contexts` regular expression (`/dev/dma_heap/<heap>` with
    /// regex metacharacters escaped).
    pub file_context: String,
}

/// A `reserved-memory` child node to emit for a region.
#[derive(Clone, Debug, Serialize)]
pub struct Reserve {
    /// The region that owns it.
    pub region: String,
    /// Full node name as the kernel names the CMA area (`name@base` when placed by `reg`).
    pub node: String,
    /// Device-tree label (a C identifier).
    pub label: String,
    /// Fixed base address, or `None` for a dynamically placed region.
    pub base: Option<u64>,
    /// Size in bytes.
    pub size: u64,
    /// `alignment` property for dynamically placed regions.
    pub alignment: Option<u64>,
    /// `alloc-ranges` (base, size) pairs for dynamically placed regions.
    pub alloc_ranges: Vec<(u64, u64)>,
    /// Whether the node carries `linux,cma-default`.
    pub default: bool,
}
