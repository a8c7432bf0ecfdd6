//! `heapgen`: the command line over the heapgen library.
//!
//! Exit codes: 0 success, 78 (EX_CONFIG) a bad board file (for `import`: the imported board
//! file, written, does not pass `check` yet), 65 (EX_DATAERR) an input that is not a usable
//! device tree, 1 an internal error or (with `generate --check`) a stale output directory, 2 a
//! usage error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit code of a bad board file (sysexits' EX_CONFIG, as typos uses).
const EX_CONFIG: u8 = 78;

/// Exit code of an input that is not a usable device tree (sysexits' EX_DATAERR).
const EX_DATAERR: u8 = 65;

/// Generate Rust dma-buf heap kernel modules from a board file.
#[derive(Parser, Debug)]
#[command(name = "heapgen", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate board files; print every problem found.
    Check {
        /// Board files to check.
        #[arg(required = true)]
        boards: Vec<PathBuf>,
    },
    /// Generate the module tree of a board, atomically.
    Generate {
        /// The board file.
        board: PathBuf,
        /// Output directory (replaced atomically; build products in it are kept).
        #[arg(long, short)]
        out: PathBuf,
        /// Compare with the output directory instead of writing; exit 1 when stale.
        #[arg(long)]
        check: bool,
        /// Build systems to emit files for besides the module, comma-separated.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
        targets: Vec<TargetArg>,
        /// A built module whose undefined symbols make the KMI symbol list (default:
        /// `<out>/<module>.ko` when it exists, else the symbols the runtime is known to call).
        #[arg(long, value_name = "KO")]
        kmi_symbols_from: Option<PathBuf>,
    },
    /// Print the KMI symbol list of a built module: its undefined symbols (`nm -u`).
    KmiSymbols {
        /// The built module (`<module>.ko`).
        module: PathBuf,
    },
    /// Print the board file's JSON Schema (draft-07).
    Schema,
    /// Summarize a board: its heaps and a map of its reserved memory.
    Explain {
        /// The board file.
        board: PathBuf,
    },
    /// Make a board file from a device tree's reusable shared-dma-pool nodes and vendor heap
    /// bindings.
    Import {
        /// The device tree: a source (.dts, preprocessed and compiled with cpp and dtc) or a
        /// blob (.dtb).
        input: PathBuf,
        /// The board file to write (atomically); without it the board file goes to stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// A directory for `#include <...>` and `/include/` (repeatable), e.g. a kernel
        /// tree's scripts/dtc/include-prefixes.
        #[arg(long = "include", short = 'I', value_name = "DIR")]
        includes: Vec<PathBuf>,
        /// The board's architecture (default: arm64, or x86_64 for Intel CPUs).
        #[arg(long, value_enum)]
        arch: Option<heapgen::ir::Arch>,
    },
}

/// A value of `--targets`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TargetArg {
    /// Every build system.
    All,
    /// The module only.
    None,
    /// A Yocto layer: module recipe (module-rust) and heapgen host tool recipe.
    Yocto,
    /// A Buildroot br2-external tree: module package (kernel-module) and host-heapgen.
    Buildroot,
    /// Kleaf BUILD.bazel (ddk_module), sepolicy and the KMI symbol list fragment.
    Android,
}

fn targets(args: &[TargetArg]) -> Vec<heapgen::Target> {
    let mut v = Vec::new();
    for a in args {
        match a {
            TargetArg::All => v.extend(heapgen::Target::ALL),
            TargetArg::None => {}
            TargetArg::Yocto => v.push(heapgen::Target::Yocto),
            TargetArg::Buildroot => v.push(heapgen::Target::Buildroot),
            TargetArg::Android => v.push(heapgen::Target::Android),
        }
    }
    v.sort();
    v.dedup();
    v
}

fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Loads a board file, printing its warnings, or its problems and the exit code to use.
fn load(path: &PathBuf) -> Result<heapgen::ir::Board, ExitCode> {
    match heapgen::load(path) {
        Ok(loaded) => {
            if !loaded.warnings.list.is_empty() {
                eprint!("{}", loaded.warnings.render(color()));
            }
            Ok(loaded.board)
        }
        Err(d) => {
            eprint!("{}", d.render(color()));
            Err(ExitCode::from(EX_CONFIG))
        }
    }
}

/// `heapgen import`: writes the board file, then checks it and prints what is left to decide.
fn import(
    input: &std::path::Path,
    out: Option<&std::path::Path>,
    includes: Vec<PathBuf>,
    arch: Option<heapgen::ir::Arch>,
) -> ExitCode {
    let options = heapgen::import::Options { arch, includes };
    let imported = match heapgen::import::import_path(input, &options) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {}: {e}", input.display());
            return ExitCode::from(EX_DATAERR);
        }
    };
    for l in &imported.left_out {
        eprintln!(
            "note: {} left out: {}",
            heapgen::diag::inert(&l.node),
            l.reason
        );
    }
    let shown = match out {
        Some(o) => o.display().to_string(),
        None => format!("{}.toml", imported.board),
    };
    let dir = out
        .and_then(|o| o.parent())
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let source = out.map_or_else(|| shown.clone(), heapgen::source_name);
    let checked = heapgen::load(
        heapgen::Source::bytes(&shown, imported.text.as_bytes())
            .named(&source)
            .hooks_in(dir),
    );
    match out {
        Some(o) => {
            if let Err(e) = heapgen::write_file_atomic(o, imported.text.as_bytes()) {
                eprintln!("error: cannot write {}: {e}", o.display());
                return ExitCode::FAILURE;
            }
        }
        None => print!("{}", imported.text),
    }
    let summary = format!(
        "{}: {} region{} imported, {} node{} left out",
        heapgen::diag::inert(&shown),
        imported.regions.len(),
        if imported.regions.len() == 1 { "" } else { "s" },
        imported.left_out.len(),
        if imported.left_out.len() == 1 {
            ""
        } else {
            "s"
        },
    );
    match checked {
        Ok(loaded) => {
            if !loaded.warnings.list.is_empty() {
                eprint!("{}", loaded.warnings.render(color()));
            }
            eprintln!("{summary}; it passes `heapgen check`: review its TODO comments");
            ExitCode::SUCCESS
        }
        Err(d) => {
            eprint!("{}", d.render(color()));
            eprintln!(
                "{summary}; it does not pass `heapgen check` yet: decide the problems above, then check it again"
            );
            ExitCode::from(EX_CONFIG)
        }
    }
}

fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check { boards } => {
            let mut code = ExitCode::SUCCESS;
            for b in &boards {
                match load(b) {
                    Ok(board) => eprintln!(
                        "{}: ok ({} heap{})",
                        heapgen::diag::inert(&b.display().to_string()),
                        board.heaps.len(),
                        if board.heaps.len() == 1 { "" } else { "s" }
                    ),
                    Err(c) => code = c,
                }
            }
            code
        }
        Command::Generate {
            board,
            out,
            check,
            targets: target_args,
            kmi_symbols_from,
        } => {
            let board = match load(&board) {
                Ok(b) => b,
                Err(c) => return c,
            };
            let mut options = heapgen::Options {
                targets: targets(&target_args),
                ..heapgen::Options::default()
            };
            let ko = kmi_symbols_from.or_else(|| {
                let built = out.join(format!("{}.ko", board.module));
                built.is_file().then_some(built)
            });
            if let Some(ko) = ko.filter(|_| options.targets.contains(&heapgen::Target::Android)) {
                match heapgen::kmi::from_module(&ko) {
                    Ok(k) => options.kmi_symbols = Some(k),
                    Err(e) => {
                        eprintln!("error: {}: {e}", ko.display());
                        return ExitCode::FAILURE;
                    }
                }
            }
            let generation = match heapgen::generate(&board, &options) {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if check {
                match heapgen::check_output(&generation, &out) {
                    Ok(stale) if stale.is_empty() => {
                        eprintln!("{}: up to date", out.display());
                        ExitCode::SUCCESS
                    }
                    Ok(stale) => {
                        for s in &stale {
                            eprintln!("{}: {s}", out.display());
                        }
                        eprintln!(
                            "error: {} is stale ({} file{}); run `heapgen generate` without --check",
                            out.display(),
                            stale.len(),
                            if stale.len() == 1 { "" } else { "s" }
                        );
                        ExitCode::FAILURE
                    }
                    Err(e) => {
                        eprintln!("error: cannot read {}: {e}", out.display());
                        ExitCode::FAILURE
                    }
                }
            } else {
                match heapgen::write_atomic(&generation, &out) {
                    Ok(s) => {
                        eprintln!(
                            "{}: {} files ({} written, {} unchanged, {} removed)",
                            out.display(),
                            generation.files.len(),
                            s.written.len(),
                            s.unchanged.len(),
                            s.removed.len()
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: cannot write {}: {e}", out.display());
                        ExitCode::FAILURE
                    }
                }
            }
        }
        Command::KmiSymbols { module } => match heapgen::kmi::from_module(&module) {
            Ok(k) => {
                let name = module
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                println!("[abi_symbol_list]\n# required by {name}");
                for s in &k.symbols {
                    println!("  {s}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Schema => {
            print!("{}", heapgen::schema::schema_json());
            ExitCode::SUCCESS
        }
        Command::Explain { board } => match load(&board) {
            Ok(b) => {
                print!("{}", heapgen::explain::explain(&b));
                ExitCode::SUCCESS
            }
            Err(c) => c,
        },
        Command::Import {
            input,
            out,
            includes,
            arch,
        } => import(&input, out.as_deref(), includes, arch),
    }
}

fn main() -> ExitCode {
    run(Cli::parse())
}
