//! Parse errors are [`SpannedDiagnostic`]s from the start: every parse
//! function returns [`PResult`], with the code, message and help as typed
//! fields. syn's own errors (a token syn could not read) become diagnostics
//! where they arise, through `?`.

use crate::diagnostic::{Code, SpanRange, SpannedDiagnostic};
use proc_macro2::{Span, TokenTree};
use quote::ToTokens;

/// What a parse function returns: the value, or the diagnostic that ends the
/// statement (the parser then skips to the next `;`).
pub(crate) type PResult<T> = Result<T, SpannedDiagnostic>;

/// The help of an error syn reports itself.
const SYN_HELP: &str = "see the statement table in the `firewall` crate docs";

/// A parse error at `tokens`, first to last token underlined.
pub(crate) fn error_spanned(
    tokens: impl ToTokens,
    code: Code,
    message: impl std::fmt::Display,
    help: impl std::fmt::Display,
) -> SpannedDiagnostic {
    let mut iter = tokens.into_token_stream().into_iter();
    let start = iter.next().map_or_else(Span::call_site, |t| t.span());
    let end = iter.last().map_or(start, |t| t.span());
    error_range(SpanRange { start, end }, code, message, help)
}

/// A parse error at one span.
pub(crate) fn error_at(
    span: Span,
    code: Code,
    message: impl std::fmt::Display,
    help: impl std::fmt::Display,
) -> SpannedDiagnostic {
    error_range(SpanRange::single(span), code, message, help)
}

/// A parse error from `range.start` to `range.end`.
pub(crate) fn error_range(
    range: SpanRange,
    code: Code,
    message: impl std::fmt::Display,
    help: impl std::fmt::Display,
) -> SpannedDiagnostic {
    SpannedDiagnostic::new(code, range, message.to_string(), help.to_string())
}

/// Every message of an error syn reports itself, as `syntax` diagnostics.
pub(crate) fn from_syn(error: syn::Error) -> Vec<SpannedDiagnostic> {
    error.into_iter().map(SpannedDiagnostic::from).collect()
}

/// An error syn reports itself (for `?` on syn's parse calls inside a
/// `PResult` function) as a `syntax` diagnostic. Such an error holds one
/// message: syn's errors hold more only when combined, which this parser
/// never does (`from_syn` keeps each of them).
impl From<syn::Error> for SpannedDiagnostic {
    fn from(error: syn::Error) -> Self {
        SpannedDiagnostic::new(
            Code::Syntax,
            span_range_of(&error),
            error.to_string(),
            SYN_HELP,
        )
    }
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

    #[test]
    fn syn_own_errors_become_syntax_diagnostics_with_their_place() {
        use std::str::FromStr;
        let tokens = proc_macro2::TokenStream::from_str("open tcp").unwrap_or_default();
        let spans: Vec<Span> = tokens.into_iter().map(|t| t.span()).collect();
        let (first, last) = (spans[0], spans[1]);
        let a = proc_macro2::Ident::new("a", first);
        let b = proc_macro2::Ident::new("b", last);
        let mut error = syn::Error::new_spanned(quote::quote!(#a #b), "expected something");
        error.combine(syn::Error::new(last, "and something else"));
        let ds = from_syn(error.clone());
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[0].code, Code::Syntax);
        assert_eq!(ds[0].message, "expected something");
        assert_eq!(ds[0].help, SYN_HELP);
        let (start, end) = (ds[0].located().start, ds[0].located().end);
        assert_eq!((start.column, end.column), (1, 9));
        assert_eq!(ds[1].message, "and something else");
        assert_eq!(ds[1].located().start.column, 6);
        // Through `?`: the first message, underlined from the first token.
        let d = SpannedDiagnostic::from(error);
        assert_eq!(d.message, "expected something");
        assert_eq!(d.located().start.column, 1);
    }

    #[test]
    fn a_message_keeps_every_character_of_the_policy() {
        // Code, message and help once travelled in one string with U+001F
        // between them: a policy quoting that character split the message.
        let text = "extif eth0; open tcp 22; masquerade \"a\u{1f}b\";";
        let ds = crate::compile::compile_str(text)
            .err()
            .unwrap_or_else(|| panic!("accepted: {text}"));
        assert_eq!(ds.len(), 1, "{ds:?}");
        assert_eq!(ds[0].code, Code::Syntax);
        assert_eq!(
            ds[0].message,
            "expected `;` at the end of the statement, found `\"a\u{1f}b\"`"
        );
        assert_eq!(
            ds[0].help,
            "end the statement with `;` (see the statement table in the docs)"
        );
    }
}
