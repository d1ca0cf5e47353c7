//! The parser: policy tokens in, a syntax tree with spans out.
//!
//! One `parse` function per grammar node (DSL.md section 2), each returning
//! the node or a typed diagnostic; statements start with a [`Keyword`].
//! Values are kept raw here and validated in [`crate::lowering`], so each bad
//! value gets the code of its check. After a bad statement the parser skips
//! to the next `;` and goes on, so one compile reports every mistake.

pub mod depth;
mod error;
mod keyword;
mod lit;
pub mod whitespace;

pub use keyword::Keyword;
pub use lit::{AddrText, DurationLit, IfaceName, Num, PortItem, Word};

use crate::diagnostic::{Code, Sink, SpanRange};
use crate::model::{Chain, Proto, Verdict};
use error::{did_you_mean, error_at, PResult};
use lit::{one_of, parse_ports, unexpected};
use proc_macro2::{Span, TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser};
use syn::{Ident, Token};

/// One statement with its span (keyword to last token, `;` excluded).
#[derive(Debug, Clone)]
pub struct Stmt {
    /// What it says.
    pub kind: StmtKind,
    /// The keyword.
    pub keyword: Span,
    /// Keyword to last token.
    pub span: SpanRange,
}

/// A word with its span.
#[derive(Debug, Clone, Copy)]
pub struct At<T> {
    /// The value.
    pub value: T,
    /// Where.
    pub span: Span,
}

/// The statements of DSL.md section 2, values still raw.
#[derive(Debug, Clone)]
pub enum StmtKind {
    /// `extif IFACE, ...;`
    Extif(Vec<IfaceName>),
    /// `trust IFACE, ...;`
    Trust(Vec<IfaceName>),
    /// `policy CHAIN VERDICT;`
    Policy {
        /// input, forward, output.
        chain: At<Chain>,
        /// drop, reject, accept.
        verdict: At<Verdict>,
    },
    /// `open PROTO PORTS [from NET, ...];`
    Open {
        /// tcp or udp.
        proto: At<Proto>,
        /// Ports.
        ports: Vec<PortItem>,
        /// Sources.
        from: Vec<AddrText>,
    },
    /// `icmp accept;` (true) / `icmp drop;` (false)
    Icmp(At<bool>),
    /// `masquerade;`
    Masquerade,
    /// `dnat [PROTO] PORT -> ADDR[:PORT];`
    Dnat {
        /// Protocol if written.
        proto: Option<At<Proto>>,
        /// Incoming port.
        port: Num,
        /// Target host.
        to: AddrText,
        /// Target port if written.
        to_port: Option<Num>,
    },
    /// `redirect [PROTO] PORT -> PORT;`
    Redirect {
        /// Protocol if written.
        proto: Option<At<Proto>>,
        /// Incoming port.
        port: Num,
        /// Local target port.
        to_port: Num,
    },
    /// `forward drop;`
    ForwardDrop,
    /// `block out PROTO PORTS;`
    BlockOut {
        /// tcp or udp.
        proto: At<Proto>,
        /// Ports.
        ports: Vec<PortItem>,
    },
    /// `ssh PORT;` / `ssh none;`
    Ssh(Option<Num>),
    /// `failsafe DURATION;`
    Failsafe(DurationLit),
    /// `log drops;`
    LogDrops,
    /// `exclusive;`
    Exclusive,
    /// `assert ...;`
    Assert(AssertSyntax),
}

/// The assertions of `assert ...;`, values still raw.
#[derive(Debug, Clone)]
pub enum AssertSyntax {
    /// `assert open PROTO PORTS [from NETS]` (`open` true) or
    /// `assert closed PROTO PORTS [from NETS]` (false).
    Reach {
        /// `open` (true) or `closed`.
        open: bool,
        /// tcp or udp.
        proto: At<Proto>,
        /// Ports.
        ports: Vec<PortItem>,
        /// Sources.
        from: Vec<AddrText>,
    },
    /// `assert closed out PROTO PORTS`
    ClosedOut {
        /// tcp or udp.
        proto: At<Proto>,
        /// Ports.
        ports: Vec<PortItem>,
    },
    /// `assert forwarded [PROTO] PORT -> ADDR:PORT [from NETS]`
    Forwarded {
        /// Protocol if written.
        proto: Option<At<Proto>>,
        /// Incoming port.
        port: Num,
        /// Inner host.
        to: AddrText,
        /// Its port.
        to_port: Num,
        /// Sources.
        from: Vec<AddrText>,
    },
}

impl StmtKind {
    /// The keyword the statement starts with.
    pub fn keyword(&self) -> Keyword {
        match self {
            StmtKind::Extif(_) => Keyword::Extif,
            StmtKind::Trust(_) => Keyword::Trust,
            StmtKind::Policy { .. } => Keyword::Policy,
            StmtKind::Open { .. } => Keyword::Open,
            StmtKind::Icmp(_) => Keyword::Icmp,
            StmtKind::Masquerade => Keyword::Masquerade,
            StmtKind::Dnat { .. } => Keyword::Dnat,
            StmtKind::Redirect { .. } => Keyword::Redirect,
            StmtKind::ForwardDrop => Keyword::Forward,
            StmtKind::BlockOut { .. } => Keyword::Block,
            StmtKind::Ssh(_) => Keyword::Ssh,
            StmtKind::Failsafe(_) => Keyword::Failsafe,
            StmtKind::LogDrops => Keyword::Log,
            StmtKind::Exclusive => Keyword::Exclusive,
            StmtKind::Assert(_) => Keyword::Assert,
        }
    }

    /// The statement's name as the user knows it, for "given twice" messages.
    pub fn name(&self) -> String {
        let keyword = self.keyword();
        match self {
            StmtKind::Policy { chain, .. } => format!("{keyword} {}", chain.value.as_str()),
            StmtKind::ForwardDrop => format!("{keyword} drop"),
            StmtKind::BlockOut { .. } => format!("{keyword} out"),
            StmtKind::LogDrops => format!("{keyword} drops"),
            _ => keyword.to_string(),
        }
    }
}

/// A whole policy: the statements that parsed (the errors of those that did
/// not are in the [`Sink`] given to [`parse`]).
#[derive(Debug, Clone, Default)]
pub struct PolicySyntax {
    /// Statements in source order.
    pub stmts: Vec<Stmt>,
    /// Keywords of the statements that failed to parse, `None` where there
    /// was none (no word, or a misspelt one), so that later checks do not
    /// report what those statements would have provided.
    pub failed: Vec<Option<Keyword>>,
}

/// Parses a whole policy. Each statement that does not parse is reported to
/// `diags` and skipped (to its `;`), so one run reports every mistake; `None`
/// when the parser could not go on at all (its error is in `diags`).
pub fn parse(tokens: TokenStream, diags: &mut Sink) -> Option<PolicySyntax> {
    match (|input: ParseStream| policy(input, diags)).parse2(tokens) {
        Ok(parsed) => Some(parsed),
        Err(e) => {
            for d in error::from_syn(e) {
                diags.push(d);
            }
            None
        }
    }
}

fn policy(input: ParseStream, diags: &mut Sink) -> syn::Result<PolicySyntax> {
    let mut out = PolicySyntax::default();
    while !input.is_empty() {
        if input.peek(Token![;]) {
            input.parse::<Token![;]>()?; // a stray `;` is harmless
            continue;
        }
        let keyword = input
            .cursor()
            .ident()
            .and_then(|(id, _)| Keyword::from_word(&id.to_string()));
        match Stmt::parse(input) {
            Ok(stmt) => {
                end_of_statement(input, &stmt, diags)?;
                out.stmts.push(stmt);
            }
            Err(d) => {
                diags.push(d);
                out.failed.push(keyword);
                skip_past_semicolon(input)?;
            }
        }
    }
    Ok(out)
}

/// What a statement ends with, when that is a comma list: an item of it
/// (next to the end of the statement) means a `,` is missing, not a `;`.
fn list_item_example(stmt: &Stmt, next: &TokenTree) -> Option<&'static str> {
    let number = matches!(next, TokenTree::Literal(l) if l.to_string().starts_with(|c: char| c.is_ascii_digit()));
    let string = matches!(next, TokenTree::Literal(l) if l.to_string().starts_with('"'));
    let ident = matches!(next, TokenTree::Ident(_));
    match &stmt.kind {
        StmtKind::Extif(_) if ident || string => Some("`extif eth0, eth1;`"),
        StmtKind::Trust(_) if ident || string => Some("`trust eth1, \"br-lan\";`"),
        StmtKind::Open { from, .. } if from.is_empty() && number => Some("`open tcp 22, 80;`"),
        StmtKind::Open { from, .. } if !from.is_empty() && (number || string) => {
            Some("`open tcp 22 from 198.51.100.0/24, 203.0.113.7;`")
        }
        StmtKind::BlockOut { .. } if number => Some("`block out tcp 25, 465;`"),
        _ => None,
    }
}

/// After a statement: `;`, or a "missing `;`" (or `,`) error and recovery.
fn end_of_statement(input: ParseStream, stmt: &Stmt, diags: &mut Sink) -> syn::Result<()> {
    if input.peek(Token![;]) {
        input.parse::<Token![;]>()?;
        return Ok(());
    }
    let next = input.cursor().token_tree();
    match next {
        None => {
            diags.push(error_at(
                input.cursor().prev_span(),
                Code::Syntax,
                "missing `;` at the end of the last statement",
                "end every statement with `;`",
            ));
            Ok(())
        }
        Some((TokenTree::Ident(ref id), _)) if Keyword::from_word(&id.to_string()).is_some() => {
            // The next statement starts here: report and parse it normally.
            diags.push(error_at(
                id.span(),
                Code::Syntax,
                format!("missing `;` before `{id}`"),
                "end every statement with `;`",
            ));
            Ok(())
        }
        Some((tt, _)) => {
            if let Some(example) = list_item_example(stmt, &tt) {
                diags.push(error::error_spanned(
                    &tt,
                    Code::Syntax,
                    format!("missing `,` before `{tt}`"),
                    format!("separate the items with `,`, as in {example}"),
                ));
            } else {
                diags.push(lit::unexpected(
                    input,
                    "expected `;` at the end of the statement",
                    "end the statement with `;` (see the statement table in the docs)",
                ));
            }
            skip_past_semicolon(input)
        }
    }
}

fn skip_past_semicolon(input: ParseStream) -> syn::Result<()> {
    while !input.is_empty() {
        let tt: TokenTree = input.parse()?;
        if matches!(&tt, TokenTree::Punct(p) if p.as_char() == ';') {
            break;
        }
    }
    Ok(())
}

fn proto(input: ParseStream) -> PResult<At<Proto>> {
    let (word, span) = one_of(input, "protocol", &["tcp", "udp"])?;
    let value = if word == "tcp" {
        Proto::Tcp
    } else {
        Proto::Udp
    };
    Ok(At { value, span })
}

/// `[tcp|udp]`: absent when the next token is a port.
fn optional_proto(input: ParseStream) -> PResult<Option<At<Proto>>> {
    if input.peek(Ident) {
        proto(input).map(Some)
    } else {
        Ok(None)
    }
}

fn arrow(input: ParseStream) -> PResult<()> {
    if input.peek(Token![->]) {
        input.parse::<Token![->]>()?;
        Ok(())
    } else {
        Err(unexpected(
            input,
            "expected `->`",
            "write `PORT -> TARGET`, e.g. `dnat 221 -> 192.0.2.22:22`",
        ))
    }
}

impl Stmt {
    /// Parses one statement, up to its `;` (not included).
    pub(crate) fn parse(input: ParseStream) -> PResult<Self> {
        if !input.peek(Ident) {
            return Err(unexpected(
                input,
                "expected a statement",
                &format!("statements start with a word: {}", Keyword::list()),
            ));
        }
        let kw = Word::parse(input)?;
        let kind = match Keyword::from_word(&kw.text) {
            Some(Keyword::Extif) => StmtKind::Extif(iface_list(input)?),
            Some(Keyword::Trust) => StmtKind::Trust(iface_list(input)?),
            Some(Keyword::Policy) => {
                let (c, cs) = one_of(input, "chain", &["input", "forward", "output"])?;
                let (v, vs) = one_of(input, "policy", &["drop", "reject", "accept"])?;
                StmtKind::Policy {
                    chain: At {
                        value: match c {
                            "input" => Chain::Input,
                            "forward" => Chain::Forward,
                            _ => Chain::Output,
                        },
                        span: cs,
                    },
                    verdict: At {
                        value: match v {
                            "drop" => Verdict::Drop,
                            "reject" => Verdict::Reject,
                            _ => Verdict::Accept,
                        },
                        span: vs,
                    },
                }
            }
            Some(Keyword::Open) => {
                let proto = proto(input)?;
                let ports = parse_ports(input)?;
                let from = from_list(input)?;
                StmtKind::Open { proto, ports, from }
            }
            Some(Keyword::Icmp) => {
                let (v, span) = one_of(input, "icmp policy", &["accept", "drop"])?;
                StmtKind::Icmp(At {
                    value: v == "accept",
                    span,
                })
            }
            Some(Keyword::Masquerade) => StmtKind::Masquerade,
            Some(Keyword::Dnat) => {
                let proto = optional_proto(input)?;
                let port = Num::parse(input)?;
                arrow(input)?;
                let to = AddrText::parse(input)?;
                let to_port = if input.peek(Token![:]) {
                    input.parse::<Token![:]>()?;
                    Some(Num::parse(input)?)
                } else {
                    None
                };
                StmtKind::Dnat {
                    proto,
                    port,
                    to,
                    to_port,
                }
            }
            Some(Keyword::Redirect) => {
                let proto = optional_proto(input)?;
                let port = Num::parse(input)?;
                arrow(input)?;
                let to_port = Num::parse(input)?;
                StmtKind::Redirect {
                    proto,
                    port,
                    to_port,
                }
            }
            Some(Keyword::Forward) => {
                one_of(input, "forward rule", &["drop"])?;
                StmtKind::ForwardDrop
            }
            Some(Keyword::Block) => {
                one_of(input, "direction", &["out"])?;
                let proto = proto(input)?;
                let ports = parse_ports(input)?;
                StmtKind::BlockOut { proto, ports }
            }
            Some(Keyword::Ssh) => {
                if input.peek(Ident) {
                    one_of(input, "ssh setting", &["none"])?;
                    StmtKind::Ssh(None)
                } else {
                    StmtKind::Ssh(Some(Num::parse(input)?))
                }
            }
            Some(Keyword::Failsafe) => StmtKind::Failsafe(DurationLit::parse(input)?),
            Some(Keyword::Log) => {
                one_of(input, "log setting", &["drops"])?;
                StmtKind::LogDrops
            }
            Some(Keyword::Exclusive) => StmtKind::Exclusive,
            Some(Keyword::Assert) => StmtKind::Assert(assertion(input)?),
            None => {
                let other = &kw.text;
                let help = match did_you_mean(&other.to_lowercase(), &Keyword::words()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("statements are: {}", Keyword::list()),
                };
                return Err(error_at(
                    kw.span,
                    Code::Syntax,
                    format!("unknown statement `{other}`"),
                    help,
                ));
            }
        };
        // syn has no accessor for the last consumed token; `prev_span` is it.
        let end = input.cursor().prev_span();
        Ok(Stmt {
            kind,
            keyword: kw.span,
            span: SpanRange {
                start: kw.span,
                end,
            },
        })
    }
}

/// `[from ADDR, ...]`
fn from_list(input: ParseStream) -> PResult<Vec<AddrText>> {
    let mut from = Vec::new();
    if input.peek(Ident) {
        one_of(input, "word", &["from"])?;
        from.push(AddrText::parse(input)?);
        while input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
            from.push(AddrText::parse(input)?);
        }
    }
    Ok(from)
}

/// What follows `assert`.
fn assertion(input: ParseStream) -> PResult<AssertSyntax> {
    let (word, _) = one_of(input, "assertion", &["open", "closed", "forwarded"])?;
    match word {
        "forwarded" => {
            let proto = optional_proto(input)?;
            let port = Num::parse(input)?;
            arrow(input)?;
            let to = AddrText::parse(input)?;
            if !input.peek(Token![:]) {
                return Err(unexpected(
                    input,
                    "expected `:PORT` after the inner host",
                    "name the inner host and its port, e.g. `assert forwarded 221 -> 192.0.2.22:22;`",
                ));
            }
            input.parse::<Token![:]>()?;
            let to_port = Num::parse(input)?;
            let from = from_list(input)?;
            Ok(AssertSyntax::Forwarded {
                proto,
                port,
                to,
                to_port,
                from,
            })
        }
        _ => {
            let out = word == "closed" && input.cursor().ident().is_some_and(|(id, _)| id == "out");
            if out {
                one_of(input, "word", &["out"])?;
                let proto = proto(input)?;
                let ports = parse_ports(input)?;
                return Ok(AssertSyntax::ClosedOut { proto, ports });
            }
            let proto = proto(input)?;
            let ports = parse_ports(input)?;
            let from = from_list(input)?;
            Ok(AssertSyntax::Reach {
                open: word == "open",
                proto,
                ports,
                from,
            })
        }
    }
}

fn iface_list(input: ParseStream) -> PResult<Vec<IfaceName>> {
    let mut v = vec![IfaceName::parse(input)?];
    while input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
        v.push(IfaceName::parse(input)?);
    }
    Ok(v)
}
