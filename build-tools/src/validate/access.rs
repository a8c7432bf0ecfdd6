//! Rules of a heap's device node permissions (`access`, in `[defaults]` and per region).

use std::ops::Range;

use super::Validator;
use crate::diag::{Diagnostic, Rule};
use crate::ir;
use crate::model::{RawAccess, RawRegion, Sp};

/// Rule: a mode that is not a file mode, or sets setuid, setgid or sticky bits.
pub const ACCESS_MODE: Rule = Rule {
    name: "access-mode",
    summary: "a mode is an octal string of permission bits only",
    docs: "region.access",
};

/// Rule: a world-writable mode (a warning with the opt-in).
pub const ACCESS_WORLD_WRITABLE: Rule = Rule {
    name: "access-world-writable",
    summary: "no world-writable node without `world-access = true`",
    docs: "region.access",
};

/// Rule: a mode that gives others read or execute access (a warning with the opt-in).
pub const ACCESS_WORLD_ACCESS: Rule = Rule {
    name: "access-world-access",
    summary: "no access for others without `world-access = true`",
    docs: "region.access",
};

/// Rule: both `world-access` and its former name `world-writable`.
pub const ACCESS_WORLD_ALIAS: Rule = Rule {
    name: "access-world-alias",
    summary: "`world-access` or its former name, not both",
    docs: "region.access",
};

/// Rule: the opt-in next to a mode that gives others nothing.
pub const ACCESS_WORLD_WRITABLE_UNUSED: Rule = Rule {
    name: "access-world-writable-unused",
    summary: "`world-access = true` only next to a mode that needs it",
    docs: "region.access",
};

/// Rule: an owner that is not a user name.
pub const ACCESS_OWNER: Rule = Rule {
    name: "access-owner",
    summary: "the owner is a user name",
    docs: "region.access",
};

/// Rule: a group that is not a group name.
pub const ACCESS_GROUP: Rule = Rule {
    name: "access-group",
    summary: "the group is a group name",
    docs: "region.access",
};

/// The rules of this family.
pub const RULES: &[Rule] = &[
    ACCESS_MODE,
    ACCESS_WORLD_WRITABLE,
    ACCESS_WORLD_ACCESS,
    ACCESS_WORLD_ALIAS,
    ACCESS_WORLD_WRITABLE_UNUSED,
    ACCESS_OWNER,
    ACCESS_GROUP,
];

/// Device node mode when neither the region nor `[defaults]` sets one.
pub const DEFAULT_MODE: u32 = 0o600;

fn is_user_name(s: &str) -> bool {
    s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Checks an `access` table at `path` (every rule of this family).
pub(super) fn check(v: &mut Validator<'_>, path: &str, a: &Sp<RawAccess>) {
    // The opt-in, by its current name or its former one.
    let opt_in = match (&a.value.world_access, &a.value.world_writable) {
        (Some(v), _) => Some(("world-access", v)),
        (None, Some(v)) => Some(("world-writable", v)),
        (None, None) => None,
    };
    if let Some(mode) = &a.value.mode {
        check_mode(v, path, mode, opt_in.map(|(_, o)| o));
    }
    if let (Some(new), Some(old)) = (&a.value.world_access, &a.value.world_writable) {
        v.err(
            ACCESS_WORLD_ALIAS
                .at(
                    format!("{path}.world-writable"),
                    old.span.clone(),
                    "`world-writable` is the former name of `world-access`; the table sets both",
                    "former name",
                )
                .with_secondary(new.span.clone(), "the current name")
                .with_help("keep only `world-access`"),
        );
    }
    if let Some((key, opt_in)) = opt_in {
        let world = a.value.mode.as_ref().is_some_and(|m| m.value & 0o007 != 0);
        if opt_in.value && !world {
            v.err(ACCESS_WORLD_WRITABLE_UNUSED.at(
                format!("{path}.{key}"),
                opt_in.span.clone(),
                format!("`{key} = true` next to a mode that gives others no access"),
                "nothing to allow",
            ));
        }
    }
    for (key, rule, name) in [
        ("owner", &ACCESS_OWNER, &a.value.owner),
        ("group", &ACCESS_GROUP, &a.value.group),
    ] {
        if let Some(name) = name {
            if !is_user_name(&name.value) {
                v.err(rule.at(
                    format!("{path}.{key}"),
                    name.span.clone(),
                    format!("invalid {key} `{}`", name.value),
                    "must be a user or group name: [a-z_][a-z0-9_-]*, at most 32 characters",
                ));
            }
        }
    }
}

/// Checks a mode (rules `access-mode`, `access-world-writable`, `access-world-access`): world
/// access is an error, or a warning with the opt-in `opt_in`.
fn check_mode(v: &mut Validator<'_>, path: &str, mode: &Sp<u32>, opt_in: Option<&Sp<bool>>) {
    if mode.value & 0o7000 != 0 {
        v.err(ACCESS_MODE.at(
            format!("{path}.mode"),
            mode.span.clone(),
            format!("mode {:04o} sets setuid, setgid or sticky bits", mode.value),
            "only permission bits (0..0777) are allowed",
        ));
        return;
    }
    if mode.value & 0o007 == 0 {
        return;
    }
    // Allocating needs only read access to the node (the dma-heap ioctl checks no write
    // mode; Android ships its system heap 0444), so any bit for others lets every process
    // drain the region.
    let d = if mode.value & 0o002 != 0 {
        ACCESS_WORLD_WRITABLE.at(
            format!("{path}.mode"),
            mode.span.clone(),
            format!("mode {:04o} makes the heap world-writable", mode.value),
            "world-writable",
        )
    } else {
        let what = if mode.value & 0o004 != 0 {
            "read access, and read access allocates"
        } else {
            "access (the execute bit)"
        };
        ACCESS_WORLD_ACCESS.at(
            format!("{path}.mode"),
            mode.span.clone(),
            format!("mode {:04o} gives every user {what}", mode.value),
            "world access",
        )
    };
    match opt_in {
        Some(opt_in) if opt_in.value => v.warn(
            d.with_secondary(opt_in.span.clone(), "allowed here")
                .with_help("any process can allocate the whole region"),
        ),
        _ => v.err(with_opt_in_help(d)),
    }
}

fn with_opt_in_help(d: Diagnostic) -> Diagnostic {
    d.with_help(
        "any process could allocate the whole region; grant access through a \
         group, e.g. \"0660\", or set `world-access = true` if that is intended",
    )
}

/// Checks region `i`'s `access` and returns the access of its device nodes: each key from the
/// region, else `[defaults]`, else the built-in default.
pub(super) fn region(
    v: &mut Validator<'_>,
    i: usize,
    r: &RawRegion,
    header: &Range<usize>,
) -> ir::Access {
    if let Some(a) = &r.access {
        check(v, &format!("region[{i}].access"), a);
    }
    let no_access = Sp {
        value: RawAccess::default(),
        span: header.clone(),
    };
    let ra = r.access.as_ref().unwrap_or(&no_access);
    let da = v.raw.defaults.access.as_ref().unwrap_or(&no_access);
    let mode = ra
        .value
        .mode
        .as_ref()
        .or(da.value.mode.as_ref())
        .map_or(DEFAULT_MODE, |m| m.value);
    let owner = ra
        .value
        .owner
        .as_ref()
        .or(da.value.owner.as_ref())
        .map_or("root".to_string(), |o| o.value.clone());
    let group = ra
        .value
        .group
        .as_ref()
        .or(da.value.group.as_ref())
        .map_or("root".to_string(), |o| o.value.clone());
    ir::Access {
        mode: format!("{mode:04o}"),
        owner,
        group,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn world_writable_with_opt_in_is_a_warning() {
        let text = format!(
            "{ARM}{}",
            region(
                "r",
                "r-area",
                "h",
                "access = { mode = \"0666\", world-writable = true }"
            )
        );
        let (board, warnings) = run_with_warnings(&text).expect("accepted");
        assert_eq!(board.heaps[0].access.mode, "0666");
        let rules: Vec<_> = warnings.iter().map(|d| d.rule).collect();
        assert_eq!(rules, ["access-world-writable"]);
        assert_eq!(warnings[0].severity, crate::diag::Severity::Warning);
    }

    #[test]
    fn rule_access_world_writable_unused() {
        assert_eq!(
            one("access = { mode = \"0660\", world-writable = true }"),
            ["access-world-writable-unused"]
        );
        assert!(one("access = { mode = \"0660\", world-writable = false }").is_empty());
    }

    #[test]
    fn rule_access_world_writable() {
        assert_eq!(
            one("access = { mode = \"0666\" }"),
            ["access-world-writable"]
        );
        let text = format!(
            "{ARM}[defaults]\naccess = {{ mode = 0o662 }}\n{}",
            region("r", "a", "h", "")
        );
        assert_eq!(rules(&text), ["access-world-writable"]);
    }

    /// Read access to a heap's node is enough to allocate from it (upstream checks no write
    /// mode), so any bit for others is world access.
    #[test]
    fn rule_access_world_access() {
        for mode in ["0644", "0444", "0604", "0601", "0661"] {
            assert_eq!(
                one(&format!("access = {{ mode = \"{mode}\" }}")),
                ["access-world-access"],
                "{mode}"
            );
        }
        assert!(one("access = { mode = \"0640\" }").is_empty());
        assert!(one("access = { mode = \"0400\" }").is_empty());
        // The opt-in makes it a warning, by its new name or its old one.
        for key in ["world-access", "world-writable"] {
            let text = format!(
                "{ARM}{}",
                region(
                    "r",
                    "r-area",
                    "h",
                    &format!("access = {{ mode = \"0444\", {key} = true }}")
                )
            );
            let (board, warnings) = run_with_warnings(&text).expect("accepted");
            assert_eq!(board.heaps[0].access.mode, "0444");
            let rules: Vec<_> = warnings.iter().map(|d| d.rule).collect();
            assert_eq!(rules, ["access-world-access"], "{key}");
        }
        // Both names at once: one too many (the mode is still allowed, with its warning).
        assert_eq!(
            one("access = { mode = \"0666\", world-access = true, world-writable = true }"),
            ["access-world-alias", "access-world-writable"]
        );
        assert_eq!(
            one("access = { mode = \"0660\", world-access = true }"),
            ["access-world-writable-unused"]
        );
    }

    #[test]
    fn rule_access_mode() {
        assert_eq!(one("access = { mode = \"4660\" }"), ["access-mode"]);
    }

    #[test]
    fn rule_access_owner_and_group() {
        assert_eq!(one("access = { owner = \"\" }"), ["access-owner"]);
        assert_eq!(one("access = { owner = \"Root\" }"), ["access-owner"]);
        assert_eq!(
            one("access = { group = \"video group\" }"),
            ["access-group"]
        );
        assert_eq!(one("access = { group = \"1video\" }"), ["access-group"]);
    }
}
