//! Diagnostics: every problem found in a board file, with its place, key path and rule.
//!
//! A diagnostic names the file, the line and column, the key path (`region[1].alignment`, regions
//! counted from 0 in file order) and a stable rule name (`heap-name-reserved`), and shows the source
//! line with a caret. Conflicts carry a secondary label on the other side. Rendering goes through
//! annotate-snippets, the renderer cargo uses for TOML errors.

use std::fmt;
use std::ops::Range;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// A labelled byte range of the board file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// Byte range in the source.
    pub span: Range<usize>,
    /// Text shown next to the caret.
    pub text: String,
}

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The board file is refused.
    Error,
    /// The board file is accepted, but something in it deserves a second look.
    Warning,
}

/// One problem in a board file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable rule name, e.g. `heap-name-reserved`.
    pub rule: &'static str,
    /// Key path, e.g. `region[1].alignment`; empty for the document itself.
    pub path: String,
    /// One-line description of the problem.
    pub message: String,
    /// Where the problem is.
    pub primary: Label,
    /// The other side of a conflict, if any.
    pub secondary: Vec<Label>,
    /// A suggestion, if any.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without secondary labels or help.
    pub fn new(
        rule: &'static str,
        path: impl Into<String>,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Error,
            rule,
            path: path.into(),
            message: message.into(),
            primary: Label {
                span,
                text: label.into(),
            },
            secondary: Vec::new(),
            help: None,
        }
    }

    /// Adds a secondary label (the other side of a conflict).
    pub fn with_secondary(mut self, span: Range<usize>, text: impl Into<String>) -> Self {
        self.secondary.push(Label {
            span,
            text: text.into(),
        });
        self
    }

    /// Makes this a warning: reported, but the board file is accepted.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Every problem found in one board file, in source order.
#[derive(Clone, Debug)]
pub struct Diagnostics {
    /// The file name as given by the user (shown in `file:line:col`).
    pub file: String,
    /// The file's text ("" when it could not be read).
    pub source: String,
    /// The problems, sorted by position then rule.
    pub list: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Collects diagnostics for `file`, sorting them by position.
    pub fn new(
        file: impl Into<String>,
        source: impl Into<String>,
        mut list: Vec<Diagnostic>,
    ) -> Self {
        list.sort_by(|a, b| {
            (a.primary.span.start, a.primary.span.end, a.rule, &a.message).cmp(&(
                b.primary.span.start,
                b.primary.span.end,
                b.rule,
                &b.message,
            ))
        });
        list.dedup();
        Self {
            file: file.into(),
            source: source.into(),
            list,
        }
    }

    /// Whether there is no problem.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.source, offset)
    }

    /// Number of errors (the rest are warnings).
    pub fn errors(&self) -> usize {
        self.list
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// The rule names, in order (for tests).
    pub fn rules(&self) -> Vec<&'static str> {
        self.list.iter().map(|d| d.rule).collect()
    }

    /// Renders every diagnostic and a summary line, with or without ANSI colour.
    pub fn render(&self, color: bool) -> String {
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let mut out = String::new();
        for d in &self.list {
            let (line, col) = self.line_col(d.primary.span.start);
            let title = if d.path.is_empty() {
                d.message.clone()
            } else {
                format!("{}: {}", d.path, d.message)
            };
            let mut snippet = Snippet::source(self.source.as_str())
                .path(self.file.as_str())
                .fold(true)
                .annotation(
                    AnnotationKind::Primary
                        .span(clamp(&self.source, &d.primary.span))
                        .label(d.primary.text.as_str()),
                );
            for s in &d.secondary {
                snippet = snippet.annotation(
                    AnnotationKind::Context
                        .span(clamp(&self.source, &s.span))
                        .label(s.text.as_str()),
                );
            }
            let level = match d.severity {
                Severity::Error => Level::ERROR,
                Severity::Warning => Level::WARNING,
            };
            let mut group: Group<'_> = level
                .primary_title(title)
                .id(d.rule)
                .element(snippet)
                .element(
                    Level::NOTE.message(format!("rule `{}` at {}:{line}:{col}", d.rule, self.file)),
                );
            if let Some(help) = &d.help {
                group = group.element(Level::HELP.message(help.as_str()));
            }
            out.push_str(&renderer.render(&[group]));
            out.push_str("\n\n");
        }
        let n = self.errors();
        let w = self.list.len() - n;
        let summary = if n > 0 {
            let summary = format!(
                "could not use `{}` due to {n} previous error{}",
                self.file,
                if n == 1 { "" } else { "s" }
            );
            Level::ERROR.primary_title(summary)
        } else {
            let summary = format!(
                "`{}` generated {w} warning{}",
                self.file,
                if w == 1 { "" } else { "s" }
            );
            Level::WARNING.primary_title(summary)
        };
        out.push_str(&renderer.render(&[Group::with_title(summary)]));
        out.push('\n');
        out
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for Diagnostics {}

fn clamp(source: &str, span: &Range<usize>) -> Range<usize> {
    let mut start = span.start.min(source.len());
    while !source.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = span.end.clamp(start, source.len());
    while !source.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// 1-based line and column (in characters) of a byte offset in `source`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = clamp(source, &(offset..offset)).start;
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = source[line_start..offset].chars().count() + 1;
    (line, col)
}

/// Edit distance between two strings, a transposition counting as one edit (for "did you mean").
///
/// Memory is three rows of the shorter string's length; time is the product of the lengths.
pub fn edit_distance(a: &str, b: &str) -> usize {
    edit_distance_within(a, b, usize::MAX).unwrap_or(usize::MAX)
}

/// [`edit_distance`] when it is at most `max`, else `None`, found without finishing the table
/// once every cell of a row is above `max`.
fn edit_distance_within(a: &str, b: &str, max: usize) -> Option<usize> {
    let (a, b) = if a.len() < b.len() { (b, a) } else { (a, b) };
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() - b.len().min(a.len()) > max {
        return None;
    }
    // Rows i-2, i-1 and i of the table, over the shorter string.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        let mut least = row[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(before[j - 2] + 1);
            }
            row[j] = v;
            least = least.min(v);
        }
        if least > max {
            return None;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut row);
    }
    Some(prev[b.len()]).filter(|d| *d <= max)
}

/// The candidate closest to `word`, if it is close enough to be a likely typo: at most a third
/// of the candidate's length away (at least one edit).
///
/// Cheap on any input: a word with more characters than a candidate plus the edits allowed is no
/// typo of it, so a huge word is refused from its length, before it is copied or compared.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let allowed = |c: &str| (c.len() / 3).max(1);
    let longest = candidates.iter().map(|c| c.len() + allowed(c)).max()?;
    // A character is at most 4 bytes: more bytes than this is more characters than any
    // candidate's length plus its allowance.
    if word.len() > 4 * longest {
        return None;
    }
    let normalized = word.replace('_', "-").to_ascii_lowercase();
    candidates
        .iter()
        .filter_map(|c| edit_distance_within(&normalized, c, allowed(c)).map(|d| (d, *c)))
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, src.find('=').unwrap()), (1, 3));
        let second_eq = src.rfind('=').unwrap();
        assert_eq!(line_col(src, second_eq), (2, 4));
    }

    #[test]
    fn suggestions_catch_typos_only() {
        let keys = ["alignment", "granule", "max-alloc", "guard"];
        assert_eq!(did_you_mean("alignmnet", &keys), Some("alignment"));
        assert_eq!(did_you_mean("max_alloc", &keys), Some("max-alloc"));
        assert_eq!(did_you_mean("colour", &keys), None);
        assert_eq!(did_you_mean("nmae", &["name", "arch"]), Some("name"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("sitting", "kitten"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("granlue", "granule"), 1);
        assert_eq!(did_you_mean("GRANULE", &keys), Some("granule"));
        assert_eq!(did_you_mean(&"x".repeat(1000), &keys), None);
    }

    proptest::proptest! {
        /// The bounded distance agrees with the full one wherever it answers.
        #[test]
        fn bounded_distance_agrees(a in "[a-c_-]{0,12}", b in "[a-c_-]{0,12}", max in 0usize..6) {
            let full = edit_distance(&a, &b);
            proptest::prop_assert_eq!(edit_distance_within(&a, &b, max), (full <= max).then_some(full));
            proptest::prop_assert_eq!(full, edit_distance(&b, &a));
        }
    }

    #[test]
    fn rendering_names_file_line_col_path_and_rule() {
        let src = "[board]\nname = \"X\"\n";
        let d = Diagnostic::new("board-name", "board.name", 15..18, "bad name", "here");
        let text = Diagnostics::new("b.toml", src, vec![d]).render(false);
        assert!(
            text.contains("error[board-name]: board.name: bad name"),
            "{text}"
        );
        assert!(text.contains("b.toml:2:8"), "{text}");
        assert!(text.contains("^^^ here"), "{text}");
        assert!(text.contains("due to 1 previous error"), "{text}");
    }
}
