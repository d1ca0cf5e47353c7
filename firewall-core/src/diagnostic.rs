//! Diagnostics: what a check reports, with a stable [`Code`], a message in the
//! user's terms, the offending tokens and a `help:` line that says how to fix it.

use proc_macro2::Span;
use std::fmt;

/// Stable identifier of a check (DSL.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    /// The ssh port would be dropped: applying the policy locks the admin out.
    Lockout,
    /// A port out of 1..=65535, a backwards range, `..` for `..=`.
    PortRange,
    /// The same thing said twice.
    Duplicate,
    /// A `from` restriction on a port that is open to everyone anyway.
    Redundant,
    /// An `open` that a `dnat`/`redirect` of the same port takes first.
    Shadowed,
    /// `forward drop;` on a policy that routes.
    Router,
    /// `redirect A -> A`.
    RedirectSelf,
    /// A malformed address, host bits in a network, a NAT target that is not a host.
    Address,
    /// A bad interface name, an interface both external and trusted, no `extif`.
    Interface,
    /// Unknown words, missing `;`, a once-only statement given twice.
    Syntax,
    /// A failsafe of zero or over an hour.
    Failsafe,
    /// An `assert` the planned rules do not satisfy.
    Assert,
}

impl Code {
    /// Every code, in catalogue order.
    pub const ALL: [Code; 12] = [
        Code::Lockout,
        Code::PortRange,
        Code::Duplicate,
        Code::Redundant,
        Code::Shadowed,
        Code::Router,
        Code::RedirectSelf,
        Code::Address,
        Code::Interface,
        Code::Syntax,
        Code::Failsafe,
        Code::Assert,
    ];

    /// The code as written in messages: `lockout`, `port-range`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Lockout => "lockout",
            Code::PortRange => "port-range",
            Code::Duplicate => "duplicate",
            Code::Redundant => "redundant",
            Code::Shadowed => "shadowed",
            Code::Router => "router",
            Code::RedirectSelf => "redirect-self",
            Code::Address => "address",
            Code::Interface => "interface",
            Code::Syntax => "syntax",
            Code::Failsafe => "failsafe",
            Code::Assert => "assert",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first and last token of what a diagnostic points at. (Spans cannot be
/// joined on stable Rust, so the macro underlines from `start` to `end`.)
#[derive(Debug, Clone, Copy)]
pub struct SpanRange {
    /// Span of the first token.
    pub start: Span,
    /// Span of the last token.
    pub end: Span,
}

impl SpanRange {
    /// A range of one token.
    pub fn single(span: Span) -> SpanRange {
        SpanRange {
            start: span,
            end: span,
        }
    }

    /// From the start of `self` to the end of `other`.
    pub fn to(self, other: SpanRange) -> SpanRange {
        SpanRange {
            start: self.start,
            end: other.end,
        }
    }
}

/// A diagnostic still attached to source tokens (compile-time form).
#[derive(Debug, Clone)]
pub struct SpannedDiagnostic {
    /// Which check.
    pub code: Code,
    /// What is wrong, in the user's terms.
    pub message: String,
    /// How to fix it.
    pub help: String,
    /// The offending tokens.
    pub span: SpanRange,
    /// A second place that explains it (the statement whose rule decides a
    /// failing `assert`), with what to read there. Boxed: most diagnostics
    /// have none, and every parser result carries the type.
    pub note: Option<Box<(SpanRange, String)>>,
}

impl SpannedDiagnostic {
    /// A diagnostic at `span`.
    pub fn new(
        code: Code,
        span: SpanRange,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        SpannedDiagnostic {
            code,
            message: message.into(),
            help: help.into(),
            span,
            note: None,
        }
    }

    /// The same diagnostic with a note at `span`.
    pub fn with_note(mut self, span: SpanRange, note: impl Into<String>) -> Self {
        self.note = Some(Box::new((span, note.into())));
        self
    }

    /// The message as the macro shows it: `code: message` then `help: ...`.
    pub fn rendered_message(&self) -> String {
        format!("{}: {}\n= help: {}", self.code, self.message, self.help)
    }

    /// Detaches it from the tokens, keeping line and column.
    pub fn located(&self) -> Diagnostic {
        let (start, end) = located(self.span);
        Diagnostic {
            code: self.code,
            message: self.message.clone(),
            help: self.help.clone(),
            start,
            end,
            note: self.note.as_deref().map(|(span, message)| {
                let (start, end) = located(*span);
                Note {
                    message: message.clone(),
                    start,
                    end,
                }
            }),
        }
    }
}

/// Line and column (1-based) of the start and the end of `span`.
fn located(span: SpanRange) -> (LineColumn, LineColumn) {
    let s = span.start.start();
    let e = span.end.end();
    (
        LineColumn {
            line: s.line,
            column: s.column + 1,
        },
        LineColumn {
            line: e.line,
            column: e.column + 1,
        },
    )
}

/// A second place a [`Diagnostic`] points at, with what to read there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// What this place has to do with the problem.
    pub message: String,
    /// Where it starts.
    pub start: LineColumn,
    /// Where it ends (exclusive).
    pub end: LineColumn,
}

impl SpannedDiagnostic {
    /// The note as the macro shows it (a second error at the note's span).
    pub fn rendered_note(&self) -> Option<(SpanRange, String)> {
        self.note
            .as_deref()
            .map(|(span, m)| (*span, format!("note: {m}")))
    }
}

/// The one diagnostics collection of a compile: the parser, the lowering and
/// the checks all write into it as they find mistakes, and
/// [`Sink::into_sorted`] hands them out in source order.
#[derive(Debug, Default)]
pub struct Sink(Vec<SpannedDiagnostic>);

impl Sink {
    /// Adds one diagnostic.
    pub fn push(&mut self, diagnostic: SpannedDiagnostic) {
        self.0.push(diagnostic);
    }

    /// Adds a diagnostic at `span`.
    pub fn error(
        &mut self,
        code: Code,
        span: SpanRange,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(SpannedDiagnostic::new(code, span, message, help));
    }

    /// Whether nothing was reported yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many diagnostics were reported.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Every diagnostic, in source order (by where each starts; those that
    /// start at the same place keep the order they were reported in).
    pub fn into_sorted(self) -> Vec<SpannedDiagnostic> {
        let mut list = self.0;
        list.sort_by_key(|d| {
            let s = d.span.start.start();
            (s.line, s.column)
        });
        list
    }
}

/// A position in policy text: line from 1, column from 1 (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineColumn {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for LineColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A problem found in a policy, with where it is.
///
/// ```
/// use firewall_core::{Code, Policy};
/// let err = Policy::parse("extif eth0; opne tcp 80;").unwrap_err();
/// let d = &err.diagnostics()[0];
/// assert_eq!(d.code, Code::Syntax);
/// assert_eq!(d.start.to_string(), "1:13");
/// assert!(d.message.contains("opne"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Which check.
    pub code: Code,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
    /// Where the offending tokens start.
    pub start: LineColumn,
    /// Where they end (exclusive).
    pub end: LineColumn,
    /// A second place that explains it (a failing `assert`: the statement
    /// whose rule decides the counterexample).
    pub note: Option<Note>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: error[{}]: {}\n  help: {}",
            self.start, self.code, self.message, self.help
        )?;
        if let Some(n) = &self.note {
            write!(f, "\n  note: {}: {}", n.start, n.message)?;
        }
        Ok(())
    }
}

/// Every problem found in a policy (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    pub(crate) fn new(list: Vec<Diagnostic>) -> Self {
        Diagnostics(list)
    }

    /// The diagnostics, in source order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.0
    }

    /// Whether any diagnostic carries `code`.
    pub fn has(&self, code: Code) -> bool {
        self.0.iter().any(|d| d.code == code)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
