//! `duplicate`, `redundant`, `shadowed`: ports said twice, restrictions that do
//! nothing, and opens that NAT takes first.
//!
//! Each port item of an `open` or `block out` is checked once, in source order,
//! against an interval index of what came before it ([`Coverage`]), so n items
//! cost O(n log n) and a duplicated item gets one diagnostic however many items
//! it overlaps. Ports opened to networks are indexed per (protocol, network); a
//! network is covered by itself and by its supernets, which are looked up at
//! the prefix lengths the policy uses (at most 33 or 129 lookups per network).

use crate::diagnostic::{Code, Sink, SpannedDiagnostic};
use crate::lowering::Spans;
use crate::model::{Model, Net, Open, Port, PortRange, Proto, StmtId};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Display;

/// One port item of an `open`.
#[derive(Clone, Copy)]
struct Item<'a> {
    open: &'a Open,
    /// Position in the statement's port list.
    index: usize,
    range: PortRange,
}

impl Item<'_> {
    fn stmt(&self) -> StmtId {
        self.open.stmt
    }

    fn proto(&self) -> Proto {
        self.open.proto
    }
}

/// The protocols as array slots.
fn slot(proto: Proto) -> usize {
    match proto {
        Proto::Tcp => 0,
        Proto::Udp => 1,
    }
}

/// A set of ports that remembers, for each port, the first item that covered it.
///
/// `merged` holds the set as disjoint, non-touching intervals (what makes
/// [`Coverage::insert`] amortized O(log n)); `owners` holds the same ports as
/// disjoint pieces, each with the item that covered it first.
struct Coverage<T> {
    merged: BTreeMap<u16, u16>,
    owners: BTreeMap<u16, (u16, T)>,
}

impl<T> Default for Coverage<T> {
    fn default() -> Self {
        Coverage {
            merged: BTreeMap::new(),
            owners: BTreeMap::new(),
        }
    }
}

fn port(n: u32) -> Option<Port> {
    u16::try_from(n).ok().and_then(Port::new)
}

impl<T: Copy> Coverage<T> {
    /// The item that first covered the lowest covered port of `r`, if any.
    fn first(&self, r: PortRange) -> Option<T> {
        let (s, e) = (r.start().get(), r.end().get());
        if let Some((_, &(end, t))) = self.owners.range(..=s).next_back() {
            if end >= s {
                return Some(t);
            }
        }
        self.owners.range(s..=e).next().map(|(_, &(_, t))| t)
    }

    /// Adds `r`, owned by `t` where nothing covered it before; returns those
    /// newly covered parts of `r` (in port order).
    fn insert(&mut self, r: PortRange, t: T) -> Vec<PortRange> {
        let (s16, e16) = (r.start().get(), r.end().get());
        let (s, e) = (u32::from(s16), u32::from(e16));
        let begin = self
            .merged
            .range(..=s16)
            .next_back()
            .map_or(s16, |(&a, _)| a);
        let touching: Vec<(u32, u32)> = self
            .merged
            .range(begin..)
            .map(|(&a, &b)| (u32::from(a), u32::from(b)))
            .take_while(|&(a, _)| a <= e + 1)
            .filter(|&(_, b)| b + 1 >= s)
            .collect();
        let (mut lo, mut hi, mut next) = (s, e, s);
        let mut gaps = Vec::new();
        for (a, b) in touching {
            if a > next && next <= e {
                gaps.push((next, (a - 1).min(e)));
            }
            next = next.max(b + 1);
            lo = lo.min(a);
            hi = hi.max(b);
            if let Ok(a) = u16::try_from(a) {
                self.merged.remove(&a);
            }
        }
        if next <= e {
            gaps.push((next, e));
        }
        if let (Ok(lo), Ok(hi)) = (u16::try_from(lo), u16::try_from(hi)) {
            self.merged.insert(lo, hi);
        }
        gaps.into_iter()
            .filter_map(|(a, b)| {
                let piece = PortRange::new(port(a)?, port(b)?)?;
                self.owners
                    .insert(piece.start().get(), (piece.end().get(), t));
                Some(piece)
            })
            .collect()
    }
}

/// Statement texts for messages, written once each and shortened when long
/// (a 10,000-port statement is not repeated in 10,000 messages).
#[derive(Default)]
struct Names(HashMap<StmtId, String>);

impl Names {
    fn of(&mut self, id: StmtId, stmt: &dyn Display) -> String {
        self.0
            .entry(id)
            .or_insert_with(|| shorten(stmt.to_string()))
            .clone()
    }
}

/// `open tcp 1, 2, 3, ...` beyond 60 characters.
fn shorten(s: String) -> String {
    const MAX: usize = 60;
    match s.get(..MAX).and_then(|head| head.rfind(", ")) {
        Some(cut) if s.len() > MAX => format!("{}, ...", &s[..cut]),
        _ => s,
    }
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

fn join(ranges: &[PortRange]) -> String {
    ranges
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How to fix an item `range` of which only `rest` is new: remove it, or keep
/// only the rest.
fn rest_help(range: PortRange, rest: &[PortRange]) -> String {
    match rest.len() {
        0 => format!("remove `{range}` here"),
        1..=4 => format!("write `{}` here instead of `{range}`", join(rest)),
        n => format!(
            "split `{range}` here into the {n} pieces that are not covered already (e.g. `{}, ...`)",
            join(&rest[..3])
        ),
    }
}

/// How to fix `later` overlapping `earlier`: remove it, or keep only the rest.
fn overlap_help(later: PortRange, earlier: PortRange) -> String {
    rest_help(later, &without(later, earlier))
}

/// A network as the language writes it (IPv6 quoted).
fn written(n: &Net) -> String {
    if n.is_ipv4() {
        n.to_string()
    } else {
        format!("\"{n}\"")
    }
}

pub(super) fn check(model: &Model, spans: &Spans, out: &mut Sink) {
    let mut names = Names::default();
    let items: Vec<Item> = model
        .opens
        .iter()
        .flat_map(|open| {
            open.ports
                .iter()
                .enumerate()
                .map(move |(index, &range)| Item { open, index, range })
        })
        .collect();

    // Ports open to everyone: a later item that overlaps is a duplicate.
    let mut everyone: [Coverage<usize>; 2] = Default::default();
    for (k, item) in items.iter().enumerate() {
        if !item.open.from.is_empty() {
            continue;
        }
        let cov = &mut everyone[slot(item.proto())];
        let earlier = cov.first(item.range);
        let rest = cov.insert(item.range, k);
        if let Some(e) = earlier {
            let earlier = &items[e];
            let what = format!(
                "{} {}",
                item.proto(),
                overlap_text(earlier.range, item.range)
            );
            let message = if earlier.stmt() == item.stmt() {
                format!("{what} is listed twice")
            } else {
                format!(
                    "{what} is already opened by `{}`",
                    names.of(earlier.stmt(), earlier.open)
                )
            };
            out.push(SpannedDiagnostic::new(
                Code::Duplicate,
                spans.port(item.stmt(), item.index),
                message,
                rest_help(item.range, &rest),
            ));
        }
    }

    // With `policy input accept` a `from` restricts nothing (the `accept`
    // check reports each one); comparing restrictions would only add noise.
    if model.input.blocks() {
        restricted(&items, &everyone, spans, &mut names, out);
    }

    block_out(model, spans, &mut names, out);
    nat(model, spans, &items, out);
}

/// Why a network of a restricted item adds nothing.
#[derive(Clone, Copy)]
enum Cause {
    /// An earlier item opens the port to the same network.
    Same { by: usize },
    /// An item opens the port to a network that contains this one.
    Inside { by: usize, net: Net },
}

impl Cause {
    fn by(self) -> usize {
        match self {
            Cause::Same { by } | Cause::Inside { by, .. } => by,
        }
    }
}

/// `from`-restricted items: redundant next to a port open to everyone, or
/// covered (for one of their networks) by another restricted item.
fn restricted(
    items: &[Item],
    everyone: &[Coverage<usize>; 2],
    spans: &Spans,
    names: &mut Names,
    out: &mut Sink,
) {
    let mut prefixes: [BTreeSet<u8>; 2] = Default::default();
    for item in items {
        for n in &item.open.from {
            prefixes[usize::from(!n.is_ipv4())].insert(n.prefix());
        }
    }
    // Per item: `None` if open to everyone anyway, else the cause per network.
    let mut causes: Vec<Option<Vec<Option<Cause>>>> = vec![None; items.len()];
    let mut by_net: HashMap<(Proto, Net), Coverage<usize>> = HashMap::new();
    for (k, item) in items.iter().enumerate() {
        if item.open.from.is_empty() {
            continue;
        }
        if let Some(o) = everyone[slot(item.proto())].first(item.range) {
            let open = &items[o];
            out.push(SpannedDiagnostic::new(
                Code::Redundant,
                spans.port(item.stmt(), item.index),
                format!(
                    "the `from` restriction on {} {} does nothing: `{}` opens it to everyone",
                    item.proto(),
                    overlap_text(open.range, item.range),
                    names.of(open.stmt(), open.open)
                ),
                format!(
                    "to restrict it, remove `{}` from `{}`; otherwise remove it here",
                    open.range,
                    names.of(open.stmt(), open.open)
                ),
            ));
        } else {
            causes[k] = Some(vec![None; item.open.from.len()]);
        }
        for (j, n) in item.open.from.iter().enumerate() {
            let cov = by_net.entry((item.proto(), *n)).or_default();
            if let Some(per_net) = causes[k].as_mut() {
                per_net[j] = cov.first(item.range).map(|by| Cause::Same { by });
            }
            cov.insert(item.range, k);
        }
    }
    // Supernets, over every item (earlier or later).
    for (k, item) in items.iter().enumerate() {
        let Some(per_net) = causes[k].as_mut() else {
            continue;
        };
        for (j, n) in item.open.from.iter().enumerate() {
            if per_net[j].is_some() {
                continue;
            }
            let fam = &prefixes[usize::from(!n.is_ipv4())];
            per_net[j] = fam.range(..n.prefix()).rev().find_map(|&p| {
                let net = n.supernet(p)?;
                let by = by_net.get(&(item.proto(), net))?.first(item.range)?;
                Some(Cause::Inside { by, net })
            });
        }
    }
    report(items, &causes, spans, names, out);
}

/// One diagnostic per covered item (single network: at the port), or per
/// covered network of a statement (several networks: at the network, so that
/// the fix does not revoke the others).
fn report(
    items: &[Item],
    causes: &[Option<Vec<Option<Cause>>>],
    spans: &Spans,
    names: &mut Names,
    out: &mut Sink,
) {
    // (statement, network index) -> the items covered for it, in order.
    let mut per_net: BTreeMap<(StmtId, usize), Vec<(usize, Cause)>> = BTreeMap::new();
    // Items reported as listed twice in their own statement: (statement, index).
    let mut twice: HashSet<(StmtId, usize)> = HashSet::new();
    for (k, item) in items.iter().enumerate() {
        let Some(per) = &causes[k] else { continue };
        let from = &item.open.from;
        // The same port twice in one statement is a port-list mistake.
        let same_stmt = per.iter().flatten().find_map(|c| match c {
            Cause::Same { by } if items[*by].stmt() == item.stmt() => Some(by),
            _ => None,
        });
        if let Some(by) = same_stmt {
            {
                let what = format!(
                    "{} {}",
                    item.proto(),
                    overlap_text(items[*by].range, item.range)
                );
                out.push(SpannedDiagnostic::new(
                    Code::Duplicate,
                    spans.port(item.stmt(), item.index),
                    format!("{what} is listed twice"),
                    overlap_help(item.range, items[*by].range),
                ));
                twice.insert((item.stmt(), item.index));
                continue;
            }
        }
        if from.len() == 1 {
            if let Some(cause) = per[0] {
                let by = &items[cause.by()];
                let (code, message) = covered_message(item, by, &from[0], cause, names);
                out.push(SpannedDiagnostic::new(
                    code,
                    spans.port(item.stmt(), item.index),
                    message,
                    overlap_help(item.range, by.range),
                ));
            }
            continue;
        }
        for (j, c) in per.iter().enumerate() {
            if let Some(c) = c {
                per_net.entry((item.stmt(), j)).or_default().push((k, *c));
            }
        }
    }
    for ((stmt, j), covered) in per_net {
        let Some(&(k, cause)) = covered.first() else {
            continue;
        };
        let item = &items[k];
        let n = &item.open.from[j];
        let by = &items[cause.by()];
        let span = spans
            .nets
            .get(&(stmt, j))
            .copied()
            .unwrap_or_else(|| spans.port(stmt, item.index));
        if by.stmt() == stmt {
            let net = match cause {
                Cause::Inside { net, .. } => net,
                Cause::Same { .. } => *n,
            };
            out.push(SpannedDiagnostic::new(
                Code::Redundant,
                span,
                format!("{n} is inside {net}, which this `from` lists too"),
                format!("remove `{}` from this `from`", written(n)),
            ));
            continue;
        }
        let (code, message) = covered_message(item, by, n, cause, names);
        // The ports of this statement that stay uncovered for `n`.
        let mut rest = Vec::new();
        for (index, range) in item.open.ports.iter().enumerate() {
            if twice.contains(&(stmt, index)) {
                continue; // removed anyway, by its own diagnostic
            }
            match covered
                .iter()
                .find(|(c, _)| items[*c].index == index && items[*c].stmt() == stmt)
            {
                Some((_, c)) => rest.extend(without(*range, items[c.by()].range)),
                None => rest.push(*range),
            }
        }
        let help = if rest.is_empty() {
            format!(
                "remove `{}` from this `from`: `{}` already opens these ports to it",
                written(n),
                names.of(by.stmt(), by.open)
            )
        } else {
            format!(
                "remove `{}` from this `from` and add `open {} {} from {};`",
                written(n),
                item.proto(),
                join(&rest),
                written(n)
            )
        };
        out.push(SpannedDiagnostic::new(code, span, message, help));
    }
}

fn covered_message(
    item: &Item,
    by: &Item,
    n: &Net,
    cause: Cause,
    names: &mut Names,
) -> (Code, String) {
    let what = format!("{} {}", item.proto(), overlap_text(by.range, item.range));
    let name = names.of(by.stmt(), by.open);
    match cause {
        Cause::Same { .. } => (
            Code::Duplicate,
            format!("{what} is already opened to {n} by `{name}`"),
        ),
        Cause::Inside { net, .. } => (
            Code::Redundant,
            if by.stmt() < item.stmt() {
                format!("{what} is already opened to {net}, which contains {n}, by `{name}`")
            } else {
                format!("{what} is also opened to {net}, which contains {n}, by `{name}`")
            },
        ),
    }
}

/// `block out` items blocked twice.
fn block_out(model: &Model, spans: &Spans, names: &mut Names, out: &mut Sink) {
    let mut blocked: [Coverage<(usize, usize)>; 2] = Default::default();
    for (b, block) in model.block_out.iter().enumerate() {
        for (index, &range) in block.ports.iter().enumerate() {
            let cov = &mut blocked[slot(block.proto)];
            let earlier = cov.first(range);
            let rest = cov.insert(range, (b, index));
            let Some((eb, ei)) = earlier else { continue };
            let earlier_block = &model.block_out[eb];
            let earlier_range = earlier_block.ports[ei];
            let what = format!(
                "outgoing {} {}",
                block.proto,
                overlap_text(earlier_range, range)
            );
            let message = if earlier_block.stmt == block.stmt {
                format!("{what} is listed twice")
            } else {
                format!(
                    "{what} is already blocked by `{}`",
                    names.of(earlier_block.stmt, earlier_block)
                )
            };
            out.push(SpannedDiagnostic::new(
                Code::Duplicate,
                spans.port(block.stmt, index),
                message,
                rest_help(range, &rest),
            ));
        }
    }
}

/// An incoming port that NAT takes.
struct Nat {
    stmt: StmtId,
    proto: Proto,
    port: Port,
    text: String,
    dnat: bool,
}

fn nat(model: &Model, spans: &Spans, opens: &[Item], out: &mut Sink) {
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
    let mut first: HashMap<(Proto, Port), usize> = HashMap::new();
    for (j, later) in nat.iter().enumerate() {
        if let Some(&e) = first.get(&(later.proto, later.port)) {
            out.push(SpannedDiagnostic::new(
                Code::Duplicate,
                spans.port(later.stmt, 0),
                format!(
                    "{} port {} is already taken by `{}`",
                    later.proto, later.port, nat[e].text
                ),
                "an incoming port can go to one place only: remove one of the two",
            ));
        } else {
            first.insert((later.proto, later.port), j);
        }
    }
    // The first NAT statement of each (protocol, port), in port order.
    let mut taken: Vec<(Proto, Port, usize)> = first
        .into_iter()
        .map(|((p, port), j)| (p, port, j))
        .collect();
    taken.sort_unstable();

    // `shadowed`: NAT rewrites the port in PREROUTING, before the filter sees it.
    for item in opens {
        let key = |p: Port| (item.proto(), p);
        let lo = taken.partition_point(|&(p, port, _)| (p, port) < key(item.range.start()));
        let hi = taken.partition_point(|&(p, port, _)| (p, port) <= key(item.range.end()));
        let Some(&(_, _, j)) = taken.get(lo) else {
            continue;
        };
        if lo >= hi {
            continue;
        }
        let n = &nat[j];
        let span = spans.port(item.stmt(), item.index);
        if hi - lo == 1 {
            let what = if n.dnat { "forwarded" } else { "redirected" };
            let fix = if item.range.is_single() {
                format!("remove {} from this `open`", n.port)
            } else {
                format!(
                    "write `{}` instead of `{}`",
                    join(&without(item.range, PortRange::single(n.port))),
                    item.range
                )
            };
            out.push(SpannedDiagnostic::new(
                Code::Shadowed,
                span,
                format!(
                    "this `open` of {} port {} never matches: `{}` takes those connections first",
                    n.proto, n.port, n.text
                ),
                format!(
                    "{fix}: `{}` already accepts exactly the {what} connections",
                    n.text
                ),
            ));
            continue;
        }
        // Several: one diagnostic for the item, the fix leaves them all out.
        let mut rest = Vec::new();
        let mut next = u32::from(item.range.start().get());
        for &(_, p, _) in &taken[lo..hi] {
            let p = u32::from(p.get());
            if p > next {
                rest.extend(
                    port(next)
                        .zip(port(p - 1))
                        .and_then(|(a, b)| PortRange::new(a, b)),
                );
            }
            next = p + 1;
        }
        let end = u32::from(item.range.end().get());
        if next <= end {
            rest.extend(
                port(next)
                    .zip(port(end))
                    .and_then(|(a, b)| PortRange::new(a, b)),
            );
        }
        let fix = match rest.len() {
            0 => "remove it from this `open`".to_string(),
            1..=4 => format!("write `{}` instead of `{}`", join(&rest), item.range),
            _ => format!(
                "leave the {} forwarded or redirected ports out of `{}`",
                hi - lo,
                item.range
            ),
        };
        out.push(SpannedDiagnostic::new(
            Code::Shadowed,
            span,
            format!(
                "this `open` of {} {} never matches for the {} ports that NAT takes first, starting with `{}`",
                item.proto(),
                item.range,
                hi - lo,
                n.text
            ),
            format!("{fix}: each `dnat`/`redirect` already accepts exactly its connections"),
        ));
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

    #[test]
    fn coverage_returns_the_new_parts_and_the_first_owner() {
        let mut c: Coverage<u8> = Coverage::default();
        assert_eq!(c.insert(r(10, 20), 1), vec![r(10, 20)]);
        assert_eq!(c.insert(r(30, 40), 2), vec![r(30, 40)]);
        assert_eq!(c.first(r(1, 9)), None);
        assert_eq!(c.first(r(15, 35)), Some(1));
        assert_eq!(c.first(r(21, 35)), Some(2));
        assert_eq!(c.first(r(21, 29)), None);
        assert_eq!(
            c.insert(r(1, 65535), 3),
            vec![r(1, 9), r(21, 29), r(41, 65535)]
        );
        assert_eq!(c.first(r(25, 25)), Some(3));
        assert_eq!(c.insert(r(1, 65535), 4), vec![]);
        assert_eq!(c.merged.len(), 1);
        // Touching intervals merge.
        let mut c: Coverage<u8> = Coverage::default();
        c.insert(r(1, 1), 0);
        c.insert(r(2, 2), 0);
        c.insert(r(65535, 65535), 0);
        c.insert(r(3, 65534), 0);
        assert_eq!(c.merged.into_iter().collect::<Vec<_>>(), vec![(1, 65535)]);
    }

    #[test]
    fn long_statements_are_shortened_in_messages() {
        let long = format!("open tcp {}", vec!["1..=65535"; 20].join(", "));
        let s = shorten(long);
        assert!(s.len() <= 66, "{s}");
        assert!(s.ends_with(", ..."), "{s}");
        assert_eq!(shorten("open tcp 22".into()), "open tcp 22");
    }
}
