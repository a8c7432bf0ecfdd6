//! cargo-deny over the workspace's crate graph (`deny.toml`): one version of each crate, no
//! wildcard requirements, crates.io as the only source.
//!
//! Only the checks that work offline run (`bans` and `sources`); `advisories` would fetch the
//! advisory database.

use crate::testbed::ensure_cargo_tool;
use crate::util::{repo_root, step};
use anyhow::{bail, Context, Result};
use std::process::Command;

/// The cargo-deny the checks run with.
const CARGO_DENY_VERSION: &str = "0.20.2";

/// Installs the pinned cargo-deny into the cache and runs `cargo deny --offline check bans
/// sources` on the workspace; fails with one line per error, naming each crate that is in
/// Cargo.lock in more than one version.
pub fn deny_check() -> Result<()> {
    let deny = ensure_cargo_tool("cargo-deny", CARGO_DENY_VERSION, "cargo-deny")?;
    step("host: cargo deny --offline check bans sources");
    let out = Command::new(&deny)
        .args(["deny", "--offline", "--format", "json", "--color", "never"])
        .args(["check", "bans", "sources"])
        .current_dir(repo_root())
        .output()
        .with_context(|| format!("cannot run {}", deny.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors = errors(&stderr);
    if !out.status.success() || !errors.is_empty() {
        let why = if errors.is_empty() {
            format!("{}\n{stderr}", out.status)
        } else {
            errors.join("\n")
        };
        bail!(
            "cargo deny check bans sources failed ({} for the inclusion graphs):\n{why}",
            format_args!("`{} deny check bans`", deny.display())
        );
    }
    Ok(())
}

/// The errors in cargo-deny's JSON output, one line each: `duplicate: syn 2.0.119, 3.0.10` for a
/// crate in more than one version, else the error's code and message.
fn errors(json_lines: &str) -> Vec<String> {
    let mut v = Vec::new();
    for line in json_lines.lines() {
        let Ok(d) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let f = &d["fields"];
        if d["type"] != "diagnostic" || f["severity"] != "error" {
            continue;
        }
        let code = f["code"].as_str().unwrap_or("error");
        let krates: Vec<(&str, &str)> = f["graphs"]
            .as_array()
            .map(|g| {
                g.iter()
                    .filter_map(|k| {
                        Some((
                            k["Krate"]["name"].as_str()?,
                            k["Krate"]["version"].as_str()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        match (code, krates.first()) {
            ("duplicate", Some((name, _))) => {
                let versions: Vec<&str> = krates.iter().map(|k| k.1).collect();
                v.push(format!("duplicate: {name} {}", versions.join(", ")));
            }
            _ => v.push(format!(
                "{code}: {}",
                f["message"].as_str().unwrap_or("(no message)")
            )),
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_is_named_with_its_versions() {
        let out = concat!(
            r#"{"fields":{"code":"duplicate","graphs":[{"Krate":{"name":"syn","version":"2.0.119"},"parents":[]},"#,
            r#"{"Krate":{"name":"syn","version":"3.0.10"},"parents":[]}],"labels":[],"#,
            r#""message":"found 2 duplicate entries for crate 'syn'","severity":"error"},"type":"diagnostic"}"#,
            "\n",
            r#"{"fields":{"code":"unmatched-skip","message":"skipped crate 'x' was not encountered","severity":"warning"},"type":"diagnostic"}"#,
            "\n",
            r#"{"fields":{"code":"git-source-underspecified","message":"a git source","severity":"error"},"type":"diagnostic"}"#,
            "\n",
            r#"{"fields":{"bans":{"errors":1}},"type":"summary"}"#,
            "\n",
        );
        assert_eq!(
            errors(out),
            [
                "duplicate: syn 2.0.119, 3.0.10",
                "git-source-underspecified: a git source"
            ]
        );
    }
}
