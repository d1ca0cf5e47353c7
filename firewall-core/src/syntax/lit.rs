//! Grammar leaves: words, ports, interfaces, addresses, durations. Each keeps its
//! raw value and span; values are validated when the statement is lowered into
//! the model, so that a bad value gets its own code (`port-range`, `address`, ...).

use super::error::{did_you_mean, error_at, error_range, error_spanned, PResult};
use crate::diagnostic::{Code, SpanRange, SpannedDiagnostic};
use proc_macro2::{Span, TokenTree};
use syn::parse::ParseStream;
use syn::{Ident, LitInt, LitStr, Token};

/// A lowercase word of the language (`tcp`, `drop`, ...).
#[derive(Debug, Clone)]
pub struct Word {
    /// The word.
    pub text: String,
    /// Where.
    pub span: Span,
}

impl Word {
    /// Parses one word (any identifier, Rust keywords included).
    pub(crate) fn parse(input: ParseStream) -> PResult<Self> {
        let ident: Ident = input.call(<Ident as syn::ext::IdentExt>::parse_any)?;
        Ok(Word {
            text: ident.to_string(),
            span: ident.span(),
        })
    }
}

/// Parses one of `choices`, with "did you mean" on a near miss.
pub(crate) fn one_of(
    input: ParseStream,
    what: &str,
    choices: &[&'static str],
) -> PResult<(&'static str, Span)> {
    let list = choices
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if !input.peek(Ident) && !input.peek(Token![in]) {
        return Err(unexpected(
            input,
            &format!("expected {what} ({list})"),
            &format!("write one of {list}"),
        ));
    }
    let w = Word::parse(input)?;
    if let Some(c) = choices.iter().find(|c| **c == w.text) {
        return Ok((c, w.span));
    }
    let lower = w.text.to_lowercase();
    let help = match did_you_mean(&lower, choices) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("write one of {list}"),
    };
    Err(error_at(
        w.span,
        Code::Syntax,
        format!("unknown {what} `{}`", w.text),
        help,
    ))
}

/// An error at the next token, or, at the end of the input, at the last token
/// (the place where something is missing).
pub(crate) fn unexpected(input: ParseStream, message: &str, help: &str) -> SpannedDiagnostic {
    match input.cursor().token_tree() {
        Some((TokenTree::Punct(p), next)) if p.as_char() == '#' => {
            // `///` and `//!` arrive as `#[doc = ...]` / `#![doc = ...]`.
            let bracket =
                |c: syn::buffer::Cursor| c.group(proc_macro2::Delimiter::Bracket).is_some();
            let attribute = bracket(next)
                || next
                    .punct()
                    .is_some_and(|(q, after)| q.as_char() == '!' && bracket(after));
            if attribute {
                error_at(
                    p.span(),
                    Code::Syntax,
                    "doc comments (`///`, `//!`) and attributes are not allowed in a policy",
                    "write comments with `//` or `/* */`",
                )
            } else {
                error_at(
                    p.span(),
                    Code::Syntax,
                    "`#` does not start a comment in a policy",
                    "comments are `// ...` (to the end of the line) and `/* ... */`, as in Rust",
                )
            }
        }
        Some((tt, _)) => error_spanned(&tt, Code::Syntax, format!("{message}, found `{tt}`"), help),
        None => error_at(
            input.cursor().prev_span(),
            Code::Syntax,
            format!("{message}, found the end of the policy"),
            help,
        ),
    }
}

/// An integer as written: `value` is `None` when it does not fit in a `u64`.
#[derive(Debug, Clone)]
pub struct Num {
    /// The value.
    pub value: Option<u64>,
    /// Where.
    pub span: Span,
}

impl Num {
    /// Parses a port number as written (its value is checked when lowering).
    pub(crate) fn parse(input: ParseStream) -> PResult<Self> {
        if input.peek(Token![-]) && input.peek2(LitInt) {
            let minus: Token![-] = input.parse()?;
            let rest: TokenTree = input.parse()?;
            return Err(error_spanned(
                quote::quote!(#minus #rest),
                Code::PortRange,
                format!("-{rest} is not a port: ports are 1..=65535"),
                "use a port number from 1 to 65535",
            ));
        }
        if !input.peek(LitInt) {
            return Err(unexpected(
                input,
                "expected a port number",
                "ports are written as numbers, e.g. `22` or `8000..=8080`",
            ));
        }
        let lit: LitInt = input.parse()?;
        if !lit.suffix().is_empty() {
            return Err(error_spanned(
                &lit,
                Code::Syntax,
                format!("`{lit}` has a suffix; a port is a plain number"),
                format!("write the port in decimal: `{}`", lit.base10_digits()),
            ));
        }
        if let Some(why) = not_plain_decimal(&lit) {
            return Err(error_spanned(
                &lit,
                Code::Syntax,
                format!("`{lit}` {why}; ports are written in decimal"),
                format!("write the port in decimal: `{}`", lit.base10_digits()),
            ));
        }
        Ok(Num {
            value: lit.base10_parse::<u64>().ok(),
            span: lit.span(),
        })
    }
}

/// Why the digits of `lit` are not plain decimal (`0x16`, `0o26`, `0b10110`,
/// `1_000`, `022`), if they are not. Rust accepts these, but the policy writes
/// numbers back in decimal, so they would come back looking different (and a
/// leading `0` means octal to other tools).
fn not_plain_decimal(lit: &LitInt) -> Option<&'static str> {
    let text = lit.to_string();
    let digits = &text[..text.len() - lit.suffix().len()];
    let lower = digits.to_ascii_lowercase();
    if lower.starts_with("0x") {
        Some("is hexadecimal")
    } else if lower.starts_with("0o") {
        Some("is octal")
    } else if lower.starts_with("0b") {
        Some("is binary")
    } else if digits.contains('_') {
        Some("has `_` separators")
    } else if digits.len() > 1 && digits.starts_with('0') {
        Some("has a leading zero")
    } else {
        None
    }
}

/// `PORT` or `PORT..=PORT` (or the mistaken `PORT..PORT`).
#[derive(Debug, Clone)]
pub struct PortItem {
    /// First port.
    pub start: Num,
    /// Last port and whether `..=` (true) or `..` (false) was written.
    pub end: Option<(Num, bool)>,
}

impl PortItem {
    /// The tokens of the item.
    pub fn span(&self) -> SpanRange {
        let s = SpanRange::single(self.start.span);
        match &self.end {
            Some((e, _)) => s.to(SpanRange::single(e.span)),
            None => s,
        }
    }
}

impl PortItem {
    /// Parses `PORT`, `PORT..=PORT` or `PORT..PORT`.
    pub(crate) fn parse(input: ParseStream) -> PResult<Self> {
        let start = Num::parse(input)?;
        let end = if input.peek(Token![..=]) {
            input.parse::<Token![..=]>()?;
            Some((Num::parse(input)?, true))
        } else if input.peek(Token![..]) && !input.peek(Token![...]) {
            input.parse::<Token![..]>()?;
            Some((Num::parse(input)?, false))
        } else {
            None
        };
        Ok(PortItem { start, end })
    }
}

/// `PORTS`: a comma list of [`PortItem`].
pub(crate) fn parse_ports(input: ParseStream) -> PResult<Vec<PortItem>> {
    let mut items = vec![PortItem::parse(input)?];
    while input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
        items.push(PortItem::parse(input)?);
    }
    Ok(items)
}

/// `IFACE`: an identifier or a string.
#[derive(Debug, Clone)]
pub struct IfaceName {
    /// The name.
    pub name: String,
    /// Where.
    pub span: SpanRange,
}

impl IfaceName {
    /// Parses an interface name: a word, or a string.
    pub(crate) fn parse(input: ParseStream) -> PResult<Self> {
        if input.peek(LitStr) {
            let s: LitStr = input.parse()?;
            return Ok(IfaceName {
                name: s.value(),
                span: SpanRange::single(s.span()),
            });
        }
        if !input.peek(Ident) {
            return Err(unexpected(
                input,
                "expected an interface name",
                "write the name (`eth0`), or quote it (`\"br-lan\"`)",
            ));
        }
        let w = Word::parse(input)?;
        // `br-lan` and `eth0.100` arrive as several tokens: ask for quotes.
        let mut text = w.text.clone();
        let mut end = w.span;
        while (input.peek(Token![-]) || input.peek(Token![.])) && !input.peek(Token![..]) {
            let tt: TokenTree = input.parse()?;
            text.push_str(&tt.to_string());
            end = tt.span();
            if input.peek(Ident) || input.peek(LitInt) || input.peek(syn::LitFloat) {
                let tt: TokenTree = input.parse()?;
                text.push_str(&tt.to_string());
                end = tt.span();
            }
        }
        if text != w.text {
            return Err(error_range(
                SpanRange { start: w.span, end },
                Code::Interface,
                format!("the interface name `{text}` must be quoted"),
                format!("write it as a string: `\"{text}\"`"),
            ));
        }
        Ok(IfaceName {
            name: text,
            span: SpanRange::single(w.span),
        })
    }
}

/// An address or network as written: a string, or bare IPv4 tokens joined
/// back together (`192.168` `.` `125.22` -> `192.168.125.22`).
#[derive(Debug, Clone)]
pub struct AddrText {
    /// The text (`198.51.100.0/24`, `2001:db8::5`).
    pub text: String,
    /// Where: the whole address.
    pub span: SpanRange,
    /// Set when the bare tokens were not adjacent (whitespace inside).
    pub gap: bool,
    /// Written as a string.
    pub quoted: bool,
}

impl AddrText {
    /// Parses an address or network: a string, or bare IPv4 tokens.
    pub(crate) fn parse(input: ParseStream) -> PResult<Self> {
        if input.peek(LitStr) {
            let s: LitStr = input.parse()?;
            return Ok(AddrText {
                text: s.value(),
                span: SpanRange::single(s.span()),
                gap: false,
                quoted: true,
            });
        }
        if !(input.peek(LitInt) || input.peek(syn::LitFloat)) {
            return Err(unexpected(
                input,
                "expected an address",
                "write an IPv4 address bare (`198.51.100.0/24`) or any address in quotes (`\"2001:db8::/32\"`)",
            ));
        }
        let mut text = String::new();
        let mut first: Option<Span> = None;
        let mut last: Option<Span> = None;
        let mut gap = false;
        // Numbers and dots, then an optional `/PREFIX`. Read straight from the
        // cursor: syn's `peek(LitInt)` parses the literal each time, which is
        // most of the time of a policy made of 10,000 `from` addresses.
        input.step(|cursor| {
            let mut rest = *cursor;
            while let Some((tt, next)) = rest.token_tree() {
                let piece = AddrPiece::of(&tt, next);
                let want = match text.chars().last() {
                    None | Some('.') | Some('/') => piece == AddrPiece::Number,
                    Some(_) => {
                        piece == AddrPiece::Dot
                            || (piece == AddrPiece::Slash && !text.contains('/'))
                    }
                };
                if !want {
                    break;
                }
                let span = tt.span();
                if let Some(prev) = last {
                    if !adjacent(prev, span) {
                        gap = true;
                    }
                }
                first.get_or_insert(span);
                last = Some(span);
                text.push_str(&tt.to_string());
                rest = next;
            }
            Ok(((), rest))
        })?;
        let start = first.unwrap_or_else(|| input.span());
        Ok(AddrText {
            text,
            span: SpanRange {
                start,
                end: last.unwrap_or(start),
            },
            gap,
            quoted: false,
        })
    }
}

/// What a token is to an address written bare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddrPiece {
    /// A numeric literal (`192.168`, `125`, `24`).
    Number,
    /// A single `.` (not `..`).
    Dot,
    /// `/`.
    Slash,
    /// Anything else: the address ends before it.
    Other,
}

impl AddrPiece {
    fn of(tt: &TokenTree, next: syn::buffer::Cursor) -> AddrPiece {
        match tt {
            TokenTree::Literal(l) => {
                if l.to_string().starts_with(|c: char| c.is_ascii_digit()) {
                    AddrPiece::Number
                } else {
                    AddrPiece::Other
                }
            }
            TokenTree::Punct(p) if p.as_char() == '.' => {
                let dots = p.spacing() == proc_macro2::Spacing::Joint
                    && next.punct().is_some_and(|(q, _)| q.as_char() == '.');
                if dots {
                    AddrPiece::Other
                } else {
                    AddrPiece::Dot
                }
            }
            TokenTree::Punct(p) if p.as_char() == '/' => AddrPiece::Slash,
            _ => AddrPiece::Other,
        }
    }
}

/// Whether `b` starts where `a` ends (no whitespace between). Without location
/// information (old compilers) every pair counts as adjacent.
fn adjacent(a: Span, b: Span) -> bool {
    let (ae, bs) = (a.end(), b.start());
    (ae.line == 0 && ae.column == 0) || (ae.line == bs.line && ae.column == bs.column)
}

/// `DURATION`: `10s` or `5min` (Rust lexes these as integers with a suffix).
#[derive(Debug, Clone)]
pub struct DurationLit {
    /// Seconds, `None` when it overflows.
    pub secs: Option<u64>,
    /// Where.
    pub span: Span,
}

impl DurationLit {
    /// Parses a duration with its unit (`s` or `min`).
    pub(crate) fn parse(input: ParseStream) -> PResult<Self> {
        if !input.peek(LitInt) {
            return Err(unexpected(
                input,
                "expected a duration",
                "write seconds or minutes, e.g. `30s` or `2min`",
            ));
        }
        let lit: LitInt = input.parse()?;
        if let Some(why) = not_plain_decimal(&lit) {
            return Err(error_spanned(
                &lit,
                Code::Syntax,
                format!("`{lit}` {why}; durations are written in decimal"),
                format!(
                    "write the duration in decimal: `{}{}`",
                    lit.base10_digits(),
                    lit.suffix()
                ),
            ));
        }
        let n = lit.base10_parse::<u64>().ok();
        let secs = match lit.suffix() {
            "s" => n,
            "min" => n.and_then(|n| n.checked_mul(60)),
            "" => {
                return Err(error_spanned(
                    &lit,
                    Code::Failsafe,
                    format!("`{lit}` has no unit"),
                    format!("write `{lit}s` for seconds or `{lit}min` for minutes"),
                ))
            }
            other => {
                let digits = lit.base10_digits();
                let help = match (other, n) {
                    ("h", Some(h)) => format!(
                        "hours are not a unit here: write `{}min` (the failsafe is at most `60min`)",
                        h.saturating_mul(60)
                    ),
                    ("m" | "mins" | "minutes", _) => format!("write `{digits}min` for minutes"),
                    ("sec" | "secs" | "seconds", _) => format!("write `{digits}s` for seconds"),
                    _ => format!("write `{digits}s` for seconds or `{digits}min` for minutes"),
                };
                return Err(error_spanned(
                    &lit,
                    Code::Failsafe,
                    format!("unknown time unit `{other}`"),
                    help,
                ));
            }
        };
        Ok(DurationLit {
            secs,
            span: lit.span(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::compile_str;
    use crate::diagnostic::Code;

    fn first(text: &str) -> (Code, String, String) {
        match compile_str(text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(ds) => (ds[0].code, ds[0].message.clone(), ds[0].help.clone()),
        }
    }

    #[test]
    fn ports_and_durations_are_plain_decimal() {
        for (port, shown) in [
            ("0x16", "22"),
            ("0o26", "22"),
            ("0b10110", "22"),
            ("2_2", "22"),
            ("022", "22"),
            ("22u16", "22"),
            ("1_000", "1000"),
        ] {
            for text in [
                format!("extif eth0; open tcp {port};"),
                format!("extif eth0; open tcp 22, 80..={port};"),
                format!("extif eth0; open tcp 22; dnat {port} -> 192.0.2.1;"),
                format!("extif eth0; ssh {port}; open tcp 22;"),
            ] {
                let (code, message, help) = first(&text);
                assert_eq!(code, Code::Syntax, "{text}");
                assert!(message.contains(port), "{text}: {message}");
                assert_eq!(
                    help,
                    format!("write the port in decimal: `{shown}`"),
                    "{text}"
                );
                assert_eq!(compile_str(&text).err().map(|d| d.len()), Some(1), "{text}");
            }
        }
        let (code, _, help) = first("extif eth0; open tcp 22; failsafe 0x10s;");
        assert_eq!(
            (code, help.as_str()),
            (Code::Syntax, "write the duration in decimal: `16s`")
        );
        let (_, _, help) = first("extif eth0; open tcp 22; failsafe 1_0min;");
        assert_eq!(help, "write the duration in decimal: `10min`");
        for ok in [
            "extif eth0; open tcp 22, 0, 1, 10, 65535;".replace(" 0,", ""),
            "extif eth0; open tcp 22; failsafe 10s;".to_string(),
        ] {
            assert!(compile_str(&ok).is_ok(), "{ok}");
        }
    }
}
