//! The `assert` check: each assertion becomes packet classes, the classifier
//! runs them through the plan, and a part with the wrong fate is the
//! counterexample, with a note at the statement whose rule decided it.

use super::classify::{Class, Classifier, DecidedBy, Outcome, Proto, Verdict};
use super::interval::IntervalSet;
use crate::diagnostic::{Code, Sink, SpanRange, SpannedDiagnostic};
use crate::lowering::{Once, Spans};
use crate::model::{self, Assert, AssertKind, Iface, Model, Net};
use crate::plan::{Cause, Family, Hook, Origin, Plan};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Checks every `assert` of `model` against `plan`, into `out`.
pub(crate) fn check(model: &Model, plan: &Plan, spans: &Spans, out: &mut Sink) {
    if model.asserts.is_empty() {
        return;
    }
    let inside = inside_name(model);
    let classifier = Classifier::new(plan, &inside);
    for a in &model.asserts {
        if let Some(d) = check_one(model, &classifier, spans, a) {
            out.push(d);
        }
    }
}

/// A name for the interface towards the inner hosts: the first trusted
/// interface, else one no `extif` pattern matches.
pub(super) fn inside_name(model: &Model) -> String {
    if let Some(first) = model.trust.as_ref().and_then(|t| t.first()) {
        return concrete(first);
    }
    ["lan0", "inside0", "int0", "x0"]
        .into_iter()
        .find(|n| !model.extif.iter().any(|e| matches_pattern(e, n)))
        .unwrap_or("lan0")
        .to_string()
}

fn matches_pattern(pattern: &Iface, name: &str) -> bool {
    match pattern.as_str().strip_suffix('+') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern.as_str() == name,
    }
}

/// An interface name a pattern matches (`eth+` -> `eth0`).
pub(super) fn concrete(i: &Iface) -> String {
    match i.as_str().strip_suffix('+') {
        Some(prefix) => format!("{prefix}0"),
        None => i.as_str().to_string(),
    }
}

/// The sources of `from` in `family` (`None`: it names none of that family).
fn sources(from: &[Net], family: Family) -> Option<IntervalSet> {
    if from.is_empty() {
        return Some(IntervalSet::all_addresses(family.is_v4()));
    }
    let nets: Vec<&Net> = from
        .iter()
        .filter(|n| n.is_ipv4() == family.is_v4())
        .collect();
    (!nets.is_empty()).then(|| IntervalSet::nets(nets))
}

/// Whether a part's fate breaks the assertion.
type Wrong = Box<dyn Fn(&Outcome) -> bool>;

/// The first counterexample of `a`, as a diagnostic.
fn check_one(
    model: &Model,
    classifier: &Classifier,
    spans: &Spans,
    a: &Assert,
) -> Option<SpannedDiagnostic> {
    let families: &[Family] = match a.kind {
        AssertKind::Forwarded { .. } => &[Family::V4],
        _ => &[Family::V4, Family::V6],
    };
    let mut failures: Vec<Outcome> = Vec::new();
    for &family in families {
        for e in &model.extif {
            let iface = concrete(e);
            let (class, wrong): (Option<Class>, Wrong) = match &a.kind {
                AssertKind::Open { proto, ports, from }
                | AssertKind::Closed { proto, ports, from } => {
                    let open = matches!(a.kind, AssertKind::Open { .. });
                    let class = sources(from, family).map(|src| Class {
                        src,
                        dport: IntervalSet::ports(ports),
                        ..Class::incoming(family, &iface, Proto::from(*proto))
                    });
                    (
                        class,
                        Box::new(move |o: &Outcome| (o.verdict == Verdict::Accept) != open),
                    )
                }
                AssertKind::ClosedOut { proto, ports } => (
                    Some(Class {
                        dport: IntervalSet::ports(ports),
                        ..Class::outgoing(family, &iface, Proto::from(*proto))
                    }),
                    Box::new(|o: &Outcome| o.verdict == Verdict::Accept),
                ),
                AssertKind::Forwarded {
                    proto,
                    port,
                    to,
                    to_port,
                    from,
                } => {
                    let class = sources(from, family).map(|src| Class {
                        src,
                        dport: IntervalSet::ports(&[model::PortRange::single(*port)]),
                        ..Class::incoming(family, &iface, Proto::from(*proto))
                    });
                    let host = u128::from(u32::from(to.addr()));
                    let to_port = u128::from(to_port.get());
                    (
                        class,
                        Box::new(move |o: &Outcome| {
                            !(o.verdict == Verdict::Accept
                                && !o.class.local
                                && o.class.dst.single() == Some(host)
                                && o.class.dport.single() == Some(to_port))
                        }),
                    )
                }
            };
            let Some(class) = class else { continue };
            let mut wrong_parts: Vec<Outcome> = classifier
                .classify(class)
                .into_iter()
                .filter(|o| wrong(o))
                .collect();
            // The lowest port, then the lowest source: the same
            // counterexample every time.
            wrong_parts.sort_by_key(|o| {
                (
                    o.class.original_dport().intervals().first().map(|r| r.0),
                    o.class.src.intervals().first().map(|r| r.0),
                )
            });
            if let Some(first) = wrong_parts.into_iter().next() {
                failures.push(first);
                break; // one interface per family is enough
            }
        }
    }
    let first = failures.first()?;
    let packet = describe(a, first);
    let also = match failures.get(1) {
        Some(_) if matches!(a.kind, AssertKind::ClosedOut { .. }) => " (and over IPv6)".to_string(),
        Some(o) => format!(" (and over IPv6: from {})", source(o)),
        None => String::new(),
    };
    let (decider, note_span) = decider(first, spans);
    let by = match note_span {
        Some(_) => String::new(),
        None => format!(" by {decider}"),
    };
    let message = format!("`{a}` does not hold: {packet}{by}{also}");
    let help = help(a, first);
    let mut d = SpannedDiagnostic::new(Code::Assert, spans.of(a.stmt), message, help);
    if let Some(span) = note_span {
        d = d.with_note(span, format!("{decider} decides it"));
    }
    Some(d)
}

/// A representative source address of the part: a documentation address
/// when the part holds one, else its first address (not a network's `.0`).
fn source(o: &Outcome) -> IpAddr {
    let v4 = o.class.family.is_v4();
    let preferred: &[u128] = if v4 {
        &[
            0xc633_6407, // 198.51.100.7
            0xcb00_7107, // 203.0.113.7
        ]
    } else {
        &[0x2001_0db8_0000_0000_0000_0000_0000_0007]
    };
    let value = preferred
        .iter()
        .copied()
        .find(|v| o.class.src.contains(*v))
        .or_else(|| {
            o.class
                .src
                .intervals()
                .first()
                .map(|&(a, b)| if a < b && a & 0xff == 0 { a + 1 } else { a })
        })
        .unwrap_or(0);
    if v4 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(value).unwrap_or(0)))
    } else {
        IpAddr::V6(Ipv6Addr::from(value))
    }
}

fn first_of(set: &IntervalSet) -> u128 {
    set.intervals().first().map_or(0, |r| r.0)
}

fn proto_word(c: &Class) -> &'static str {
    match c.proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Icmp => "icmp",
    }
}

/// The counterexample packet and its fate, in words.
fn describe(a: &Assert, o: &Outcome) -> String {
    let c = &o.class;
    let proto = proto_word(c);
    let port = first_of(c.original_dport());
    let fate = match o.verdict {
        Verdict::Accept => "accepted",
        Verdict::Drop => "dropped",
        Verdict::Reject => "rejected",
    };
    match a.kind {
        AssertKind::ClosedOut { .. } => format!(
            "this host's {} {proto} to port {port} out through {} is {fate}",
            if c.family.is_v4() { "IPv4" } else { "IPv6" },
            c.oif.as_deref().unwrap_or("?"),
        ),
        _ => {
            let iface = c.iif.as_deref().unwrap_or("?");
            let mut s = format!("{proto} from {} to port {port} on {iface} is ", source(o));
            if o.verdict == Verdict::Accept && matches!(a.kind, AssertKind::Forwarded { .. }) {
                if c.local {
                    s.push_str(&format!(
                        "accepted by this host itself (port {})",
                        first_of(&c.dport)
                    ));
                } else {
                    let dst = Ipv4Addr::from(u32::try_from(first_of(&c.dst)).unwrap_or(0));
                    s.push_str(&format!("forwarded to {dst}:{}", first_of(&c.dport)));
                }
            } else {
                s.push_str(fate);
            }
            s
        }
    }
}

/// The decider in words, and the span of the statement it comes from.
fn decider(o: &Outcome, spans: &Spans) -> (String, Option<SpanRange>) {
    match o.by {
        DecidedBy::Rule(rule) => {
            let span = match &rule.origin {
                Origin::Statement { stmt, .. } => Some(spans.of(*stmt)),
                Origin::Derived(cause) => cause_once(cause).and_then(|w| spans.once(w)),
            };
            let text = match &rule.origin {
                Origin::Statement { text, .. } => format!("`{text}`"),
                Origin::Derived(cause) if span.is_some() => format!("`{cause}`"),
                Origin::Derived(cause) => format!("the rule `{cause}`"),
            };
            (text, span)
        }
        DecidedBy::Policy(hook) => {
            let chain = match hook {
                Hook::Forward => model::Chain::Forward,
                Hook::Output => model::Chain::Output,
                _ => model::Chain::Input,
            };
            let span = spans.once(Once::Policy(chain));
            let verdict = match o.verdict {
                Verdict::Accept => "accept",
                _ => "drop",
            };
            let text = match span {
                Some(_) => format!("`policy {} {verdict}`", chain.as_str()),
                None => format!("the default `policy {} {verdict}`", chain.as_str()),
            };
            (text, span)
        }
    }
}

/// The once-only statement a derived rule comes from, if any.
fn cause_once(cause: &Cause) -> Option<Once> {
    Some(match cause {
        Cause::Extif(_) => Once::Extif,
        Cause::Trust(_) => Once::Trust,
        Cause::IcmpAccept | Cause::IcmpDrop => Once::Icmp,
        Cause::Masquerade => Once::Masquerade,
        Cause::ForwardDrop => Once::ForwardDrop,
        Cause::LogDrops => Once::LogDrops,
        Cause::PolicyReject(chain) => Once::Policy(*chain),
        Cause::ForwardAcceptFromOutside => Once::Policy(model::Chain::Forward),
        _ => return None,
    })
}

/// How to make the assertion hold.
fn help(a: &Assert, o: &Outcome) -> String {
    let proto = proto_word(&o.class);
    let port = first_of(o.class.original_dport());
    match &a.kind {
        AssertKind::Open { .. } => format!(
            "accept it (`open {proto} {port};`, with `from` to restrict the sources), or correct the assertion"
        ),
        AssertKind::Closed { .. } => format!(
            "take port {port} out of the statement that accepts it (or restrict it with `from`), or correct the assertion"
        ),
        AssertKind::ClosedOut { .. } => {
            format!("add `block out {proto} {port};`, or correct the assertion")
        }
        AssertKind::Forwarded {
            proto,
            port,
            to,
            to_port,
            ..
        } => {
            let p = match proto {
                model::Proto::Tcp => "",
                model::Proto::Udp => "udp ",
            };
            format!("add `dnat {p}{port} -> {to}:{to_port};`, or correct the assertion")
        }
    }
}
