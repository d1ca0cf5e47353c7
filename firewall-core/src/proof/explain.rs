//! `explain()`: the policy as a reviewer reads it, computed by the
//! classifier from the planned rules, never from the statements. Per family
//! and external interface: which ports accept new connections from whom
//! (and what is forwarded where, rate limited, redirected), what the inside
//! may forward out, and what this host may open outward.

use super::classify::{Class, Classifier, DecidedBy, Outcome, Proto, Verdict};
use super::interval::IntervalSet;
use crate::model::{Iface, Model};
use crate::plan::{Family, Hook, Plan, Rule};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The explanation of `plan`, the plan of `model` (whose interfaces it names).
pub fn explain(model: &Model, plan: &Plan) -> String {
    let inside = super::assert::inside_name(model);
    let c = Classifier::new(plan, &inside);
    let mut s = String::new();
    for family in [Family::V4, Family::V6] {
        let fam = if family.is_v4() { "IPv4" } else { "IPv6" };
        for e in &model.extif {
            let iface = concrete(e);
            let _ = writeln!(s, "{fam}, new connections in through {e}:");
            let mut any = false;
            for proto in [Proto::Tcp, Proto::Udp] {
                let parts = c.classify(Class::incoming(family, &iface, proto));
                for line in accepted_lines(&parts, family) {
                    any = true;
                    let _ = writeln!(s, "  {line}");
                }
            }
            let echo = c.classify(Class {
                icmp_type: Some(if family.is_v4() { 8 } else { 128 }),
                ..Class::incoming(family, &iface, Proto::Icmp)
            });
            for line in accepted_lines(&echo, family) {
                any = true;
                let _ = writeln!(s, "  {line}");
            }
            let _ = writeln!(
                s,
                "  {}",
                if any {
                    "anything else: not accepted"
                } else {
                    "nothing is accepted"
                }
            );
            let _ = writeln!(
                s,
                "{fam}, forwarded from the inside ({inside}) out through {e}:"
            );
            for proto in [Proto::Tcp, Proto::Udp] {
                let class = Class {
                    iif: Some(inside.clone()),
                    oif: Some(iface.clone()),
                    local: false,
                    ..Class::incoming(family, &inside, proto)
                };
                for line in fate_lines(&c.classify(class)) {
                    let _ = writeln!(s, "  {line}");
                }
            }
            let _ = writeln!(s, "{fam}, new connections this host opens out through {e}:");
            for proto in [Proto::Tcp, Proto::Udp] {
                for line in fate_lines(&c.classify(Class::outgoing(family, &iface, proto))) {
                    let _ = writeln!(s, "  {line}");
                }
            }
        }
    }
    s
}

fn concrete(i: &Iface) -> String {
    super::assert::concrete(i)
}

fn proto_word(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Icmp => "icmp",
    }
}

fn by_text(by: &DecidedBy) -> String {
    match by {
        DecidedBy::Rule(r) => r.origin.to_string(),
        DecidedBy::Policy(hook) => format!(
            "policy {}",
            match hook {
                Hook::Forward => "forward",
                Hook::Output => "output",
                _ => "input",
            }
        ),
    }
}

fn limit_text(by: &DecidedBy) -> String {
    match by {
        DecidedBy::Rule(Rule {
            matches: crate::plan::Matches { limit: Some(l), .. },
            ..
        }) => format!(", rate limited to {}/min (burst {})", l.per_minute, l.burst),
        _ => String::new(),
    }
}

/// The accepted parts, grouped by what happens to them and from whom, with
/// their original ports merged.
fn accepted_lines(parts: &[Outcome], family: Family) -> Vec<String> {
    let mut groups: BTreeMap<(String, String, String), Vec<(u128, u128)>> = BTreeMap::new();
    for o in parts.iter().filter(|o| o.verdict == Verdict::Accept) {
        let c = &o.class;
        let what = if c.proto == Proto::Icmp {
            "icmp echo request".to_string()
        } else {
            proto_word(c.proto).to_string()
        };
        let fate = if !c.local {
            format!(
                "forwarded to {}:{}",
                addr(family, first(&c.dst)),
                first(&c.dport)
            )
        } else if c.dnat_from.is_some() {
            format!("accepted on port {}", first(&c.dport))
        } else {
            "accepted".to_string()
        };
        let key = (
            what,
            format!("{fate} from {}", sources(&c.src, family)),
            format!("{}{}", by_text(&o.by), limit_text(&o.by)),
        );
        let ports = if c.proto == Proto::Icmp {
            Vec::new()
        } else {
            c.original_dport().intervals().to_vec()
        };
        groups.entry(key).or_default().extend(ports);
    }
    // By protocol, then by lowest port: the order a reviewer scans in.
    let mut lines: Vec<(String, u128, String)> = groups
        .into_iter()
        .map(|((what, fate, by), ports)| {
            let ports = IntervalSet::of(ports);
            let line = if what.starts_with("icmp") {
                format!("{what}: {fate} ({by})")
            } else {
                format!("{what} {}: {fate} ({by})", ports_text(&ports))
            };
            (what, first(&ports), line)
        })
        .collect();
    lines.sort();
    lines.into_iter().map(|(_, _, line)| line).collect()
}

/// Protocol, verdict, decider.
type FateKey = (&'static str, Verdict, String);

/// Every part's fate by protocol, verdict and decider, ports merged.
fn fate_lines(parts: &[Outcome]) -> Vec<String> {
    let mut groups: BTreeMap<FateKey, Vec<(u128, u128)>> = BTreeMap::new();
    for o in parts {
        groups
            .entry((proto_word(o.class.proto), o.verdict, by_text(&o.by)))
            .or_default()
            .extend(o.class.original_dport().intervals().iter().copied());
    }
    groups
        .into_iter()
        .map(|((proto, verdict, by), ports)| {
            let v = match verdict {
                Verdict::Accept => "accepted",
                Verdict::Drop => "dropped",
                Verdict::Reject => "rejected",
            };
            format!(
                "{proto} {}: {v} ({by})",
                ports_text(&IntervalSet::of(ports))
            )
        })
        .collect()
}

fn first(s: &IntervalSet) -> u128 {
    s.intervals().first().map_or(0, |r| r.0)
}

fn addr(family: Family, v: u128) -> String {
    if family.is_v4() {
        Ipv4Addr::from(u32::try_from(v).unwrap_or(0)).to_string()
    } else {
        Ipv6Addr::from(v).to_string()
    }
}

/// `22, 80, 8000..=8080`; `every port` for all of them.
fn ports_text(s: &IntervalSet) -> String {
    if s.intervals() == [(1, 65535)] {
        return "every port".to_string();
    }
    s.intervals()
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}..={b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `anyone`, or the networks (at most 8 shown).
fn sources(s: &IntervalSet, family: Family) -> String {
    if *s == IntervalSet::all_addresses(family.is_v4()) {
        return "anyone".to_string();
    }
    let bits = if family.is_v4() { 32 } else { 128 };
    let nets: Vec<String> = s
        .intervals()
        .iter()
        .flat_map(|&(a, b)| cidrs(a, b, bits))
        .map(|(a, p)| {
            if p == bits {
                addr(family, a)
            } else {
                format!("{}/{p}", addr(family, a))
            }
        })
        .collect();
    if nets.len() > 8 {
        format!("{} and {} more", nets[..8].join(", "), nets.len() - 8)
    } else {
        nets.join(", ")
    }
}

/// The networks (address, prefix) that make up `a..=b`, largest first.
fn cidrs(mut a: u128, b: u128, bits: u32) -> Vec<(u128, u32)> {
    let mut out = Vec::new();
    loop {
        // The largest aligned block at `a` that ends within `b`.
        let mut k = if a == 0 {
            bits
        } else {
            a.trailing_zeros().min(bits)
        };
        let end = |k: u32| {
            if k >= 128 {
                u128::MAX
            } else {
                a | ((1u128 << k) - 1)
            }
        };
        while end(k) > b {
            k -= 1;
        }
        out.push((a, bits - k));
        let e = end(k);
        if e >= b {
            return out;
        }
        a = e + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::cidrs;

    #[test]
    fn intervals_as_networks() {
        assert_eq!(cidrs(0xc633_6400, 0xc633_64ff, 32), vec![(0xc633_6400, 24)]);
        assert_eq!(cidrs(1, 6, 32), vec![(1, 32), (2, 31), (4, 31), (6, 32)]);
        assert_eq!(cidrs(0, u128::MAX, 128), vec![(0, 0)]);
    }
}
