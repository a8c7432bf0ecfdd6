//! Rules of the board file as a whole and of its `[board]` table: how the file is read and
//! named, `schema-version`, the board's name, architecture, description, page size and
//! maintainer, and the names of its regions.

use std::ops::Range;

use super::{Validator, MISSING_KEY};
use crate::diag::{did_you_mean, Rule};
use crate::ir;
use crate::model::{RawRegion, Sp};
use crate::size::format_size;

/// Rule: the board file cannot be read.
pub const READ_FAILED: Rule = Rule {
    name: "read-failed",
    summary: "the board file can be read",
    docs: "Diagnostics",
};

/// Rule: the board file is larger than [`crate::MAX_BOARD_FILE`].
pub const BOARD_FILE_SIZE: Rule = Rule {
    name: "board-file-size",
    summary: "a board file has at most 512 KiB",
    docs: "Conventions",
};

/// Rule: the board file is not UTF-8.
pub const ENCODING: Rule = Rule {
    name: "encoding",
    summary: "the board file is UTF-8",
    docs: "Diagnostics",
};

/// Rule: generated files cannot carry the board file's path or name.
pub const SOURCE_NAME: Rule = Rule {
    name: "source-name",
    summary: "generated files and recipes can name the board file",
    docs: "Conventions",
};

/// Rule: `schema-version` is missing or not 1.
pub const SCHEMA_VERSION: Rule = Rule {
    name: "schema-version",
    summary: "the file starts with `schema-version = 1`",
    docs: "schema-version",
};

/// Rule: `board.name` is not a board name.
pub const BOARD_NAME: Rule = Rule {
    name: "board-name",
    summary: "the board name is `[a-z][a-z0-9-]*`, at most 48 characters",
    docs: "board.name",
};

/// Rule: `board.arch` is not an architecture heapgen knows.
pub const BOARD_ARCH: Rule = Rule {
    name: "board-arch",
    summary: "the architecture is `arm64` or `x86_64`",
    docs: "board.arch",
};

/// Rule: `board.description` is not one short line.
pub const BOARD_DESCRIPTION: Rule = Rule {
    name: "board-description",
    summary: "the description is one line of at most 256 characters",
    docs: "board.description",
};

/// Rule: `board.page-size` is not a page size of the architecture.
pub const BOARD_PAGE_SIZE: Rule = Rule {
    name: "board-page-size",
    summary: "the page size is one the architecture's kernels have",
    docs: "board.page-size",
};

/// Rule: `board.maintainer` is not `Name <user@host>`.
pub const BOARD_MAINTAINER: Rule = Rule {
    name: "board-maintainer",
    summary: "the maintainer is one line `Name <user@host>`",
    docs: "board.maintainer",
};

/// Rule: the board has no region.
pub const NO_REGIONS: Rule = Rule {
    name: "no-regions",
    summary: "a board has at least one region",
    docs: "region",
};

/// Rule: a region's name is not a region name.
pub const REGION_NAME: Rule = Rule {
    name: "region-name",
    summary: "a region name is `[a-z][a-z0-9-]*`, at most 32 characters",
    docs: "region.name",
};

/// Rule: two regions have one name.
pub const REGION_NAME_DUPLICATE: Rule = Rule {
    name: "region-name-duplicate",
    summary: "region names are unique",
    docs: "region.name",
};

/// The rules of this family.
pub const RULES: &[Rule] = &[
    READ_FAILED,
    BOARD_FILE_SIZE,
    ENCODING,
    SOURCE_NAME,
    SCHEMA_VERSION,
    BOARD_NAME,
    BOARD_ARCH,
    BOARD_DESCRIPTION,
    BOARD_PAGE_SIZE,
    BOARD_MAINTAINER,
    NO_REGIONS,
    REGION_NAME,
    REGION_NAME_DUPLICATE,
];

/// The longest board name: the module name `<board>_heaps` must fit the kernel's 55 bytes.
pub const MAX_BOARD_NAME: usize = 48;

/// The longest board description, in characters: one line of the generated rst page and
/// of the Yocto recipe carries it.
pub const MAX_DESCRIPTION: usize = 256;

/// The longest `board.maintainer`, in characters (a name and an address; the generated rst page
/// and README carry it on one line).
pub const MAX_MAINTAINER: usize = 256;

/// The longest region name.
pub const MAX_REGION_NAME: usize = 32;

/// Every page size Linux configures (`CONFIG_PAGE_SHIFT`), for the crate root's check that the
/// kernel's is the board's.
pub(super) const OTHER_PAGE_SHIFTS: [u32; 6] = [12, 13, 14, 15, 16, 18];

/// The page sizes a board may name for `arch`.
pub fn page_sizes(arch: ir::Arch) -> &'static [u64] {
    match arch {
        ir::Arch::Arm64 => &[4 << 10, 16 << 10, 64 << 10],
        ir::Arch::X86_64 => &[4 << 10],
    }
}

/// Whether `c` cannot appear in text heapgen writes into generated files: control characters
/// (a line break ends a comment and starts a line of code), line and paragraph separators, and
/// the bidirectional formatting characters that make code read differently from how it runs
/// ("Trojan Source"; rustc refuses them in comments).
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Whether a board file's name (without directories) can be written into build recipes as is:
/// Yocto's `SRC_URI` and the shell and make commands that run heapgen name it.
pub fn is_recipe_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
}

fn is_board_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Checks the name generated files give the board file (rule `source-name`): its path is
/// written into a comment of every generated file, its file name into the build recipes.
pub(super) fn check_source(v: &mut Validator<'_>, source: &str) {
    let shown: String = source.escape_debug().collect();
    if let Some(c) = source.chars().find(|&c| is_unprintable(c)) {
        v.err(
            SOURCE_NAME.at(
                "",
                0..0,
                format!(
                    "the board file's path `{shown}` contains {}, which would end or disguise the comment of every generated file that names it",
                    c.escape_unicode()
                ),
                "the board file's path",
            )
            .with_help("rename the file or its directories: no control, line-separator or bidirectional characters"),
        );
    } else if !is_recipe_file_name(source.rsplit('/').next().unwrap_or(source)) {
        v.err(
            SOURCE_NAME.at(
                "",
                0..0,
                format!(
                    "the board file's name `{}` cannot be written into the generated build recipes",
                    source.rsplit('/').next().unwrap_or(source).escape_debug()
                ),
                "the board file's name",
            )
            .with_help("rename the file with letters, digits, `.`, `_`, `+` and `-`, not starting with `-` or `.`: Yocto's SRC_URI and the commands that run heapgen name it"),
        );
    }
}

/// Checks `schema-version` (rule `schema-version`).
pub(super) fn schema_version(v: &mut Validator<'_>) {
    let raw = v.raw;
    match &raw.schema_version {
        None => v.err(
            SCHEMA_VERSION
                .at(
                    "schema-version",
                    0..0,
                    "missing `schema-version`",
                    "expected `schema-version = 1` first",
                )
                .with_help("start the file with `schema-version = 1`"),
        ),
        Some(sv) if sv.value != 1 => {
            let d = SCHEMA_VERSION.at(
                "schema-version",
                sv.span.clone(),
                format!("unsupported schema version {}", sv.value),
                "this heapgen reads board files of schema version 1",
            );
            v.err(d);
        }
        Some(_) => {}
    }
}

/// Checks a `[a-z0-9-]` name; returns whether it is valid.
fn check_name(
    v: &mut Validator<'_>,
    rule: &Rule,
    path: &str,
    what: &str,
    name: &Sp<String>,
    max: usize,
) -> bool {
    let ok = is_board_name(&name.value) && name.value.len() <= max;
    if !ok {
        v.err(
            rule.at(
                path,
                name.span.clone(),
                format!("invalid {what} `{}`", name.value),
                format!("must match [a-z][a-z0-9-]*, at most {max} characters"),
            )
            .with_help(format!(
                "{what}s use lower-case letters, digits and `-`, start with a letter and do not end with `-`"
            )),
        );
    }
    ok
}

/// The valid values of `[board]`.
#[derive(Debug, Default)]
pub(super) struct BoardTable {
    /// `name`, when valid.
    pub name: Option<String>,
    /// `description` trimmed, or empty when absent or invalid.
    pub description: String,
    /// `maintainer` trimmed, when valid.
    pub maintainer: Option<String>,
}

/// Checks `[board]` (rules `missing-key`, `board-name`, `board-arch`, `board-description`,
/// `board-page-size`, `board-maintainer`) and sets the validator's architecture and page size.
pub(super) fn board_table(v: &mut Validator<'_>) -> BoardTable {
    let mut table = BoardTable::default();
    let raw = v.raw;
    let Some(b) = &raw.board else {
        v.err(MISSING_KEY.at(
            "board",
            0..0,
            "missing the `[board]` table",
            "expected `[board]` with `name` and `arch`",
        ));
        return table;
    };
    match &b.value.name {
        None => v.err(MISSING_KEY.at(
            "board.name",
            b.span.clone(),
            "missing `name`",
            "this table needs `name = \"...\"`",
        )),
        Some(n) => {
            if check_name(
                v,
                &BOARD_NAME,
                "board.name",
                "board name",
                n,
                MAX_BOARD_NAME,
            ) {
                table.name = Some(n.value.clone());
            }
        }
    }
    v.arch = arch(v, b.value.arch.as_ref(), &b.span);
    if let Some(d) = &b.value.description {
        if description(v, d) {
            table.description = d.value.trim().to_string();
        }
    }
    if let Some(ps) = &b.value.page_size {
        page_size(v, ps);
    }
    if let Some(m) = &b.value.maintainer {
        if maintainer(v, m) {
            table.maintainer = Some(m.value.trim().to_string());
        }
    }
    table
}

/// Checks `board.arch` (rules `missing-key`, `board-arch`).
fn arch(
    v: &mut Validator<'_>,
    arch: Option<&Sp<String>>,
    table: &Range<usize>,
) -> Option<ir::Arch> {
    let Some(a) = arch else {
        v.err(MISSING_KEY.at(
            "board.arch",
            table.clone(),
            "missing `arch`",
            "this table needs `arch = \"arm64\"` or `arch = \"x86_64\"`",
        ));
        return None;
    };
    match a.value.as_str() {
        "arm64" => Some(ir::Arch::Arm64),
        "x86_64" => Some(ir::Arch::X86_64),
        other => {
            let hint = match other {
                "aarch64" | "arm64-v8a" | "armv8" => Some("arm64"),
                "amd64" | "x86-64" | "x64" | "x86" => Some("x86_64"),
                _ => did_you_mean(other, &["arm64", "x86_64"]),
            };
            let mut d = BOARD_ARCH.at(
                "board.arch",
                a.span.clone(),
                format!("unknown architecture `{other}`"),
                "expected `arm64` or `x86_64`",
            );
            if let Some(h) = hint {
                d = d.with_help(format!("did you mean `{h}`?"));
            }
            v.err(d);
            None
        }
    }
}

/// Checks `board.description` (rule `board-description`); returns whether it is valid.
fn description(v: &mut Validator<'_>, d: &Sp<String>) -> bool {
    if d.value.chars().any(is_unprintable) {
        v.err(BOARD_DESCRIPTION.at(
            "board.description",
            d.span.clone(),
            "the description must be one line of text",
            "contains a line break, a control or a bidirectional character",
        ));
        false
    } else if d.value.chars().count() > MAX_DESCRIPTION {
        v.err(
            BOARD_DESCRIPTION
                .at(
                    "board.description",
                    d.span.clone(),
                    format!(
                        "the description has {} characters, more than {MAX_DESCRIPTION}",
                        d.value.chars().count()
                    ),
                    "too long",
                )
                .with_help("one line saying what the board is; the documentation can say more"),
        );
        false
    } else {
        true
    }
}

/// Checks `board.page-size` (rule `board-page-size`) and makes it the validator's page size.
fn page_size(v: &mut Validator<'_>, ps: &Sp<u64>) {
    let allowed = v
        .arch
        .map_or(&[4 << 10, 16 << 10, 64 << 10][..], page_sizes);
    if allowed.contains(&ps.value) {
        v.page_size = ps.value;
        return;
    }
    let list: Vec<String> = allowed.iter().map(|s| format_size(*s)).collect();
    let d = BOARD_PAGE_SIZE
        .at(
            "board.page-size",
            ps.span.clone(),
            format!(
                "page size {} is not a page size of {} kernels",
                format_size(ps.value),
                v.arch.map_or("the supported", ir::Arch::as_str)
            ),
            format!("expected {}", list.join(", ")),
        )
        .with_help("the page size of the kernel the module is built for (CONFIG_PAGE_SHIFT)");
    v.err(d);
}

/// Checks `board.maintainer` (rule `board-maintainer`); returns whether it is valid.
fn maintainer(v: &mut Validator<'_>, m: &Sp<String>) -> bool {
    if maintainer_address(&m.value).is_some() {
        return true;
    }
    let length = m.value.chars().count();
    let message = match m.value.chars().find(|&c| is_unprintable(c)) {
        _ if length > MAX_MAINTAINER => {
            format!("the maintainer has {length} characters, more than {MAX_MAINTAINER}")
        }
        Some(c) => format!(
            "the maintainer contains {}, which would end or disguise the lines of the generated files that name it",
            c.escape_unicode()
        ),
        None => "the maintainer must be a name and an email address, one line".to_string(),
    };
    v.err(
        BOARD_MAINTAINER
            .at(
                "board.maintainer",
                m.span.clone(),
                message,
                "not `Name <user@host>`",
            )
            .with_help("e.g. `maintainer = \"Jane Doe <jane@example.com>\"`"),
    );
    false
}

/// The address of a `Name <user@host>` maintainer line, or `None` when it is not of that form
/// (one line, a name, an address with one `@` and no spaces or angle brackets), or holds a
/// character that would disguise it in the generated files (control, line-separator or
/// bidirectional characters, as for the description).
fn maintainer_address(value: &str) -> Option<&str> {
    let value = value.trim();
    if value.chars().any(is_unprintable) || value.chars().count() > MAX_MAINTAINER {
        return None;
    }
    let (name, rest) = value.split_once('<')?;
    let address = rest.strip_suffix('>')?;
    let (user, host) = address.split_once('@')?;
    let plain =
        |s: &str| !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || "<>@".contains(c));
    (!name.trim().is_empty() && !name.contains('>') && plain(user) && plain(host))
        .then_some(address)
}

/// Checks that the board has a region (rule `no-regions`).
pub(super) fn no_regions(v: &mut Validator<'_>) {
    if v.raw.regions.is_empty() {
        let board_span = v.raw.board.as_ref().map_or(0..0, |b| b.span.clone());
        v.err(
            NO_REGIONS
                .at(
                    "region",
                    board_span,
                    "the board has no `[[region]]`",
                    "a board needs at least one region",
                )
                .with_help("add a `[[region]]` table with `name`, `cma` and `heap`"),
        );
    }
}

/// Checks region `i`'s name (rules `missing-key`, `region-name`, `region-name-duplicate`):
/// the valid name, or the name messages call the region by.
pub(super) fn region_name(
    v: &mut Validator<'_>,
    i: usize,
    r: &RawRegion,
    header: &Range<usize>,
) -> Result<String, String> {
    let path = format!("region[{i}].name");
    let Some(n) = &r.name else {
        v.err(MISSING_KEY.at(
            path,
            header.clone(),
            "missing `name`",
            "every region needs `name = \"...\"`",
        ));
        return Err(format!("region[{i}]"));
    };
    let mut valid = check_name(v, &REGION_NAME, &path, "region name", n, MAX_REGION_NAME);
    if let Some(first) = v.region_names.get(&n.value) {
        let d = REGION_NAME_DUPLICATE
            .at(
                path,
                n.span.clone(),
                format!("region `{}` is defined twice", n.value),
                "second definition",
            )
            .with_secondary(first.clone(), "first defined here");
        v.err(d);
        valid = false;
    } else {
        v.region_names.insert(n.value.clone(), n.span.clone());
    }
    if valid {
        Ok(n.value.clone())
    } else {
        Err(n.value.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn rule_schema_version() {
        let text = format!("{}{}", ARM.replace("= 1", "= 2"), region("r", "a", "h", ""));
        assert_eq!(rules(&text), ["schema-version"]);
        let text = format!(
            "{}{}",
            ARM.replace("schema-version = 1\n", ""),
            region("r", "a", "h", "")
        );
        assert_eq!(rules(&text), ["schema-version"]);
    }

    #[test]
    fn rule_board_name() {
        for bad in [
            "Acme",
            "acme_evb",
            "-acme",
            "acme-",
            "1acme",
            &"a".repeat(49),
        ] {
            let text = format!(
                "{}{}",
                ARM.replace("\"b\"", &format!("\"{bad}\"")),
                region("r", "a", "h", "")
            );
            assert_eq!(rules(&text), ["board-name"], "{bad}");
        }
    }

    #[test]
    fn rule_board_arch() {
        let text = format!(
            "{}{}",
            ARM.replace("arm64", "aarch64"),
            region("r", "a", "h", "")
        );
        let d = run(&text).unwrap_err();
        assert_eq!(d[0].rule, "board-arch");
        assert_eq!(d[0].help.as_deref(), Some("did you mean `arm64`?"));
    }

    #[test]
    fn rule_board_maintainer() {
        for bad in [
            "Jane",
            "<jane@example.com>",
            "Jane <jane>",
            "Jane <ja ne@x.org>",
            "J <a@b>\nx",
            // Found by `cargo xtask fuzz`: a right-to-left override reached the rst page.
            "Jane <ja\u{202e}ne@example.com>",
            "Ja\u{2028}ne <jane@example.com>",
            // Found by `cargo xtask fuzz`: a line of the rst page longer than docutils reads.
            &format!("{} <jane@example.com>", "J".repeat(MAX_MAINTAINER)),
        ] {
            let text = format!(
                "{ARM}maintainer = {}\n{}",
                toml::Value::String(bad.to_string()),
                region("r", "a", "h", "")
            );
            assert_eq!(rules(&text), ["board-maintainer"], "{bad:?}");
        }
        let text = format!(
            "{ARM}maintainer = \"Jane Doe <jane@example.com>\"\n{}",
            region("r", "a", "h", "")
        );
        assert!(rules(&text).is_empty());
    }

    #[test]
    fn rule_board_description_length() {
        let at = |n: usize| {
            format!(
                "{ARM}description = \"{}\"\n{}",
                "d".repeat(n),
                region("r", "a", "h", "")
            )
        };
        assert!(rules(&at(MAX_DESCRIPTION)).is_empty());
        assert_eq!(rules(&at(MAX_DESCRIPTION + 1)), ["board-description"]);
    }

    #[test]
    fn rule_board_description() {
        let text = format!(
            "{ARM}description = \"two\\nlines\"\n{}",
            region("r", "a", "h", "")
        );
        assert_eq!(rules(&text), ["board-description"]);
    }

    #[test]
    fn rule_no_regions() {
        assert_eq!(rules(ARM), ["no-regions"]);
    }

    #[test]
    fn rule_region_name() {
        assert_eq!(
            rules(&format!("{ARM}{}", region("Video", "a", "h", ""))),
            ["region-name"]
        );
        assert_eq!(
            rules(&format!("{ARM}{}", region("vid_eo", "a", "h", ""))),
            ["region-name"]
        );
    }

    #[test]
    fn rule_region_name_duplicate() {
        let text = format!(
            "{ARM}{}{}",
            region("r", "a", "h", ""),
            region("r", "b", "i", "")
        );
        let d = run(&text).unwrap_err();
        assert_eq!(d[0].rule, "region-name-duplicate");
        assert_eq!(d[0].secondary.len(), 1, "both definitions are named");
    }
}
