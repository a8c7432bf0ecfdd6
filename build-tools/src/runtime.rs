//! The hand-written kernel runtime, embedded in the generator and copied verbatim into every
//! generated module (the svd2rust `generic.rs` pattern).

/// Where a runtime file stands between the kernel and the heaps' logic. The crate root lists
/// the modules by layer, and a test holds the logic to never touching raw bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// The C shim, its header, and the raw bindings generated from the header.
    Shim,
    /// Support code with no kernel object of its own (conversions, vector helpers).
    Support,
    /// Safe wrappers of kernel objects, one C object each: the only Rust code that uses the
    /// bindings.
    Wrapper,
    /// The heaps' logic, written against the wrappers only.
    Logic,
}

/// One runtime file: its name in the generated tree and its contents.
#[derive(Clone, Copy, Debug)]
pub struct RuntimeFile {
    /// File name in the generated module directory.
    pub name: &'static str,
    /// Its layer.
    pub layer: Layer,
    /// Path of the source file, relative to the repository root (for the `@generated` header).
    pub source: &'static str,
    /// The file's contents, starting with its SPDX line.
    pub contents: &'static str,
}

macro_rules! runtime_files {
    ($($name:literal => $layer:ident),* $(,)?) => {
        &[$(RuntimeFile {
            name: $name,
            layer: Layer::$layer,
            source: concat!("heaps/runtime/", $name),
            contents: include_str!(concat!("../../heaps/runtime/", $name)),
        }),*]
    };
}

/// Every runtime file, in a fixed order.
pub const FILES: &[RuntimeFile] = runtime_files![
    "bindings.rs" => Shim,
    "cast.rs" => Support,
    "prelude.rs" => Support,
    "cma.rs" => Wrapper,
    "debugfs.rs" => Wrapper,
    "device.rs" => Wrapper,
    "dma_buf.rs" => Wrapper,
    "dma_heap.rs" => Wrapper,
    "dmem.rs" => Wrapper,
    "shrinker.rs" => Wrapper,
    "workqueue.rs" => Wrapper,
    "buffer.rs" => Logic,
    "headroom.rs" => Logic,
    "hooks.rs" => Logic,
    "policy.rs" => Logic,
    "pool.rs" => Logic,
    "region.rs" => Logic,
    "stats.rs" => Logic,
    "heapgen_abi.h" => Shim,
    "heapgen_helpers.c" => Shim,
];

/// The Rust modules of `layer`, in order: the crate root declares them (`pub mod <name>;`) layer
/// by layer.
pub fn rust_modules_of(layer: Layer) -> Vec<&'static str> {
    FILES
        .iter()
        .filter(|f| f.layer == layer)
        .filter_map(|f| f.name.strip_suffix(".rs"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logic_never_touches_raw_bindings() {
        for f in FILES
            .iter()
            .filter(|f| matches!(f.layer, Layer::Logic | Layer::Support))
        {
            for forbidden in ["bindings::", "extern \"C\""] {
                assert!(
                    !f.contents.contains(forbidden),
                    "{} ({:?}) uses `{forbidden}`: only wrappers may",
                    f.name,
                    f.layer
                );
            }
        }
    }

    #[test]
    fn every_runtime_source_is_listed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../heaps/runtime");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = FILES.iter().map(|f| f.name.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }
}
