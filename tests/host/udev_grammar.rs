// SPDX-License-Identifier: GPL-2.0

//! The udev(7) rule grammar the generated rules must follow, shared by the host tests
//! (`udev.rs`) and the fuzzer (`cargo xtask fuzz`, which includes this file by path).

/// One `KEY op "value"` of a rule line.
#[derive(Debug)]
pub struct Pair {
    /// The key, with its `{attr}` if any.
    pub key: String,
    /// The operator.
    pub op: String,
    /// The value, without its quotes.
    pub value: String,
}

/// Parses a rule line by udev(7)'s grammar: comma-separated `KEY[{attr}]OP"value"` pairs.
pub fn parse_rule(line: &str) -> Result<Vec<Pair>, String> {
    let mut pairs = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_' || c == '{' || c == '}'))
            .ok_or_else(|| format!("no operator after `{rest}`"))?;
        let key = &rest[..key_end];
        rest = &rest[key_end..];
        let op = ["==", "!=", "+=", "-=", ":=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .ok_or_else(|| format!("bad operator in `{rest}`"))?;
        rest = &rest[op.len()..];
        let body = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("value of {key} is not quoted"))?;
        let close = body
            .find('"')
            .ok_or_else(|| format!("unterminated value of {key}"))?;
        let value = &body[..close];
        rest = body[close + 1..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
            if rest.is_empty() {
                return Err("trailing comma".into());
            }
        } else if !rest.is_empty() {
            return Err(format!("missing comma before `{rest}`"));
        }
        pairs.push(Pair {
            key: key.to_string(),
            op: op.to_string(),
            value: value.to_string(),
        });
    }
    for p in &pairs {
        let ok = match p.key.as_str() {
            "SUBSYSTEM" | "KERNEL" | "ACTION" | "DEVPATH" => p.op == "==" || p.op == "!=",
            "MODE" | "OWNER" | "GROUP" => p.op == "=" || p.op == ":=",
            other => return Err(format!("unexpected key {other}")),
        };
        if !ok {
            return Err(format!("{} cannot take `{}`", p.key, p.op));
        }
    }
    Ok(pairs)
}
