//! `duplicate`, `redundant`, `shadowed`: ports said twice, restrictions that do
//! nothing, and opens that NAT takes first.

use crate::compile::Spans;
use crate::diagnostic::{Code, SpannedDiagnostic};
use crate::model::{Model, Net, PortRange, Proto, StmtId};

/// One port item of an `open` (or `block out`) with where it came from.
struct Item<'a> {
    stmt: StmtId,
    index: usize,
    proto: Proto,
    range: PortRange,
    from: &'a [Net],
    text: String,
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

pub(super) fn check(model: &Model, spans: &Spans, out: &mut Vec<SpannedDiagnostic>) {
    let opens: Vec<Item> = model
        .opens
        .iter()
        .flat_map(|o| {
            o.ports.iter().enumerate().map(move |(index, &range)| Item {
                stmt: o.stmt,
                index,
                proto: o.proto,
                range,
                from: &o.from,
                text: o.to_string(),
            })
        })
        .collect();

    for (j, later) in opens.iter().enumerate() {
        for earlier in &opens[..j] {
            if earlier.proto != later.proto || !earlier.range.overlaps(later.range) {
                continue;
            }
            let what = format!(
                "{} {}",
                later.proto,
                overlap_text(earlier.range, later.range)
            );
            let span = spans.port(later.stmt, later.index);
            let same_stmt = earlier.stmt == later.stmt;
            match (earlier.from.is_empty(), later.from.is_empty()) {
                (true, true) => out.push(SpannedDiagnostic::new(
                    Code::Duplicate,
                    span,
                    if same_stmt {
                        format!("{what} is listed twice")
                    } else {
                        format!("{what} is already opened by `{}`", earlier.text)
                    },
                    format!("remove `{}` here", later.range),
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
                            open.text
                        ),
                        format!(
                            "to restrict it, remove `{}` from `{}`; otherwise remove it here",
                            open.range, open.text
                        ),
                    ));
                }
                (false, false) => {
                    if let Some(net) = later
                        .from
                        .iter()
                        .find(|n| earlier.from.iter().any(|e| e.contains_net(n)))
                    {
                        out.push(SpannedDiagnostic::new(
                            if earlier.from.contains(net) {
                                Code::Duplicate
                            } else {
                                Code::Redundant
                            },
                            span,
                            format!("{what} is already opened to {net} by `{}`", earlier.text),
                            format!("remove `{}` here", later.range),
                        ));
                    }
                }
            }
        }
    }

    // `block out` lists.
    let blocks: Vec<Item> = model
        .block_out
        .iter()
        .flat_map(|b| {
            b.ports.iter().enumerate().map(move |(index, &range)| Item {
                stmt: b.stmt,
                index,
                proto: b.proto,
                range,
                from: &[],
                text: b.to_string(),
            })
        })
        .collect();
    for (j, later) in blocks.iter().enumerate() {
        if let Some(earlier) = blocks[..j]
            .iter()
            .find(|e| e.proto == later.proto && e.range.overlaps(later.range))
        {
            out.push(SpannedDiagnostic::new(
                Code::Duplicate,
                spans.port(later.stmt, later.index),
                if earlier.stmt == later.stmt {
                    format!(
                        "outgoing {} {} is listed twice",
                        later.proto,
                        overlap_text(earlier.range, later.range)
                    )
                } else {
                    format!(
                        "outgoing {} {} is already blocked by `{}`",
                        later.proto,
                        overlap_text(earlier.range, later.range),
                        earlier.text
                    )
                },
                format!("remove `{}` here", later.range),
            ));
        }
    }

    // Incoming ports taken by NAT: (stmt, proto, port, text).
    let nat: Vec<(StmtId, Proto, crate::model::Port, String, bool)> = model
        .dnats
        .iter()
        .map(|d| (d.stmt, d.proto, d.port, d.to_string(), true))
        .chain(
            model
                .redirects
                .iter()
                .map(|r| (r.stmt, r.proto, r.port, r.to_string(), false)),
        )
        .collect();
    let mut nat_sorted = nat.clone();
    nat_sorted.sort_by_key(|n| n.0);
    for (j, later) in nat_sorted.iter().enumerate() {
        if let Some(earlier) = nat_sorted[..j]
            .iter()
            .find(|e| e.1 == later.1 && e.2 == later.2)
        {
            out.push(SpannedDiagnostic::new(
                Code::Duplicate,
                spans.port(later.0, 0),
                format!(
                    "{} port {} is already taken by `{}`",
                    later.1, later.2, earlier.3
                ),
                "an incoming port can go to one place only: remove one of the two",
            ));
        }
    }

    // `shadowed`: NAT rewrites the port before the filter sees it.
    for item in &opens {
        for (_, proto, port, text, is_dnat) in &nat {
            if item.proto == *proto && item.range.contains(*port) {
                let help = if *is_dnat {
                    format!("remove {port} from this `open`: `{text}` already accepts exactly the forwarded connections")
                } else {
                    format!("remove {port} from this `open`: `{text}` already accepts exactly the redirected connections")
                };
                out.push(SpannedDiagnostic::new(
                    Code::Shadowed,
                    spans.port(item.stmt, item.index),
                    format!("this `open` of {proto} port {port} never matches: `{text}` takes those connections first"),
                    help,
                ));
            }
        }
    }
}
