//! Parse errors carry a code and a help line through `syn::Error` (whose only
//! payload is a message), and come back out as [`SpannedDiagnostic`]s.

use crate::diagnostic::{Code, SpanRange, SpannedDiagnostic};
use proc_macro2::{Span, TokenTree};
use quote::ToTokens;

/// Separates code, message and help inside a `syn::Error` message.
const SEP: char = '\u{1f}';

/// A parse error at `tokens` (first to last token underlined).
pub(crate) fn error_spanned(
    tokens: impl ToTokens,
    code: Code,
    message: impl std::fmt::Display,
    help: impl std::fmt::Display,
) -> syn::Error {
    syn::Error::new_spanned(tokens, format!("{code}{SEP}{message}{SEP}{help}"))
}

/// A parse error at one span.
pub(crate) fn error_at(
    span: Span,
    code: Code,
    message: impl std::fmt::Display,
    help: impl std::fmt::Display,
) -> syn::Error {
    syn::Error::new(span, format!("{code}{SEP}{message}{SEP}{help}"))
}

/// A parse error from `range.start` to `range.end`.
pub(crate) fn error_range(
    range: SpanRange,
    code: Code,
    message: impl std::fmt::Display,
    help: impl std::fmt::Display,
) -> syn::Error {
    let a = proc_macro2::Ident::new("a", range.start);
    let b = proc_macro2::Ident::new("b", range.end);
    error_spanned(quote::quote!(#a #b), code, message, help)
}

/// Unpacks every message of a `syn::Error` (ours or syn's own).
pub(crate) fn to_diagnostics(error: syn::Error) -> Vec<SpannedDiagnostic> {
    error
        .into_iter()
        .map(|e| {
            let span = span_range_of(&e);
            let text = e.to_string();
            let mut parts = text.splitn(3, SEP);
            match (parts.next(), parts.next(), parts.next()) {
                (Some(code), Some(message), Some(help)) => SpannedDiagnostic::new(
                    Code::ALL
                        .into_iter()
                        .find(|c| c.as_str() == code)
                        .unwrap_or(Code::Syntax),
                    span,
                    message,
                    help,
                ),
                _ => SpannedDiagnostic::new(
                    Code::Syntax,
                    span,
                    text,
                    "see the statement table in the `firewall` crate docs",
                ),
            }
        })
        .collect()
}

/// syn keeps the first and last span of an error but only exposes them through
/// `to_compile_error()`: the path tokens carry the start, the braces the end.
fn span_range_of(e: &syn::Error) -> SpanRange {
    let tokens: Vec<TokenTree> = e.to_compile_error().into_iter().collect();
    let start = tokens.first().map_or_else(|| e.span(), |t| t.span());
    let end = tokens.last().map_or(start, |t| t.span());
    SpanRange { start, end }
}

/// The closest of `candidates` to `word`, if it is close enough to be a typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions counted as one edit
/// (`opne` is one edit from `open`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        let words = ["open", "extif", "masquerade"];
        assert_eq!(did_you_mean("opne", &words), Some("open"));
        assert_eq!(did_you_mean("masqurade", &words), Some("masquerade"));
        assert_eq!(did_you_mean("zebra", &words), None);
    }
}
