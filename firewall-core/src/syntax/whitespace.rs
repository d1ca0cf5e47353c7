//! Whitespace as rustc's lexer sees it. `proc_macro2`'s own lexer (what
//! [`crate::Policy::parse`] runs on) skips every Unicode space, but rustc only
//! skips Rust's whitespace (`Pattern_White_Space`): a no-break space pasted from
//! a web page is refused by the `firewall!` macro ("unknown start of token").
//! The text path refuses it too, with rustc's message, so a policy file
//! that parses is also a valid macro body.

use crate::diagnostic::{Code, SpanRange, SpannedDiagnostic};
use proc_macro2::{Delimiter, TokenStream, TokenTree};
use std::ops::Range;
use std::str::FromStr;

/// A Unicode space that Rust does not count as whitespace, with its name.
fn foreign_space(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{a0}' => "No-Break Space",
        '\u{1680}' => "Ogham Space Mark",
        '\u{2000}' => "En Quad",
        '\u{2001}' => "Em Quad",
        '\u{2002}' => "En Space",
        '\u{2003}' => "Em Space",
        '\u{2004}' => "Three-Per-Em Space",
        '\u{2005}' => "Four-Per-Em Space",
        '\u{2006}' => "Six-Per-Em Space",
        '\u{2007}' => "Figure Space",
        '\u{2008}' => "Punctuation Space",
        '\u{2009}' => "Thin Space",
        '\u{200a}' => "Hair Space",
        '\u{202f}' => "Narrow No-Break Space",
        '\u{205f}' => "Medium Mathematical Space",
        '\u{3000}' => "Ideographic Space",
        _ => return None,
    })
}

/// The byte ranges of `tokens` (lexed from text by `proc_macro2`), in source
/// order, brackets included; walked without recursion.
fn token_ranges(tokens: &TokenStream) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut stack: Vec<(proc_macro2::token_stream::IntoIter, Option<Range<usize>>)> =
        vec![(tokens.clone().into_iter(), None)];
    while let Some((iter, _)) = stack.last_mut() {
        match iter.next() {
            Some(TokenTree::Group(g)) => {
                let none = g.delimiter() == Delimiter::None;
                if !none {
                    out.push(g.span_open().byte_range());
                }
                let close = (!none).then(|| g.span_close().byte_range());
                stack.push((g.stream().into_iter(), close));
            }
            Some(tt) => out.push(tt.span().byte_range()),
            None => {
                if let Some((_, Some(close))) = stack.pop() {
                    out.push(close);
                }
            }
        }
    }
    out
}

/// The byte offset of the first foreign space in `gap` (text between tokens:
/// whitespace and comments), skipping comments.
fn first_in_gap(gap: &str) -> Option<(usize, char)> {
    let mut i = 0;
    while let Some(c) = gap[i..].chars().next() {
        let rest = &gap[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            let mut depth = 0usize;
            let mut j = 0;
            while j < rest.len() {
                if rest[j..].starts_with("/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with("*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += rest[j..].chars().next().map_or(1, char::len_utf8);
                }
            }
            i += j;
        } else if foreign_space(c).is_some() {
            return Some((i, c));
        } else {
            i += c.len_utf8();
        }
    }
    None
}

/// An error at the first Unicode space outside strings and comments that
/// rustc would refuse, if there is one.
pub fn check(text: &str, tokens: &TokenStream) -> Result<(), SpannedDiagnostic> {
    if !text.chars().any(|c| foreign_space(c).is_some()) {
        return Ok(()); // the usual case, without looking at a single span
    }
    let mut at = 0;
    let mut found = None;
    for r in token_ranges(tokens)
        .into_iter()
        .chain(std::iter::once(text.len()..text.len()))
    {
        if r.start > at {
            if let Some(gap) = text.get(at..r.start) {
                if let Some((i, c)) = first_in_gap(gap) {
                    found = Some((at + i, c));
                    break;
                }
            }
        }
        at = at.max(r.end);
    }
    let Some((offset, c)) = found else {
        return Ok(());
    };
    let name = foreign_space(c).unwrap_or("Space");
    // rustc's own words (its lexer's "confusables" table), so that both
    // entry points say the same.
    let like = if c == '\u{1680}' {
        "'-' (Minus/Hyphen)"
    } else {
        "' ' (Space)"
    };
    Err(SpannedDiagnostic::new(
        Code::Syntax,
        span_at(text, offset, c),
        format!("unknown start of token: {}", c.escape_unicode()),
        format!("Unicode character '{c}' ({name}) looks like {like}, but it is not"),
    ))
}

/// A span on the one character `c` at `offset`: the text is lexed again with
/// a `$` (one character too) in its place, and the span of that `$` is it.
fn span_at(text: &str, offset: usize, c: char) -> SpanRange {
    let marked = format!("{}${}", &text[..offset], &text[offset + c.len_utf8()..]);
    let fallback = || SpanRange::single(proc_macro2::Span::call_site());
    let Ok(tokens) = TokenStream::from_str(&marked) else {
        return fallback();
    };
    let mut stack = vec![tokens.into_iter()];
    while let Some(iter) = stack.last_mut() {
        match iter.next() {
            Some(TokenTree::Group(g)) => stack.push(g.stream().into_iter()),
            Some(TokenTree::Punct(p))
                if p.as_char() == '$' && p.span().byte_range().start == offset =>
            {
                return SpanRange::single(p.span());
            }
            Some(_) => {}
            None => {
                stack.pop();
            }
        }
    }
    fallback()
}

#[cfg(test)]
mod tests {
    use crate::compile::compile_str;
    use crate::diagnostic::Code;

    #[test]
    fn a_no_break_space_is_refused_as_rustc_refuses_it() {
        for (text, column) in [
            ("extif\u{a0}eth0; open tcp 22;", 6),
            ("extif eth0; open tcp 22;\u{a0}", 25),
            ("\u{3000}extif eth0; open tcp 22;", 1),
            ("extif eth0; /* ü */ open\u{2009}tcp 22;", 25),
            (
                "extif eth0; open tcp 22 from 10.0.0.0/8,\u{202f}10.1.0.0/16;",
                41,
            ),
        ] {
            let ds = compile_str(text)
                .err()
                .unwrap_or_else(|| panic!("accepted {text:?}"));
            assert_eq!(ds.len(), 1, "{text:?}");
            let d = ds[0].located();
            assert_eq!(
                (d.code, d.start.line, d.start.column),
                (Code::Syntax, 1, column),
                "{text:?}"
            );
            assert_eq!(d.end.column, column + 1, "{text:?}");
            assert!(
                d.message.starts_with("unknown start of token: \\u{"),
                "{}",
                d.message
            );
        }
        assert_eq!(
            compile_str("extif eth0; open tcp 22;\u{a0}")
                .err()
                .map(|d| d[0].message.clone()),
            Some("unknown start of token: \\u{a0}".to_string())
        );
    }

    #[test]
    fn inside_comments_and_strings_it_is_text() {
        for text in [
            "extif eth0; open tcp 22; // a\u{a0}comment",
            "extif eth0; open tcp 22; /* a\u{a0}/* nested\u{a0}*/ comment\u{2003} */",
            "extif eth0; open tcp 22; /// doc\u{a0}",
        ] {
            let r = compile_str(text);
            assert!(
                r.as_ref()
                    .map_or_else(|ds| !ds[0].message.contains("unknown start"), |_| true),
                "{text:?}: {:?}",
                r.err()
            );
        }
        // In a string it reaches the interface check, which names it.
        let ds = compile_str("extif \"a\u{a0}b\"; open tcp 22;")
            .err()
            .unwrap_or_default();
        assert_eq!(ds.first().map(|d| d.code), Some(Code::Interface));
    }
}
