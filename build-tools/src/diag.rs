//! Diagnostics: every problem found in a board file, with its place, key path and rule.
//!
//! A diagnostic names the file, the line and column, the key path (`region[1].alignment`, regions
//! counted from 0 in file order) and a stable rule name (`heap-name-reserved`), and shows the source
//! line with a caret. Conflicts carry a secondary label on the other side. Rendering goes through
//! annotate-snippets, the renderer cargo uses for TOML errors.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;

use annotate_snippets::{Annotation, AnnotationKind, Group, Level, Renderer, Snippet};

/// A labelled byte range of the board file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// Byte range in the source.
    pub span: Range<usize>,
    /// Text shown next to the caret.
    pub text: String,
}

/// A rule of the board file: what users see as `error[<name>]`, with what it checks and where
/// it is documented. Every rule is a constant next to its check and registered in
/// [`crate::validate::RULES`]; diagnostics are built from it ([`Rule::at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The stable name, e.g. `heap-name-reserved`.
    pub name: &'static str,
    /// What the rule checks, in one line.
    pub summary: &'static str,
    /// Where `Documentation/board-file.rst` describes what the rule checks: a key
    /// (`region.heap`), or a section title for the rules of the file as a whole.
    pub docs: &'static str,
}

impl Rule {
    /// A diagnostic of this rule; see [`Diagnostic::new`].
    pub fn at(
        &self,
        path: impl Into<String>,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::new(self, path, span, message, label)
    }
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
    /// A diagnostic of `rule` without secondary labels or help.
    pub fn new(
        rule: &Rule,
        path: impl Into<String>,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Error,
            rule: rule.name,
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

/// Diagnostics as a pass finds them, in bounded memory: the first [`MAX_KEPT`] by position
/// are kept (exact duplicates once), the others only counted. A file of a million problems
/// costs no more memory than one of a hundred.
#[derive(Clone, Debug, Default)]
pub struct Collected {
    kept: BTreeSet<ByPosition>,
    omitted_errors: usize,
    omitted_warnings: usize,
}

impl Collected {
    /// Nothing collected yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a diagnostic: kept if it is among the first [`MAX_KEPT`] by position, else counted.
    pub fn push(&mut self, d: Diagnostic) {
        if self.kept.len() >= MAX_KEPT
            && self
                .kept
                .last()
                .is_some_and(|last| ByPosition::key_cmp(&d, &last.0).is_gt())
        {
            self.omit(&d);
            return;
        }
        if self.kept.insert(ByPosition(d)) && self.kept.len() > MAX_KEPT {
            if let Some(last) = self.kept.pop_last() {
                self.omit(&last.0);
            }
        }
    }

    fn omit(&mut self, d: &Diagnostic) {
        match d.severity {
            Severity::Error => self.omitted_errors += 1,
            Severity::Warning => self.omitted_warnings += 1,
        }
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.omitted_errors == 0 && self.omitted_warnings == 0
    }

    /// Whether a diagnostic starting at byte `start` could still be kept: when not, it will
    /// only be counted, and what only its text needs (a "did you mean") need not be computed.
    pub fn wants(&self, start: usize) -> bool {
        self.kept.len() < MAX_KEPT
            || self
                .kept
                .last()
                .is_some_and(|last| start <= last.0.primary.span.start)
    }

    /// The kept diagnostics, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.kept.iter().map(|k| &k.0)
    }

    /// The kept diagnostics, in order.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.kept.into_iter().map(|k| k.0).collect()
    }

    /// Adds everything `other` collected.
    pub fn append(&mut self, other: Collected) {
        self.omitted_errors += other.omitted_errors;
        self.omitted_warnings += other.omitted_warnings;
        self.extend(other.into_vec());
    }
}

impl Extend<Diagnostic> for Collected {
    fn extend<I: IntoIterator<Item = Diagnostic>>(&mut self, iter: I) {
        for d in iter {
            self.push(d);
        }
    }
}

impl FromIterator<Diagnostic> for Collected {
    fn from_iter<I: IntoIterator<Item = Diagnostic>>(iter: I) -> Self {
        let mut c = Self::new();
        c.extend(iter);
        c
    }
}

/// A diagnostic ordered by position, then rule and message, then everything else.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ByPosition(Diagnostic);

impl ByPosition {
    fn key_cmp(a: &Diagnostic, b: &Diagnostic) -> std::cmp::Ordering {
        let labels = |d: &Diagnostic| -> Vec<(usize, usize, String)> {
            d.secondary
                .iter()
                .map(|l| (l.span.start, l.span.end, l.text.clone()))
                .collect()
        };
        (a.primary.span.start, a.primary.span.end, a.rule, &a.message)
            .cmp(&(b.primary.span.start, b.primary.span.end, b.rule, &b.message))
            .then_with(|| {
                let warning = |d: &Diagnostic| d.severity == Severity::Warning;
                (&a.path, &a.primary.text, warning(a), &a.help).cmp(&(
                    &b.path,
                    &b.primary.text,
                    warning(b),
                    &b.help,
                ))
            })
            .then_with(|| labels(a).cmp(&labels(b)))
    }
}

impl PartialOrd for ByPosition {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByPosition {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        Self::key_cmp(&self.0, &other.0)
    }
}

/// The problems found in one board file: the first [`MAX_KEPT`] in source order, and the
/// number of the others.
#[derive(Clone, Debug)]
pub struct Diagnostics {
    /// The file name as given by the user (shown in `file:line:col`).
    pub file: String,
    /// The file's text ("" when it could not be read).
    pub source: String,
    /// The first [`MAX_KEPT`] problems, sorted by position then rule.
    pub list: Vec<Diagnostic>,
    /// Errors found beyond the first [`MAX_KEPT`] problems, not in `list`.
    pub omitted_errors: usize,
    /// Warnings found beyond the first [`MAX_KEPT`] problems, not in `list`.
    pub omitted_warnings: usize,
}

impl Diagnostics {
    /// Collects diagnostics for `file`, sorting them by position (and keeping the first
    /// [`MAX_KEPT`]).
    pub fn new(file: impl Into<String>, source: impl Into<String>, list: Vec<Diagnostic>) -> Self {
        Self::collected(file, source, list.into_iter().collect())
    }

    /// The diagnostics collected for `file`.
    pub fn collected(
        file: impl Into<String>,
        source: impl Into<String>,
        collected: Collected,
    ) -> Self {
        let (omitted_errors, omitted_warnings) =
            (collected.omitted_errors, collected.omitted_warnings);
        Self {
            file: file.into(),
            source: source.into(),
            list: collected.into_vec(),
            omitted_errors,
            omitted_warnings,
        }
    }

    /// Whether there is no problem.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty() && self.omitted_errors == 0 && self.omitted_warnings == 0
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.source, offset)
    }

    /// Number of errors, shown or not.
    pub fn errors(&self) -> usize {
        self.list
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
            + self.omitted_errors
    }

    /// Number of warnings, shown or not.
    pub fn warnings(&self) -> usize {
        self.list.len() + self.omitted_errors + self.omitted_warnings - self.errors()
    }

    /// The rule names, in order (for tests).
    pub fn rules(&self) -> Vec<&'static str> {
        self.list.iter().map(|d| d.rule).collect()
    }

    /// Renders the diagnostics, a count of those not kept, and a summary line,
    /// with or without ANSI colour.
    ///
    /// The work is linear in the file and the output: line starts are computed once, and each
    /// diagnostic hands the renderer only the lines it points at.
    pub fn render(&self, color: bool) -> String {
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let lines = LineIndex::new(&self.source);
        let file = inert(&self.file);
        let mut out = String::new();
        for d in &self.list {
            let (line, col) = lines.line_col(&self.source, d.primary.span.start);
            let title = if d.path.is_empty() {
                inert(&d.message).into_owned()
            } else {
                format!("{}: {}", inert(&d.path), inert(&d.message))
            };
            let level = match d.severity {
                Severity::Error => Level::ERROR,
                Severity::Warning => Level::WARNING,
            };
            let mut group: Group<'_> = Group::with_title(level.primary_title(title).id(d.rule));
            for piece in self.snippets(&lines, d, &file) {
                group = match piece {
                    Piece::Snippet(snippet) => group.element(snippet),
                    Piece::Note(note) => {
                        group.element(Level::NOTE.message(inert(&note).into_owned()))
                    }
                };
            }
            group = group
                .element(Level::NOTE.message(format!("rule `{}` at {file}:{line}:{col}", d.rule)));
            if let Some(help) = &d.help {
                group = group.element(Level::HELP.message(inert(help).into_owned()));
            }
            out.push_str(&renderer.render(&[group]));
            out.push_str("\n\n");
        }
        if self.omitted_errors + self.omitted_warnings > 0 {
            let (errors, warnings) = (self.omitted_errors, self.omitted_warnings);
            let mut more = Vec::new();
            for (n, what) in [(errors, "error"), (warnings, "warning")] {
                if n > 0 {
                    more.push(format!("{n} more {what}{}", if n == 1 { "" } else { "s" }));
                }
            }
            let note = format!(
                "and {}, not shown (at most {MAX_KEPT} are); fix these first",
                more.join(" and ")
            );
            out.push_str(&renderer.render(&[Group::with_title(Level::NOTE.primary_title(note))]));
            out.push_str("\n\n");
        }
        let n = self.errors();
        let w = self.warnings();
        let summary = if n > 0 {
            let summary = format!(
                "could not use `{}` due to {n} previous error{}",
                inert(&self.file),
                if n == 1 { "" } else { "s" }
            );
            Level::ERROR.primary_title(summary)
        } else {
            let summary = format!(
                "`{}` generated {w} warning{}",
                inert(&self.file),
                if w == 1 { "" } else { "s" }
            );
            Level::WARNING.primary_title(summary)
        };
        out.push_str(&renderer.render(&[Group::with_title(summary)]));
        out.push('\n');
        out
    }
}

/// What shows one group of labels of a diagnostic.
enum Piece<'s> {
    /// A snippet of the source.
    Snippet(Snippet<'s, Annotation<'s>>),
    /// A note naming a position (a label on a long line that is not the primary one).
    Note(String),
}

/// One label of a diagnostic, placed: its span (clamped to the source) and the 0-based lines
/// of its first and last character.
struct Placed<'s> {
    span: Range<usize>,
    line: usize,
    last_line: usize,
    primary: bool,
    text: &'s str,
}

impl Diagnostics {
    /// The snippets of a diagnostic.
    ///
    /// Each snippet holds only the lines from its first label to its last. Labels more than
    /// [`SNIPPET_GAP`] lines or [`SNIPPET_BYTES`] bytes apart go to separate snippets, the
    /// primary label's first; a label longer than [`SNIPPET_BYTES`] is shown by its first line.
    /// The primary label on a line longer than [`LONG_LINE`] is shown in a window of that line,
    /// without a `-->` line (the note under it names the position); another label on such a
    /// line becomes a note with its position. So a diagnostic costs the same whether the file is
    /// small or large.
    fn snippets<'s>(
        &'s self,
        lines: &LineIndex,
        d: &'s Diagnostic,
        file: &'s str,
    ) -> Vec<Piece<'s>> {
        let mut labels: Vec<Placed<'s>> = std::iter::once((&d.primary, true))
            .chain(d.secondary.iter().map(|s| (s, false)))
            .map(|(l, primary)| {
                let mut span = clamp(&self.source, &l.span);
                let line = lines.line_of(span.start);
                if span.len() > SNIPPET_BYTES {
                    let line_end = lines.end_of(line, &self.source);
                    span.end = span.end.min(line_end).max(span.start);
                }
                let last_line = lines.line_of(span.end.saturating_sub(1).max(span.start));
                Placed {
                    span,
                    line,
                    last_line,
                    primary,
                    text: l.text.as_str(),
                }
            })
            .collect();
        labels.sort_by_key(|l| (l.line, !l.primary, l.span.start));
        let mut groups: Vec<Vec<Placed<'s>>> = Vec::new();
        for label in labels {
            let near = groups.last().is_some_and(|g: &Vec<Placed<'s>>| {
                let first = lines.start_of(g[0].line);
                let long_line =
                    lines.end_of(label.line, &self.source) - lines.start_of(label.line) > LONG_LINE;
                label.line <= g.iter().map(|l| l.last_line).max().unwrap_or(0) + SNIPPET_GAP
                    && label.span.end.saturating_sub(first) <= SNIPPET_BYTES
                    && !(long_line && {
                        let lo = g.iter().map(|l| l.span.start).min().unwrap_or(0);
                        let hi = g.iter().map(|l| l.span.end).max().unwrap_or(0);
                        label.span.end.max(hi) - label.span.start.min(lo) > LONG_LINE / 2
                    })
            });
            match groups.last_mut() {
                Some(g) if near => g.push(label),
                _ => groups.push(vec![label]),
            }
        }
        groups.sort_by_key(|g| !g.iter().any(|l| l.primary));
        groups
            .into_iter()
            .map(|g| self.snippet(lines, g, file))
            .collect()
    }

    /// One snippet of [`Diagnostics::snippets`].
    fn snippet<'s>(&'s self, lines: &LineIndex, g: Vec<Placed<'s>>, file: &'s str) -> Piece<'s> {
        let first = g[0].line;
        let last_end = g.iter().map(|l| l.span.end).max().unwrap_or(0);
        let last_line = g.iter().map(|l| l.last_line).max().unwrap_or(first);
        let mut start = lines.start_of(first);
        let mut end = lines.end_of(last_line, &self.source);
        let mut windowed = false;
        if end - start > LONG_LINE && last_line == first {
            if !g.iter().any(|l| l.primary) {
                let (line, col) = lines.line_col(&self.source, g[0].span.start);
                return Piece::Note(format!("{} at {file}:{line}:{col}", g[0].text));
            }
            // A window of a long line.
            let lo = g.iter().map(|l| l.span.start).min().unwrap_or(start);
            let hi = last_end.min(lo + LONG_LINE / 2);
            let line_end = self.source[start..end].trim_end_matches(['\n', '\r']).len() + start;
            start = floor_boundary(&self.source, lo.saturating_sub(WINDOW_CONTEXT).max(start));
            end = ceil_boundary(&self.source, (hi + WINDOW_CONTEXT).min(line_end));
            windowed = true;
        }
        let mut snippet = Snippet::source(inert_source(&self.source[start..end]))
            .line_start(first + 1)
            .fold(true);
        if !windowed {
            snippet = snippet.path(file);
        }
        for l in g {
            let kind = if l.primary {
                AnnotationKind::Primary
            } else {
                AnnotationKind::Context
            };
            let s = l.span.start.clamp(start, end) - start;
            let e = l.span.end.clamp(start, end) - start;
            snippet = snippet.annotation(kind.span(s..e).label(inert(l.text)));
        }
        Piece::Snippet(snippet)
    }
}

/// The largest stretch of the file one snippet shows, in bytes.
pub const SNIPPET_BYTES: usize = 16 << 10;

/// Lines longer than this many bytes are shown as a window around the label.
pub const LONG_LINE: usize = 1024;

/// Bytes of context on each side of a label in a window of a long line.
const WINDOW_CONTEXT: usize = 64;

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// The most diagnostics of one board file that are kept and shown (the first by position);
/// the others are counted.
pub const MAX_KEPT: usize = 100;

/// Labels of one diagnostic at most this many lines apart are shown in one snippet (the lines
/// between folded); farther apart, in separate snippets.
pub const SNIPPET_GAP: usize = 64;

/// The byte offsets where the lines of a text start, for positions in O(log lines).
#[derive(Debug)]
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(source: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Self { starts }
    }

    /// The 0-based line holding byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset) - 1
    }

    /// The byte offset where 0-based `line` starts.
    fn start_of(&self, line: usize) -> usize {
        self.starts[line]
    }

    /// The byte offset where 0-based `line` ends, its line break included.
    fn end_of(&self, line: usize, source: &str) -> usize {
        self.starts.get(line + 1).copied().unwrap_or(source.len())
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn line_col(&self, source: &str, offset: usize) -> (usize, usize) {
        let offset = clamp(source, &(offset..offset)).start;
        let line = self.line_of(offset);
        let col = source[self.starts[line]..offset].chars().count() + 1;
        (line + 1, col)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for Diagnostics {}

/// `text` with the characters a terminal would act on, or that reorder what it shows, written as
/// escapes (`\u{1b}`): messages, labels and help quote values of the board file, which may hold
/// anything. annotate-snippets makes source lines and titles visible itself, not help lines.
pub fn inert(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c != '\n' && crate::validate::is_unprintable(c);
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A source line as shown: the characters annotate-snippets leaves as they are and a terminal
/// would act on -- C1 controls (U+0080..U+009F; U+009B is a CSI) and the invisible formatting
/// characters of [`crate::validate::is_unprintable`] outside ASCII -- replaced by a character of
/// the same UTF-8 length (`¿`, `\u{fffd}`), so that spans stay valid.
fn inert_source(text: &str) -> std::borrow::Cow<'_, str> {
    let replace = |c: char| !c.is_ascii() && crate::validate::is_unprintable(c);
    if !text.chars().any(replace) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| match (replace(c), c.len_utf8()) {
                (false, _) => c,
                (true, 2) => '\u{bf}',
                (true, _) => '\u{fffd}',
            })
            .collect(),
    )
}

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
    LineIndex::new(source).line_col(source, offset)
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

/// The longest name [`did_you_mean`] suggests, in bytes: the longest any name of a board file
/// may be (heap names, 64).
pub const MAX_SUGGESTION: usize = 64;

/// The candidate closest to `word`, if it is close enough to be a likely typo: at most a third
/// of the candidate's length away (at least one edit).
///
/// Cheap on any input: a candidate longer than [`MAX_SUGGESTION`] bytes is no valid name and
/// never suggested; a word with more characters than a candidate plus the edits allowed is no
/// typo of it, so a huge word is refused from its length, before it is copied or compared.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let allowed = |c: &str| (c.len() / 3).max(1);
    let candidates: Vec<&'a str> = candidates
        .iter()
        .copied()
        .filter(|c| c.len() <= MAX_SUGGESTION)
        .collect();
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
    fn a_label_on_a_long_line_is_shown_in_a_window() {
        let src = format!("a = [{}\"x\"]\n", "1, ".repeat(100_000));
        let at = src.find('"').unwrap();
        let d = Diagnostic::new(
            &crate::model::TYPE_MISMATCH,
            "a[100000]",
            at..at + 3,
            "bad",
            "here",
        )
        .with_secondary(0..1, "the array");
        let text = Diagnostics::new("b.toml", src.as_str(), vec![d]).render(false);
        assert!(text.len() < 2000, "{text}");
        assert!(text.contains("^^^ here"), "{text}");
        assert!(text.contains("b.toml:1:300006"), "{text}");
        assert!(text.contains("the array at b.toml:1:1"), "{text}");
    }

    #[test]
    fn values_in_messages_cannot_drive_the_terminal() {
        let src = "name = \"\u{1b}[2J\"\n";
        let d = Diagnostic::new(
            &crate::validate::board::REGION_NAME,
            "region[0].name",
            7..13,
            "bad `\u{1b}[2J`",
            "x\u{7}",
        )
        .with_help("did you mean `\u{1b}[2K\u{202e}`?");
        let text = Diagnostics::new("b\u{1b}.toml", src, vec![d]).render(false);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(!text.contains('\u{202e}'), "{text:?}");
        assert!(text.contains("\\u{1b}[2K\\u{202e}"), "{text}");
    }

    #[test]
    fn rendering_names_file_line_col_path_and_rule() {
        let src = "[board]\nname = \"X\"\n";
        let d = Diagnostic::new(
            &crate::validate::board::BOARD_NAME,
            "board.name",
            15..18,
            "bad name",
            "here",
        );
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
