//! Parity between the two entry points: for every trybuild fail case, the
//! policy text inside `firewall! { ... }` given to `Policy::parse` must report
//! the same diagnostics (code, message, help, line:column, underline width) as
//! the macro's `.stderr` snapshot. Also: every check code has a fail case.

#[path = "common/sources.rs"]
mod sources;

use firewall::{Code, Diagnostic, Policy};
use std::collections::BTreeSet;
use std::fs;

/// One diagnostic as the macro showed it in a `.stderr` snapshot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Shown {
    line: usize,
    column: usize,
    code: String,
    message: String,
    help: String,
    /// Underline width when start and end are on the same line.
    width: Option<usize>,
    /// The note that follows it (a failing `assert`): line, column, text.
    note: Option<(usize, usize, String)>,
}

/// The diagnostics of a `.stderr` snapshot whose code is one of ours.
fn parse_stderr(stderr: &str) -> Vec<Shown> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(rest) = lines[i].strip_prefix("error: ") else {
            i += 1;
            continue;
        };
        // rustc's lexer refuses some text before the macro runs (a no-break
        // space); `Policy::parse` must refuse it the same way, as `syntax`.
        if rest.starts_with("unknown start of token: ") {
            if let Some(shown) = lexer_error(&lines, i, rest) {
                out.push(shown);
            }
            i += 1;
            continue;
        }
        let Some((code, message)) = rest.split_once(": ") else {
            i += 1;
            continue;
        };
        if !Code::ALL.iter().any(|c| c.as_str() == code) {
            i += 1;
            continue;
        }
        let help = lines
            .get(i + 1)
            .and_then(|l| l.trim_start().strip_prefix("= help: "))
            .unwrap_or_else(|| panic!("no help line after {:?}", lines[i]))
            .to_string();
        let (arrow_at, arrow) = lines[i..]
            .iter()
            .enumerate()
            .find_map(|(k, l)| l.trim_start().strip_prefix("--> ").map(|a| (i + k, a)))
            .unwrap_or_else(|| panic!("no `-->` line after {:?}", lines[i]));
        let mut parts = arrow.rsplitn(3, ':');
        let column: usize = parts.next().unwrap().parse().unwrap();
        let line: usize = parts.next().unwrap().parse().unwrap();
        // The first underline: `  |     ^^^^` (single line) or `  | /` (multi-line).
        let mut width = None;
        for l in &lines[arrow_at + 1..] {
            if l.starts_with("error") || l.is_empty() {
                break;
            }
            let Some(bar) = l.find('|') else { continue };
            let after = &l[bar + 1..];
            if after.trim_start().starts_with('^') && !after.contains('_') {
                let lead = after.chars().take_while(|c| *c == ' ').count();
                assert_eq!(
                    lead, column,
                    "underline does not start at the reported column in {l:?}"
                );
                width = Some(after.trim().chars().filter(|c| *c == '^').count());
                break;
            }
            if after.trim_start().starts_with('/') || after.contains('_') {
                break;
            }
        }
        // A note is the next error, `error: note: ...`, with its own `-->`.
        let note = lines[arrow_at + 1..]
            .iter()
            .position(|l| l.starts_with("error"))
            .and_then(|k| {
                let at = arrow_at + 1 + k;
                let text = lines[at].strip_prefix("error: note: ")?;
                let arrow = lines[at..]
                    .iter()
                    .find_map(|l| l.trim_start().strip_prefix("--> "))?;
                let mut parts = arrow.rsplitn(3, ':');
                let column: usize = parts.next()?.parse().ok()?;
                let line: usize = parts.next()?.parse().ok()?;
                Some((line, column, text.to_string()))
            });
        out.push(Shown {
            line,
            column,
            code: code.to_string(),
            message: message.to_string(),
            help,
            width,
            note,
        });
        i = arrow_at + 1;
    }
    out
}

/// rustc's "unknown start of token" error at `lines[i]`, as a `syntax`
/// diagnostic: its `help:` block is the help, its `-->` the position.
fn lexer_error(lines: &[&str], i: usize, message: &str) -> Option<Shown> {
    let arrow = lines[i..]
        .iter()
        .find_map(|l| l.trim_start().strip_prefix("--> "))?;
    let mut parts = arrow.rsplitn(3, ':');
    let column: usize = parts.next()?.parse().ok()?;
    let line: usize = parts.next()?.parse().ok()?;
    let help = lines[i + 1..]
        .iter()
        .take_while(|l| !l.starts_with("error"))
        .find_map(|l| l.strip_prefix("help: "))?;
    Some(Shown {
        line,
        column,
        code: "syntax".to_string(),
        message: message.to_string(),
        help: help.to_string(),
        width: Some(1),
        note: None,
    })
}

/// Where `d` lands in the test file, given where the policy text starts.
fn shown_from_parse(d: &Diagnostic, line0: usize, col0: usize, with_width: bool) -> Shown {
    let to_file = |line: usize, column: usize| {
        if line == 1 {
            (line0, col0 + column - 1)
        } else {
            (line0 + line - 1, column)
        }
    };
    let (line, column) = to_file(d.start.line, d.start.column);
    Shown {
        line,
        column,
        code: d.code.as_str().to_string(),
        message: d.message.clone(),
        help: d.help.clone(),
        width: (with_width && d.start.line == d.end.line)
            .then(|| d.end.column.saturating_sub(d.start.column)),
        note: d.note.as_ref().map(|n| {
            let (line, column) = to_file(n.start.line, n.start.column);
            (line, column, n.message.clone())
        }),
    }
}

#[test]
fn parse_reports_what_the_macro_reports() {
    let mut mismatches = Vec::new();
    for rs in sources::rust_files("tests/ui/fail") {
        let source = fs::read_to_string(&rs).unwrap();
        let stderr_path = rs.with_extension("stderr");
        let stderr = fs::read_to_string(&stderr_path)
            .unwrap_or_else(|e| panic!("{}: {e}", stderr_path.display()));
        let macro_side = parse_stderr(&stderr);
        assert!(
            !macro_side.is_empty(),
            "{}: no firewall diagnostic in the snapshot",
            stderr_path.display()
        );
        let block = sources::blocks(&source)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{}: no `firewall! {{` block", rs.display()));
        let (text, line0, col0) = (block.text, block.line, block.column);
        let diags = match Policy::parse(&text) {
            Ok(_) => {
                mismatches.push(format!(
                    "{}: Policy::parse accepts a policy the .stderr snapshot refuses",
                    rs.display()
                ));
                continue;
            }
            Err(e) => e,
        };
        let mut parse_side: Vec<Shown> = diags
            .diagnostics()
            .iter()
            .zip(&macro_side)
            .map(|(d, m)| shown_from_parse(d, line0, col0, m.width.is_some()))
            .collect();
        // Extra parse diagnostics (if any) show up as a length mismatch.
        parse_side.extend(
            diags.diagnostics()[parse_side.len().min(diags.diagnostics().len())..]
                .iter()
                .map(|d| shown_from_parse(d, line0, col0, false)),
        );
        let mut m = macro_side.clone();
        if text.trim().is_empty() {
            // No tokens: the macro can only point at its invocation, the text
            // at its start. Compare everything but the position.
            for s in m.iter_mut().chain(parse_side.iter_mut()) {
                (s.line, s.column, s.width, s.note) = (0, 0, None, None);
            }
        }
        m.sort();
        parse_side.sort();
        if m != parse_side {
            mismatches.push(format!(
                "{}:\n  macro: {m:#?}\n  parse: {parse_side:#?}",
                rs.display()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} case(s) differ between firewall! and Policy::parse:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_code_has_a_fail_case() {
    let mut seen = BTreeSet::new();
    for rs in sources::rust_files("tests/ui/fail") {
        let stderr = fs::read_to_string(rs.with_extension("stderr")).unwrap_or_default();
        for shown in parse_stderr(&stderr) {
            seen.insert(shown.code);
        }
    }
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !seen.contains(*c))
        .collect();
    assert!(missing.is_empty(), "no fail case for: {missing:?}");
}

#[test]
fn fail_cases_are_named_after_their_code() {
    for rs in sources::rust_files("tests/ui/fail") {
        let name = rs.file_stem().unwrap().to_str().unwrap().to_string();
        if name == "three_mistakes" {
            continue; // several codes on purpose
        }
        let stderr = fs::read_to_string(rs.with_extension("stderr")).unwrap_or_default();
        let codes: BTreeSet<String> = parse_stderr(&stderr)
            .into_iter()
            .map(|s| s.code.replace('-', "_"))
            .collect();
        assert_eq!(
            codes.len(),
            1,
            "{}: one mistake per case, found {codes:?}",
            rs.display()
        );
        let code = codes.into_iter().next().unwrap();
        assert!(
            name.starts_with(&format!("{code}_")) || name == code,
            "{}: named after the wrong code (reports {code})",
            rs.display()
        );
    }
}
