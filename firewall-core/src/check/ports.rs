//! `duplicate`, `redundant`, `shadowed`: ports said twice, restrictions that do
//! nothing, and opens that NAT takes first.
//!
//! Overlaps are found by sorting the port items and sweeping, so a policy with
//! 10,000 ports costs O(n log n), not a comparison of every pair.

use crate::compile::Spans;
use crate::diagnostic::{Code, SpannedDiagnostic};
use crate::model::{Model, Net, Port, PortRange, Proto, StmtId};
use std::fmt::Display;

/// One port item of an `open` or `block out`, with where it came from.
struct Item<'a, S> {
    stmt: StmtId,
    index: usize,
    proto: Proto,
    range: PortRange,
    from: &'a [Net],
    statement: &'a S,
}

impl<S> Item<'_, S> {
    /// Source order: statement, then position in its list.
    fn order(&self) -> (StmtId, usize) {
        (self.stmt, self.index)
    }
}

/// Every pair of items of the same protocol whose ports overlap, as
/// (earlier, later) in source order.
fn overlapping_pairs<'i, 'a, S>(
    items: &'i [Item<'a, S>],
) -> Vec<(&'i Item<'a, S>, &'i Item<'a, S>)> {
    let mut sorted: Vec<&Item<S>> = items.iter().collect();
    sorted.sort_by_key(|i| (i.proto, i.range.start(), i.order()));
    let mut pairs = Vec::new();
    let mut active: Vec<&Item<S>> = Vec::new();
    for item in sorted {
        active.retain(|a| a.proto == item.proto && a.range.end() >= item.range.start());
        for a in &active {
            if a.order() < item.order() {
                pairs.push((*a, item));
            } else {
                pairs.push((item, *a));
            }
        }
        active.push(item);
    }
    pairs.sort_by_key(|(e, l)| (l.order(), e.order()));
    pairs
}

fn overlap_text(a: PortRange, b: PortRange) -> String {
    let start = a.start().max(b.start());
    let end = a.end().min(b.end());
    match PortRange::new(start, end) {
        Some(r) if r.is_single() => format!("port {r}"),
        Some(r) => format!("ports {r}"),
        None => "ports".to_string(),
    }
}

/// `range` without the ports of `other` (zero, one or two pieces).
fn without(range: PortRange, other: PortRange) -> Vec<PortRange> {
    let mut rest = Vec::new();
    if range.start() < other.start() {
        let end = Port::new(other.start().get() - 1).unwrap_or(range.start());
        rest.extend(PortRange::new(range.start(), end.min(range.end())));
    }
    if range.end() > other.end() {
        let start = Port::new(other.end().get().saturating_add(1)).unwrap_or(range.end());
        rest.extend(PortRange::new(start.max(range.start()), range.end()));
    }
    rest
}

/// How to fix `later` overlapping `earlier`: remove it, or keep only the rest.
fn overlap_help(later: PortRange, earlier: PortRange) -> String {
    let rest = without(later, earlier);
    if rest.is_empty() {
        format!("remove `{later}` here")
    } else {
        let rest: Vec<String> = rest.iter().map(ToString::to_string).collect();
        format!("write `{}` here instead of `{later}`", rest.join(", "))
    }
}

fn items<'a, S>(
    list: impl Iterator<Item = (StmtId, Proto, &'a [PortRange], &'a [Net], &'a S)>,
) -> Vec<Item<'a, S>> {
    list.flat_map(|(stmt, proto, ports, from, statement)| {
        ports.iter().enumerate().map(move |(index, &range)| Item {
            stmt,
            index,
            proto,
            range,
            from,
            statement,
        })
    })
    .collect()
}

pub(super) fn check(model: &Model, spans: &Spans, out: &mut Vec<SpannedDiagnostic>) {
    let opens = items(
        model
            .opens
            .iter()
            .map(|o| (o.stmt, o.proto, o.ports.as_slice(), o.from.as_slice(), o)),
    );
    for (earlier, later) in overlapping_pairs(&opens) {
        open_pair(earlier, later, spans, out);
    }

    let blocks = items(
        model
            .block_out
            .iter()
            .map(|b| (b.stmt, b.proto, b.ports.as_slice(), &[][..], b)),
    );
    for (earlier, later) in overlapping_pairs(&blocks) {
        let what = format!(
            "outgoing {} {}",
            later.proto,
            overlap_text(earlier.range, later.range)
        );
        let message = if earlier.stmt == later.stmt {
            format!("{what} is listed twice")
        } else {
            format!("{what} is already blocked by `{}`", earlier.statement)
        };
        out.push(SpannedDiagnostic::new(
            Code::Duplicate,
            spans.port(later.stmt, later.index),
            message,
            overlap_help(later.range, earlier.range),
        ));
    }

    nat(model, spans, &opens, out);
}

fn open_pair<S: Display>(
    earlier: &Item<S>,
    later: &Item<S>,
    spans: &Spans,
    out: &mut Vec<SpannedDiagnostic>,
) {
    let what = format!(
        "{} {}",
        later.proto,
        overlap_text(earlier.range, later.range)
    );
    let span = spans.port(later.stmt, later.index);
    match (earlier.from.is_empty(), later.from.is_empty()) {
        (true, true) => out.push(SpannedDiagnostic::new(
            Code::Duplicate,
            span,
            if earlier.stmt == later.stmt {
                format!("{what} is listed twice")
            } else {
                format!("{what} is already opened by `{}`", earlier.statement)
            },
            overlap_help(later.range, earlier.range),
        )),
        (true, false) | (false, true) => {
            let (restricted, open) = if later.from.is_empty() {
                (earlier, later)
            } else {
                (later, earlier)
            };
            out.push(SpannedDiagnostic::new(
                Code::Redundant,
                spans.port(restricted.stmt, restricted.index),
                format!(
                    "the `from` restriction on {what} does nothing: `{}` opens it to everyone",
                    open.statement
                ),
                format!(
                    "to restrict it, remove `{}` from `{}`; otherwise remove it here",
                    open.range, open.statement
                ),
            ));
        }
        (false, false) => {
            let covered = later.from.iter().find_map(|n| {
                earlier
                    .from
                    .iter()
                    .find(|e| e.contains_net(n))
                    .map(|e| (n, e))
            });
            if let Some((net, by)) = covered {
                let (code, message) = if net == by && earlier.stmt == later.stmt {
                    (Code::Duplicate, format!("{what} is listed twice"))
                } else if net == by {
                    (
                        Code::Duplicate,
                        format!(
                            "{what} is already opened to {net} by `{}`",
                            earlier.statement
                        ),
                    )
                } else {
                    (
                        Code::Redundant,
                        format!(
                            "{what} is already opened to {by}, which contains {net}, by `{}`",
                            earlier.statement
                        ),
                    )
                };
                out.push(SpannedDiagnostic::new(
                    code,
                    span,
                    message,
                    overlap_help(later.range, earlier.range),
                ));
            }
        }
    }
}

/// An incoming port that NAT takes: (statement, protocol, port, text, is dnat).
struct Nat {
    stmt: StmtId,
    proto: Proto,
    port: Port,
    text: String,
    dnat: bool,
}

fn nat<S>(model: &Model, spans: &Spans, opens: &[Item<S>], out: &mut Vec<SpannedDiagnostic>) {
    let mut nat: Vec<Nat> = model
        .dnats
        .iter()
        .map(|d| Nat {
            stmt: d.stmt,
            proto: d.proto,
            port: d.port,
            text: d.to_string(),
            dnat: true,
        })
        .chain(model.redirects.iter().map(|r| Nat {
            stmt: r.stmt,
            proto: r.proto,
            port: r.port,
            text: r.to_string(),
            dnat: false,
        }))
        .collect();
    nat.sort_by_key(|n| n.stmt);
    for (j, later) in nat.iter().enumerate() {
        if let Some(earlier) = nat[..j]
            .iter()
            .find(|e| e.proto == later.proto && e.port == later.port)
        {
            out.push(SpannedDiagnostic::new(
                Code::Duplicate,
                spans.port(later.stmt, 0),
                format!(
                    "{} port {} is already taken by `{}`",
                    later.proto, later.port, earlier.text
                ),
                "an incoming port can go to one place only: remove one of the two",
            ));
        }
    }

    // `shadowed`: NAT rewrites the port in PREROUTING, before the filter sees it.
    for item in opens {
        for n in &nat {
            if item.proto == n.proto && item.range.contains(n.port) {
                let what = if n.dnat { "forwarded" } else { "redirected" };
                let fix = if item.range.is_single() {
                    format!("remove {} from this `open`", n.port)
                } else {
                    let rest: Vec<String> = without(item.range, PortRange::single(n.port))
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    format!("write `{}` instead of `{}`", rest.join(", "), item.range)
                };
                out.push(SpannedDiagnostic::new(
                    Code::Shadowed,
                    spans.port(item.stmt, item.index),
                    format!(
                        "this `open` of {} port {} never matches: `{}` takes those connections first",
                        n.proto, n.port, n.text
                    ),
                    format!("{fix}: `{}` already accepts exactly the {what} connections", n.text),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: u16, b: u16) -> PortRange {
        let p = |n| Port::new(n).unwrap_or_else(|| panic!("port {n}"));
        PortRange::new(p(a), p(b)).unwrap_or_else(|| panic!("range {a}..={b}"))
    }

    #[test]
    fn without_keeps_what_does_not_overlap() {
        assert_eq!(without(r(8080, 8090), r(8000, 8080)), vec![r(8081, 8090)]);
        assert_eq!(
            without(r(8000, 8100), r(8080, 8080)),
            vec![r(8000, 8079), r(8081, 8100)]
        );
        assert_eq!(without(r(25, 25), r(20, 30)), vec![]);
        assert_eq!(without(r(1, 65535), r(1, 1)), vec![r(2, 65535)]);
        assert_eq!(without(r(1, 65535), r(65535, 65535)), vec![r(1, 65534)]);
    }

    #[test]
    fn overlap_help_never_drops_ports_that_were_not_duplicated() {
        assert_eq!(overlap_help(r(443, 443), r(443, 443)), "remove `443` here");
        assert_eq!(
            overlap_help(r(20, 30), r(25, 25)),
            "write `20..=24, 26..=30` here instead of `20..=30`"
        );
    }
}
