//! Does a generated file parse in its own language?
//!
//! In-process checks, one per language heapgen writes: Rust through `syn`, JSON through
//! `serde_json`, udev rules through the grammar of the host tests, and tokenizer-level
//! checks where no parser crate is at hand (BitBake, Kconfig, Make, device tree, ueventd,
//! SELinux, the kconfig fragment, the KMI list, Starlark). `dtc`, docutils and rustfmt run
//! on a sample (see `oracle.rs`). Each check returns why the file does not parse.

#[path = "../../../tests/host/udev_grammar.rs"]
#[allow(dead_code)]
mod udev_grammar;

/// Checks a generated file in its own language, chosen by its path (`hooks/` files are the
/// board's own and are not checked).
pub fn check(path: &str, text: &str) -> Result<(), String> {
    if path.starts_with("hooks/") {
        // Copied verbatim from the board's directory: the oracle compares them with it.
        return Ok(());
    }
    if let Some(c) = text
        .chars()
        .find(|&c| c != '\n' && c != '\t' && heapgen::validate::is_unprintable(c))
    {
        return Err(format!("contains {}", c.escape_unicode()));
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.ends_with(".rs") {
        rust(text)
    } else if name == "manifest.json" {
        serde_json::from_str::<serde_json::Value>(text)
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else if name.ends_with(".rules") {
        udev(text)
    } else if name.starts_with("ueventd.") {
        ueventd(text)
    } else if name.ends_with(".bb") || name.ends_with(".inc") || name == "layer.conf" {
        bitbake(text)
    } else if name.starts_with("Config.in") {
        kconfig(text)
    } else if name == "Kbuild" || name == "Makefile" || name.ends_with(".mk") {
        make(text)
    } else if name.ends_with(".dtsi") {
        device_tree(text)
    } else if name.ends_with(".te") {
        sepolicy(text)
    } else if name == "file_contexts" {
        file_contexts(text)
    } else if name.ends_with(".config") {
        kconfig_fragment(text)
    } else if name.starts_with("abi_gki_") {
        abi_list(text)
    } else if name == "BUILD.bazel" {
        starlark(text)
    } else if name == "external.desc" {
        external_desc(text)
    } else if name.ends_with(".md") {
        markdown(text)
    } else if name.ends_with(".hash") {
        buildroot_hash(text)
    } else if name.ends_with(".rst") {
        rst(text)
    } else if name.ends_with(".c") || name.ends_with(".h") {
        Ok(())
    } else if name == "heaps.conf" {
        heaps_conf(text)
    } else if name == "heapgen-test" || name == "run-ptest" {
        shell(text)
    } else {
        Err(format!("no checker for {path}"))
    }
}

/// The test suite's `heaps.conf`: comments, and lines of exactly the 14 fields `heapgen-test`
/// reads (a heap name, module, CMA area, five sizes and the uncached flag as numbers, four
/// words, and the headroom as a number or `-`), none of which may start a comment.
fn heaps_conf(text: &str) -> Result<(), String> {
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() != 14 || fields.iter().any(|f| f.is_empty() || f.starts_with('#')) {
            return Err(format!("line {}: not 14 fields: {line:?}", n + 1));
        }
        if let Some(f) = fields[3..9].iter().find(|f| f.parse::<u64>().is_err()) {
            return Err(format!("line {}: `{f}` is not a number", n + 1));
        }
        if !matches!(fields[8], "0" | "1") {
            return Err(format!("line {}: uncached is not 0 or 1", n + 1));
        }
        if fields[13] != "-" && fields[13].parse::<u64>().is_err() {
            return Err(format!("line {}: headroom is not a number or -", n + 1));
        }
    }
    Ok(())
}

/// POSIX shell (the test runner and `run-ptest`): a `#!` line, every quote closed (the
/// scripts have no here-documents), and `if`/`fi`, `case`/`esac`, `do`/`done` and braces
/// balanced outside quotes and comments.
fn shell(text: &str) -> Result<(), String> {
    if !text.starts_with("#!/") {
        return Err("no #! line".into());
    }
    // The text with quoted strings and comments blanked out.
    let mut code = String::with_capacity(text.len());
    let mut quote: Option<(char, usize)> = None;
    let mut line = 1;
    let mut chars = text.chars();
    let mut prev = '\n';
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        match quote {
            Some((q, _)) if c == q => quote = None,
            Some(('"', _)) if c == '\\' => {
                if chars.next() == Some('\n') {
                    line += 1;
                }
            }
            Some(_) => {}
            None if c == '\\' => {
                if chars.next() == Some('\n') {
                    line += 1;
                }
                code.push(' ');
            }
            None if c == '\'' || c == '"' => {
                quote = Some((c, line));
                code.push(' ');
            }
            None if c == '#' && (prev.is_whitespace() || prev == ';') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
                code.push('\n');
                prev = '\n';
                continue;
            }
            None => code.push(c),
        }
        prev = c;
    }
    if let Some((q, at)) = quote {
        return Err(format!("line {at}: unclosed {q}"));
    }
    let mut depth = [0i32; 4];
    for word in code.split(|c: char| c.is_whitespace() || ";&|()".contains(c)) {
        let (i, d) = match word {
            "if" => (0, 1),
            "fi" => (0, -1),
            "case" => (1, 1),
            "esac" => (1, -1),
            "do" => (2, 1),
            "done" => (2, -1),
            "{" => (3, 1),
            "}" => (3, -1),
            _ => continue,
        };
        depth[i] += d;
        if depth[i] < 0 {
            return Err(format!("`{word}` closes nothing"));
        }
    }
    if depth != [0; 4] {
        return Err(format!("unbalanced if/case/do/braces: {depth:?}"));
    }
    Ok(())
}

/// Markdown (CommonMark through `pulldown-cmark`): the only HTML is whole one-line comments
/// (the SPDX and `@generated` headers) and no value turned into a link or an image: what the
/// templates write is text, code and headings.
fn markdown(text: &str) -> Result<(), String> {
    use pulldown_cmark::{Event, Parser, Tag};
    for event in Parser::new(text) {
        match event {
            Event::Html(html) => {
                let line = html.trim_end_matches('\n');
                let inner = line
                    .strip_prefix("<!--")
                    .and_then(|l| l.strip_suffix("-->"))
                    .ok_or_else(|| format!("HTML that is not a one-line comment: {line:?}"))?;
                if inner.contains("--") || inner.contains('\n') {
                    return Err(format!("a comment that breaks: {line:?}"));
                }
            }
            Event::InlineHtml(html) => return Err(format!("inline HTML: {html:?}")),
            Event::Start(Tag::Link { dest_url, .. }) => {
                return Err(format!("a link: {dest_url:?}"))
            }
            Event::Start(Tag::Image { dest_url, .. }) => {
                return Err(format!("an image: {dest_url:?}"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A Buildroot `.hash` file: comments, blank lines and `<type>  <hex>  <file>` lines, as
/// `support/download/check-hash` reads them.
fn buildroot_hash(text: &str) -> Result<(), String> {
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [kind, hex, file] = fields[..] else {
            return Err(format!("not `type hash file`: {line:?}"));
        };
        let len = match kind {
            "md5" => 32,
            "sha1" => 40,
            "sha224" => 56,
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => return Err(format!("unknown hash type {kind:?}")),
        };
        if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || file.is_empty() {
            return Err(format!("malformed hash line: {line:?}"));
        }
    }
    Ok(())
}

/// Rust: `syn` parses the file.
pub fn rust(text: &str) -> Result<(), String> {
    syn::parse_file(text).map(|_| ()).map_err(|e| e.to_string())
}

fn udev(text: &str) -> Result<(), String> {
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        udev_grammar::parse_rule(line).map_err(|e| format!("line {}: {e}", n + 1))?;
    }
    Ok(())
}

fn is_ident(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_user(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// `/dev/dma_heap/<name> <mode> <user> <group>`.
fn ueventd(text: &str) -> Result<(), String> {
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let ok = f.len() == 4
            && f[0].starts_with("/dev/dma_heap/")
            && f[1].len() == 4
            && f[1].chars().all(|c| ('0'..='7').contains(&c))
            && is_user(f[2])
            && is_user(f[3]);
        if !ok {
            return Err(format!(
                "line {}: not `<node> <mode> <user> <group>`",
                n + 1
            ));
        }
    }
    Ok(())
}

/// BitBake, at the tokenizer level: logical lines (joined at `\`) are comments, `inherit`,
/// `require` or `include`, function definitions (`name() {` to `}`), or assignments
/// `VAR[flag] op "value"` whose value holds no `"`; every `${` anywhere is a plain variable
/// reference, never inline Python (`${@`).
/// The inline Python the templates write themselves, each a fixed string; inline Python from
/// anywhere else (a value of the board file) is a finding.
const TEMPLATE_INLINE_PYTHON: &[&str] =
    &["${@oe.utils.conditional('HEAPGEN_GENERATE', '1', 'heapgen-native', '', d)}"];

pub fn bitbake(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if let Some(known) = TEMPLATE_INLINE_PYTHON
            .iter()
            .find(|p| rest[at..].starts_with(**p))
        {
            rest = &rest[at + known.len()..];
            continue;
        }
        let after = &rest[at + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated `${`".to_string())?;
        let var = &after[..end];
        let plain = !var.is_empty()
            && var
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-:".contains(c));
        if !plain {
            return Err(format!("`${{{var}}}` is not a plain variable reference"));
        }
        rest = &after[end..];
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut in_function = false;
    while i < lines.len() {
        let first = i;
        if lines[i].trim_start().starts_with('#') {
            if lines[i].ends_with('\\') {
                return Err(format!(
                    "line {}: a comment continued on the next line",
                    i + 1
                ));
            }
            i += 1;
            continue;
        }
        let mut line = String::new();
        loop {
            let l = lines
                .get(i)
                .ok_or_else(|| format!("line {}: continued past the end", first + 1))?;
            i += 1;
            match l.strip_suffix('\\') {
                Some(head) => line.push_str(head),
                None => {
                    line.push_str(l);
                    break;
                }
            }
        }
        let t = line.trim();
        if in_function {
            if t == "}" {
                in_function = false;
            }
            continue;
        }
        if t.is_empty()
            || t.starts_with("inherit ")
            || t.starts_with("inherit_defer ")
            || t.starts_with("require ")
            || t.starts_with("include ")
        {
            continue;
        }
        if t.ends_with("() {") {
            let name = t.trim_end_matches("() {").trim_start_matches("python ");
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_:-".contains(c))
            {
                return Err(format!("line {}: bad function name `{name}`", first + 1));
            }
            in_function = true;
            continue;
        }
        assignment(t).map_err(|e| format!("line {}: {e}: {t}", first + 1))?;
    }
    if in_function {
        return Err("unterminated function".to_string());
    }
    Ok(())
}

fn assignment(t: &str) -> Result<(), String> {
    let t = t.strip_prefix("export ").unwrap_or(t);
    let var_end = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || "-_+.${}/~:".contains(c)))
        .ok_or("no operator")?;
    if var_end == 0 {
        return Err("empty variable name".into());
    }
    let mut rest = &t[var_end..];
    if let Some(flag) = rest.strip_prefix('[') {
        let end = flag.find(']').ok_or("unterminated flag")?;
        if !flag[..end]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_+.@/".contains(c))
        {
            return Err("bad flag".into());
        }
        rest = &flag[end + 1..];
    }
    let rest = rest.trim_start();
    let op = ["??=", "?=", ":=", "+=", "=+", ".=", "=.", "="]
        .into_iter()
        .find(|op| rest.starts_with(op))
        .ok_or("no operator")?;
    let value = rest[op.len()..].trim_start();
    let inner = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .ok_or("the value is not one double-quoted string")?;
    if inner.contains('"') {
        return Err("a `\"` inside the value".into());
    }
    Ok(())
}

/// Kconfig: `config`, `comment`, `source` lines and tab-indented attributes; prompts are
/// quoted strings without a quote inside; help text is indented.
fn kconfig(text: &str) -> Result<(), String> {
    let mut in_help = false;
    let mut ifs = 0usize;
    for (n, line) in text.lines().enumerate() {
        let bad = |why: &str| Err(format!("line {}: {why}: {line}", n + 1));
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if in_help {
            if line.starts_with("\t  ") {
                continue;
            }
            in_help = false;
        }
        let quoted_ok = |s: &str| {
            s.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .is_some_and(|v| !v.contains('"'))
        };
        if let Some(sym) = line.strip_prefix("config ") {
            if !sym
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                return bad("bad symbol");
            }
        } else if let Some(s) = line
            .strip_prefix("comment ")
            .or_else(|| line.strip_prefix("source "))
        {
            if !quoted_ok(s) {
                return bad("bad string");
            }
        } else if let Some(sym) = line.strip_prefix("if ") {
            if sym.is_empty()
                || !sym
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                return bad("bad symbol");
            }
            ifs += 1;
        } else if line == "endif" {
            ifs = match ifs.checked_sub(1) {
                Some(n) => n,
                None => return bad("endif without if"),
            };
        } else if let Some(attr) = line.strip_prefix('\t') {
            if attr == "help" {
                in_help = true;
            } else if let Some(p) = attr.strip_prefix("bool ") {
                if !quoted_ok(p) {
                    return bad("bad prompt");
                }
            } else if !(attr.starts_with("depends on ") || attr.starts_with("select ")) {
                return bad("unknown attribute");
            }
        } else {
            return bad("unknown line");
        }
    }
    if ifs != 0 {
        return Err("`if` without `endif`".into());
    }
    Ok(())
}

/// Make and Kbuild: no comment continued onto the next line, `define`/`endef` and
/// conditionals balanced, every `$(` closed on its logical line.
fn make(text: &str) -> Result<(), String> {
    let mut defines = 0i32;
    let mut conds = 0i32;
    let mut logical = String::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') && line.ends_with('\\') {
            return Err(format!(
                "line {}: comment continued on the next line",
                n + 1
            ));
        }
        let t = line.trim_start();
        if t.starts_with("define ") {
            defines += 1;
        } else if t == "endef" {
            defines -= 1;
        } else if ["ifeq ", "ifneq ", "ifdef ", "ifndef "]
            .iter()
            .any(|k| t.starts_with(k))
        {
            conds += 1;
        } else if t == "endif" {
            conds -= 1;
        }
        if defines < 0 || conds < 0 {
            return Err(format!("line {}: unbalanced", n + 1));
        }
        if line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => logical.push_str(head),
            None => {
                logical.push_str(line);
                let mut depth = 0i32;
                let b = logical.as_bytes();
                for (i, &c) in b.iter().enumerate() {
                    if c == b'(' && i > 0 && b[i - 1] == b'$' || c == b'(' && depth > 0 {
                        depth += 1;
                    } else if c == b')' && depth > 0 {
                        depth -= 1;
                    }
                }
                if depth != 0 {
                    return Err(format!("line {}: unclosed `$(`", n + 1));
                }
                logical.clear();
            }
        }
    }
    if defines != 0 || conds != 0 {
        return Err("unbalanced define or conditional".into());
    }
    Ok(())
}

/// Device tree source: comments well formed (no `*/` outside one, every `/*` closed), braces
/// and angle brackets balanced, every node or property line ends with `{`, `;` or `};`.
pub fn device_tree(text: &str) -> Result<(), String> {
    let mut code = String::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"/*") {
            let end = text[i + 2..]
                .find("*/")
                .ok_or_else(|| "unterminated comment".to_string())?;
            i += end + 4;
        } else if b[i..].starts_with(b"//") {
            i += text[i..].find('\n').unwrap_or(text.len() - i);
        } else if b[i..].starts_with(b"*/") {
            return Err("`*/` outside a comment".into());
        } else {
            let c = text[i..].chars().next().unwrap_or(' ');
            code.push(c);
            i += c.len_utf8();
        }
    }
    let mut depth = 0i32;
    for (n, line) in code.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        depth += t.matches('{').count() as i32 - t.matches('}').count() as i32;
        if depth < 0 || t.matches('<').count() != t.matches('>').count() {
            return Err(format!("line {}: unbalanced: {t}", n + 1));
        }
        if !(t.ends_with('{') || t.ends_with(';')) {
            return Err(format!("line {}: not a statement: {t}", n + 1));
        }
    }
    if depth != 0 {
        return Err("unbalanced braces".into());
    }
    Ok(())
}

fn sepolicy(text: &str) -> Result<(), String> {
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let ok = line
            .strip_prefix("type ")
            .and_then(|r| r.strip_suffix(", dmabuf_heap_device_type, dev_type;"))
            .is_some_and(is_ident);
        if !ok {
            return Err(format!("line {}: not a type declaration: {line}", n + 1));
        }
    }
    Ok(())
}

fn file_contexts(text: &str) -> Result<(), String> {
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let ok = f.len() == 2
            && f[0].starts_with("/dev/dma_heap/")
            && f[1]
                .strip_prefix("u:object_r:")
                .and_then(|t| t.strip_suffix(":s0"))
                .is_some_and(is_ident);
        if !ok {
            return Err(format!(
                "line {}: not `<path regex> <context>`: {line}",
                n + 1
            ));
        }
    }
    Ok(())
}

fn kconfig_fragment(text: &str) -> Result<(), String> {
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let ok = line
            .strip_prefix("CONFIG_")
            .and_then(|r| r.strip_suffix("=y"))
            .is_some_and(|s| {
                s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            });
        if !ok {
            return Err(format!("line {}: not `CONFIG_X=y`: {line}", n + 1));
        }
    }
    Ok(())
}

fn abi_list(text: &str) -> Result<(), String> {
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') || line == "[abi_symbol_list]" {
            continue;
        }
        let ok = line.strip_prefix("  ").is_some_and(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.$".contains(c))
        });
        if !ok {
            return Err(format!("line {}: not a symbol: {line}", n + 1));
        }
    }
    Ok(())
}

/// Starlark: brackets balanced, strings on one line without escapes.
fn starlark(text: &str) -> Result<(), String> {
    let mut depth = 0i32;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        if line.matches('"').count() % 2 != 0 || line.contains('\\') {
            return Err(format!("line {}: bad string: {line}", n + 1));
        }
        let mut in_str = false;
        for c in line.chars() {
            match c {
                '"' => in_str = !in_str,
                '(' | '[' | '{' if !in_str => depth += 1,
                ')' | ']' | '}' if !in_str => depth -= 1,
                _ => {}
            }
        }
        if depth < 0 {
            return Err(format!("line {}: unbalanced", n + 1));
        }
    }
    if depth != 0 {
        return Err("unbalanced brackets".into());
    }
    Ok(())
}

/// Buildroot's `external.desc`: `name:` and `desc:` lines.
fn external_desc(text: &str) -> Result<(), String> {
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let ok = match line.strip_prefix("name: ") {
            Some(name) => name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            None => line.starts_with("desc: "),
        };
        if !ok {
            return Err(format!("line {}: {line}", n + 1));
        }
    }
    Ok(())
}

/// reStructuredText, lightly (docutils runs on a sample): a section title's underline and
/// overline are as long as the title.
fn rst(text: &str) -> Result<(), String> {
    let lines: Vec<&str> = text.lines().collect();
    for (n, w) in lines.windows(2).enumerate() {
        let under = w[1];
        let is_rule = !under.is_empty() && under.chars().all(|c| c == '=' || c == '-');
        if is_rule
            && !w[0].trim().is_empty()
            && !w[0].starts_with(['=', '-'])
            && under.chars().count() != w[0].chars().count()
        {
            {
                return Err(format!(
                    "line {}: underline length differs from the title",
                    n + 2
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitbake_values_are_single_quoted_strings_without_inline_python() {
        assert!(bitbake("A = \"b\"\nB[x.y] ?= \"${C}\"\nexport D = \"e\"\n").is_ok());
        assert!(bitbake("do_x() {\n    echo ${S}\n}\n").is_ok());
        assert!(bitbake("A += \"\\\n    b \\\n\"\n").is_ok());
        assert!(bitbake("A = \"a\"b\"\n").is_err());
        assert!(bitbake("A = \"${@os.system('id')}\"\n").is_err());
        assert!(bitbake("A = \"x\" junk\n").is_err());
        assert!(bitbake("# comment \\\nA = \"b\"\n").is_err());
        assert!(bitbake("fn main() {}\n").is_err());
    }

    #[test]
    fn device_tree_comments_must_be_closed_once() {
        assert!(device_tree("/* a */\n/ {\n\tx: y@1 {\n\t\treg = <0x1 0x2>;\n\t};\n};\n").is_ok());
        assert!(device_tree("/* a */ b */\n").is_err());
        assert!(device_tree("/* a\n").is_err());
        assert!(device_tree("/ {\n").is_err());
    }

    #[test]
    fn rust_must_parse() {
        assert!(rust("fn main() {}\n").is_ok());
        assert!(rust("// x\nfn main() {\n").is_err());
    }

    #[test]
    fn make_comments_must_not_continue() {
        assert!(make("# a\nx := $(y)\n").is_ok());
        assert!(make("# a \\\nx := 1\n").is_err());
        assert!(make("define X\nendef\n").is_ok());
        assert!(make("define X\n").is_err());
        assert!(make("x := $(y\n").is_err());
    }

    #[test]
    fn the_test_suite_files_check() {
        let runner = include_str!("../../../tests/guest/heapgen-test");
        assert!(
            check("test/heapgen-test", runner).is_ok(),
            "{:?}",
            shell(runner)
        );
        assert!(shell("#!/bin/sh\nif true; then\n").is_err());
        assert!(shell("#!/bin/sh\necho 'x\n").is_err());
        assert!(shell("#!/bin/sh\n# if\necho \"done\" # fi\n").is_ok());
        let line = "h m a 4096 4096 0 0 0 0 - - - - -";
        assert!(heaps_conf(&format!("# c\n{line}\n")).is_ok());
        assert!(heaps_conf(&format!("{} 16777216\n", &line[..line.len() - 2])).is_ok());
        assert!(heaps_conf(&format!("{} 16M\n", &line[..line.len() - 2])).is_err());
        assert!(heaps_conf("h m a 4096\n").is_err());
        assert!(heaps_conf(&line.replace(" 0 -", " 2 -")).is_err());
    }

    #[test]
    fn line_based_formats() {
        assert!(ueventd("/dev/dma_heap/a 0660 root video\n").is_ok());
        assert!(ueventd("/dev/dma_heap/a 0660 root\n").is_err());
        assert!(sepolicy("type a_heap_device, dmabuf_heap_device_type, dev_type;\n").is_ok());
        assert!(sepolicy("type a b, dmabuf_heap_device_type, dev_type;\n").is_err());
        assert!(kconfig("config BR2_X\n\tbool \"x\"\n\thelp\n\t  text\n").is_ok());
        assert!(kconfig("config BR2_X\n\tbool \"x\"y\"\n").is_err());
        assert!(check("a.rules", "KERNEL==\"x\"\n").is_ok());
        assert!(check("a.rules", "KERNEL==\"x\n").is_err());
        assert!(check("x.rs", "fn a() {}\u{202e}\n").is_err());
    }
}
