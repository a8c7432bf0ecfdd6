//! The Android KMI symbol list of a module: the kernel symbols it imports.
//!
//! A GKI kernel only lets vendor modules use the symbols in its KMI symbol list, so a module's
//! imports must be added to the vendor's list (`[abi_symbol_list]`). The exact list is the set of
//! undefined symbols of the built `.ko` ([`undefined_symbols`], what `nm -u` prints); before a
//! build exists, [`known_symbols`] gives the kernel functions the heapgen runtime calls, which
//! misses what the compiler and the kernel crate add (mangled Rust symbols, `_printk`, `memcpy`,
//! stack protector and tracing hooks).

use serde::Serialize;

use crate::ir::Arch;

/// Where a symbol list comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KmiSymbols {
    /// One line saying where the list comes from (for a comment in the fragment).
    pub origin: String,
    /// Whether the list was read from a built module (else it is the runtime's known calls).
    pub derived: bool,
    /// The symbols, sorted, without duplicates.
    pub symbols: Vec<String>,
}

/// Kernel functions the heapgen runtime calls on every architecture, directly or through the
/// static inlines of `heapgen_helpers.c`.
const RUNTIME_SYMBOLS: &[&str] = &[
    "__module_get",
    "cma_alloc",
    "cma_for_each_area",
    "cma_get_name",
    "cma_release",
    "dma_buf_export",
    "dma_buf_put",
    "dma_contiguous_get_area_by_idx",
    "dma_heap_add",
    "dma_heap_get_drvdata",
    "dma_heap_get_name",
    "dma_map_sgtable",
    "dma_sync_sg_for_cpu",
    "dma_sync_sg_for_device",
    "dma_unmap_sg_attrs",
    "remap_pfn_range",
    "sg_alloc_table",
    "sg_free_table",
    "sg_next",
    "vmap",
    "vunmap",
];

/// [`RUNTIME_SYMBOLS`] plus the architecture's `clear_page` implementations.
pub fn known_symbols(arch: Arch, module: &str) -> KmiSymbols {
    let extra: &[&str] = match arch {
        Arch::Arm64 => &["clear_page"],
        Arch::X86_64 => &["clear_page_erms", "clear_page_orig", "clear_page_rep"],
    };
    let mut symbols: Vec<String> = RUNTIME_SYMBOLS
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    symbols.sort();
    symbols.dedup();
    KmiSymbols {
        origin: format!("the kernel functions the heapgen runtime of {module}.ko calls"),
        derived: false,
        symbols,
    }
}

/// Why a file could not be read as a kernel module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfError(pub String);

impl std::fmt::Display for ElfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ElfError {}

fn bad(what: &str) -> ElfError {
    ElfError(format!("not a 64-bit little-endian ELF module: {what}"))
}

fn get<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], ElfError> {
    at.checked_add(N)
        .and_then(|end| b.get(at..end))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| bad("truncated"))
}

/// `base + offset`, or an error when the sum leaves the address space.
fn offset(base: usize, offset: usize) -> Result<usize, ElfError> {
    base.checked_add(offset)
        .ok_or_else(|| bad("offset out of range"))
}

/// Whether `name` can be a kernel symbol: an identifier (with `.` and `$`, as compilers make
/// them). The names go one per line into the generated KMI list.
fn is_symbol(name: &[u8]) -> bool {
    name.first()
        .is_some_and(|c| c.is_ascii_alphabetic() || b"_.$".contains(c))
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.$".contains(c))
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ElfError> {
    Ok(u16::from_le_bytes(get(b, at)?))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ElfError> {
    Ok(u32::from_le_bytes(get(b, at)?))
}

fn u64_at(b: &[u8], at: usize) -> Result<usize, ElfError> {
    usize::try_from(u64::from_le_bytes(get(b, at)?)).map_err(|_| bad("offset too large"))
}

const SHT_SYMTAB: u32 = 2;
const SHN_UNDEF: u16 = 0;

/// The undefined global and weak symbols of a 64-bit little-endian ELF relocatable object (a
/// `.ko`), sorted and deduplicated: the kernel symbols the module imports (`nm -u`).
pub fn undefined_symbols(elf: &[u8]) -> Result<Vec<String>, ElfError> {
    if elf.get(..4) != Some(b"\x7fELF") {
        return Err(bad("no ELF magic"));
    }
    if elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return Err(bad("not ELFCLASS64/ELFDATA2LSB"));
    }
    let shoff = u64_at(elf, 0x28)?;
    let shentsize = usize::from(u16_at(elf, 0x3a)?);
    let shnum = usize::from(u16_at(elf, 0x3c)?);
    if shentsize < 0x40 {
        return Err(bad("section header size"));
    }
    let section = |i: usize| -> Result<(u32, usize, usize, usize, usize), ElfError> {
        let h = i
            .checked_mul(shentsize)
            .and_then(|o| o.checked_add(shoff))
            .ok_or_else(|| bad("section header offset"))?;
        Ok((
            u32_at(elf, offset(h, 4)?)?,             // sh_type
            u64_at(elf, offset(h, 0x18)?)?,          // sh_offset
            u64_at(elf, offset(h, 0x20)?)?,          // sh_size
            u32_at(elf, offset(h, 0x28)?)? as usize, // sh_link
            u64_at(elf, offset(h, 0x38)?)?.max(1),   // sh_entsize
        ))
    };
    let mut out = Vec::new();
    for i in 0..shnum {
        let (ty, off, size, link, entsize) = section(i)?;
        if ty != SHT_SYMTAB {
            continue;
        }
        if entsize < 24 {
            return Err(bad("symbol size"));
        }
        let (_, stroff, strsize, _, _) = section(link)?;
        let strtab = stroff
            .checked_add(strsize)
            .and_then(|end| elf.get(stroff..end))
            .ok_or_else(|| bad("string table"))?;
        for s in 1..size / entsize {
            let at = offset(off, s * entsize)?;
            let name = u32_at(elf, at)? as usize;
            let info = get::<1>(elf, offset(at, 4)?)?[0];
            let shndx = u16_at(elf, offset(at, 6)?)?;
            let bind = info >> 4;
            if shndx != SHN_UNDEF || !(bind == 1 || bind == 2) || name == 0 {
                continue;
            }
            let rest = strtab.get(name..).ok_or_else(|| bad("symbol name"))?;
            let end = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| bad("symbol name"))?;
            if !is_symbol(&rest[..end]) {
                return Err(bad("a symbol name is not an identifier"));
            }
            out.push(String::from_utf8_lossy(&rest[..end]).into_owned());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The largest module file [`from_module`] reads, in bytes: 1 GiB (a module with full debug
/// information takes tens of megabytes).
pub const MAX_MODULE_FILE: u64 = 1 << 30;

/// The symbol list of a built module file, read with [`undefined_symbols`]. The file must be a
/// regular file of at most [`MAX_MODULE_FILE`] bytes (a FIFO would block, a device never end).
pub fn from_module(path: &std::path::Path) -> Result<KmiSymbols, ElfError> {
    use std::io::Read;
    let failed = |e: std::io::Error| ElfError(format!("cannot read {}: {e}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(failed)?;
    let meta = file.metadata().map_err(failed)?;
    if !meta.is_file() || meta.len() > MAX_MODULE_FILE {
        return Err(ElfError(format!(
            "{} is not a regular file of at most 1 GiB",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_MODULE_FILE)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    Ok(KmiSymbols {
        origin: format!("the undefined symbols of the built {name}"),
        derived: true,
        symbols: undefined_symbols(&bytes)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 LE object: null section, .symtab, .strtab; symbols: null, `cma_alloc`
    /// (global, undefined), `local_fn` (global, defined in section 1), `vmap` (weak, undefined),
    /// `static_undef` (local, undefined).
    fn object() -> Vec<u8> {
        let strtab = b"\0cma_alloc\0local_fn\0vmap\0static_undef\0".to_vec();
        let sym = |name: u32, info: u8, shndx: u16| {
            let mut s = Vec::new();
            s.extend_from_slice(&name.to_le_bytes());
            s.push(info);
            s.push(0);
            s.extend_from_slice(&shndx.to_le_bytes());
            s.extend_from_slice(&[0; 16]);
            s
        };
        let mut symtab = vec![0u8; 24];
        symtab.extend(sym(1, 0x12, 0));
        symtab.extend(sym(11, 0x12, 1));
        symtab.extend(sym(20, 0x22, 0));
        symtab.extend(sym(25, 0x02, 0));
        let symoff = 0x40;
        let stroff = symoff + symtab.len();
        let shoff = stroff + strtab.len();
        let mut elf = vec![0u8; 0x40];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&0x40u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf.extend(&symtab);
        elf.extend(&strtab);
        let sh = |ty: u32, off: usize, size: usize, link: u32, entsize: u64| {
            let mut h = vec![0u8; 0x40];
            h[4..8].copy_from_slice(&ty.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            h[0x28..0x2c].copy_from_slice(&link.to_le_bytes());
            h[0x38..0x40].copy_from_slice(&entsize.to_le_bytes());
            h
        };
        elf.extend(vec![0u8; 0x40]);
        elf.extend(sh(SHT_SYMTAB, symoff, symtab.len(), 2, 24));
        elf.extend(sh(3, stroff, strtab.len(), 0, 0));
        elf
    }

    #[test]
    fn undefined_global_and_weak_symbols_are_the_imports() {
        assert_eq!(undefined_symbols(&object()).unwrap(), ["cma_alloc", "vmap"]);
    }

    #[test]
    fn non_elf_and_truncated_files_are_errors() {
        assert!(undefined_symbols(b"hello").is_err());
        let mut o = object();
        o.truncate(0x50);
        assert!(undefined_symbols(&o).is_err());
    }

    #[test]
    fn hostile_headers_are_errors_not_panics() {
        // Section headers at the end of the address space.
        let mut o = object();
        o[0x28..0x30].copy_from_slice(&(usize::MAX as u64 - 8).to_le_bytes());
        assert!(undefined_symbols(&o).is_err());
        // A symbol table at the end of the address space.
        let mut o = object();
        let symtab_header = o.len() - 2 * 0x40;
        o[symtab_header + 0x18..symtab_header + 0x20]
            .copy_from_slice(&(usize::MAX as u64 - 16).to_le_bytes());
        assert!(undefined_symbols(&o).is_err());
    }

    #[test]
    fn only_regular_files_are_read() {
        for path in ["/dev/zero", "/"] {
            let e = from_module(std::path::Path::new(path)).unwrap_err();
            assert!(e.0.contains("not a regular file"), "{path}: {e}");
        }
    }

    #[test]
    fn symbol_names_must_be_identifiers() {
        // The symbols are written one per line into the generated KMI list.
        let mut o = object();
        let at = o.windows(9).position(|w| w == b"cma_alloc").expect("name");
        o[at + 3] = b'\n';
        let e = undefined_symbols(&o).unwrap_err();
        assert!(e.0.contains("symbol name"), "{e}");
    }

    #[test]
    fn known_symbols_are_sorted_and_arch_specific() {
        let a = known_symbols(Arch::Arm64, "m");
        assert!(a.symbols.windows(2).all(|w| w[0] < w[1]));
        assert!(a.symbols.contains(&"clear_page".to_string()));
        assert!(!known_symbols(Arch::X86_64, "m")
            .symbols
            .contains(&"clear_page".to_string()));
    }
}
