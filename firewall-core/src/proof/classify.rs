//! The packet classifier: what the planned rules do to a *class* of packets,
//! with netfilter's semantics as the project emits them.
//!
//! A [`Class`] fixes the scalar facts of a packet (family, interfaces,
//! protocol, ICMP type, hop limit, conntrack state) and holds its addresses
//! and ports as [`IntervalSet`]s. Each rule splits a class into the part it
//! matches and the rest ([`split`]), so the answer for all 65,535 ports and
//! every source is a handful of classes, never an enumeration of packets.
//!
//! The path: a new connection arriving on an interface first meets NAT
//! PREROUTING (conntrack consults the NAT table for the first packet only):
//! DNAT rewrites the destination and port and the class is then forwarded,
//! REDIRECT rewrites the port and keeps it local; either way the original
//! port is remembered for the rules' `ct_dnat_from` match (iptables
//! `--ctorigdstport`, nft `ct original proto-dst`). Then filter INPUT (to this
//! host) or FORWARD. Locally generated packets meet NAT OUTPUT, then filter
//! OUTPUT. POSTROUTING only masquerades: it decides no verdict. In a chain,
//! the first matching rule with a verdict decides; `Log` goes on; a
//! rate-limited rule counts as matching (what is within the rate gets
//! through); `Jump` returns to the next rule when the user chain ends,
//! `Goto` returns to the caller of the calling chain (for a built-in chain:
//! its policy).

use super::interval::IntervalSet;
use crate::model::Iface;
use crate::plan::{
    BasePolicy, Chain, ChainKind, CtState, Family, Hook, IcmpType, Plan, Rule, Table, Target,
    UserChain, L4,
};

/// A transport protocol of a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP of the class's family (ICMPv6 for IPv6).
    Icmp,
}

impl From<crate::model::Proto> for Proto {
    fn from(p: crate::model::Proto) -> Proto {
        match p {
            crate::model::Proto::Tcp => Proto::Tcp,
            crate::model::Proto::Udp => Proto::Udp,
        }
    }
}

/// A class of packets: fixed scalar facts, address and port intervals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    /// Address family.
    pub family: Family,
    /// Incoming interface; `None` for packets this host sends.
    pub iif: Option<String>,
    /// Outgoing interface; `None` for packets to this host (until a DNAT
    /// routes them on, to [`Classifier::inside`]).
    pub oif: Option<String>,
    /// Routed to this host (INPUT) rather than through it (FORWARD).
    pub local: bool,
    /// Source addresses (IPv4 as `u32` values).
    pub src: IntervalSet,
    /// Destination addresses.
    pub dst: IntervalSet,
    /// Transport protocol.
    pub proto: Proto,
    /// Source ports (TCP/UDP).
    pub sport: IntervalSet,
    /// Destination ports (TCP/UDP).
    pub dport: IntervalSet,
    /// ICMP type number (ICMP only; `None`: any).
    pub icmp_type: Option<u8>,
    /// IPv6 hop limit / IPv4 TTL.
    pub hop_limit: u8,
    /// Conntrack state.
    pub ct: CtState,
    /// Destination-translated (DNAT or REDIRECT): the original destination ports.
    pub dnat_from: Option<IntervalSet>,
}

impl Class {
    /// New TCP/UDP connections of `family` arriving on `iif` for this host,
    /// from every address and source port to every port (every source port:
    /// a rule that matches one, such as DHCPv6's 547, must be seen).
    pub fn incoming(family: Family, iif: &str, proto: Proto) -> Class {
        let v4 = family.is_v4();
        Class {
            family,
            iif: Some(iif.to_string()),
            oif: None,
            local: true,
            src: IntervalSet::all_addresses(v4),
            dst: IntervalSet::all_addresses(v4),
            proto,
            sport: IntervalSet::all_ports(),
            dport: IntervalSet::all_ports(),
            icmp_type: None,
            hop_limit: 64,
            ct: CtState::New,
            dnat_from: None,
        }
    }

    /// New connections this host opens through `oif`, to every address and port.
    pub fn outgoing(family: Family, oif: &str, proto: Proto) -> Class {
        Class {
            iif: None,
            oif: Some(oif.to_string()),
            local: false,
            ..Class::incoming(family, oif, proto)
        }
    }

    /// The destination ports as the sender wrote them (before DNAT/REDIRECT).
    pub fn original_dport(&self) -> &IntervalSet {
        self.dnat_from.as_ref().unwrap_or(&self.dport)
    }

    fn is_empty(&self) -> bool {
        self.src.is_empty()
            || self.dst.is_empty()
            || (self.proto != Proto::Icmp && (self.sport.is_empty() || self.dport.is_empty()))
            || self.dnat_from.as_ref().is_some_and(IntervalSet::is_empty)
    }
}

/// What finally happens to a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Let through (also: within a rate limit).
    Accept,
    /// Discarded silently.
    Drop,
    /// Discarded with an answer.
    Reject,
}

/// What decided a class's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy<'p> {
    /// This rule.
    Rule(&'p Rule),
    /// The policy of the built-in filter chain at this hook (no rule decided).
    Policy(Hook),
}

/// One part of a classified class: where it ended and why.
#[derive(Debug, Clone)]
pub struct Outcome<'p> {
    /// The part, as the deciding rule saw it (after NAT).
    pub class: Class,
    /// Its verdict.
    pub verdict: Verdict,
    /// The rule or policy that decided it.
    pub by: DecidedBy<'p>,
    /// The DNAT/REDIRECT rule that translated it, if any.
    pub nat: Option<&'p Rule>,
}

/// A plan, ready to classify packet classes.
#[derive(Debug, Clone)]
pub struct Classifier<'p> {
    plan: &'p Plan,
    inside: String,
}

/// Where a class leaves a chain.
enum Flow<'p> {
    Final(Verdict, &'p Rule),
    Nat(&'p Rule),
    Fall,
}

/// Deeper than any plan's chains: a guard, not a limit anyone meets.
const MAX_DEPTH: usize = 16;

impl<'p> Classifier<'p> {
    /// A classifier over `plan`. `inside` is the interface that leads to the
    /// hosts behind the firewall (a DNAT'd connection leaves through it).
    pub fn new(plan: &'p Plan, inside: &str) -> Classifier<'p> {
        Classifier {
            plan,
            inside: inside.to_string(),
        }
    }

    /// The interface DNAT'd connections leave through.
    pub fn inside(&self) -> &str {
        &self.inside
    }

    /// Every part of `class` with its verdict and the rule that decided it.
    /// The parts are disjoint and together make up `class`.
    pub fn classify(&self, class: Class) -> Vec<Outcome<'p>> {
        let mut out = Vec::new();
        if class.is_empty() {
            return out;
        }
        let incoming = class.iif.is_some();
        let nat_hook = if incoming {
            Hook::Prerouting
        } else {
            Hook::Output
        };
        // NAT sees the first packet of a connection only.
        let translated: Vec<(Class, Option<&'p Rule>)> = if class.ct == CtState::New {
            match builtin(&self.plan.nat, nat_hook) {
                Some(chain) => self
                    .run(&self.plan.nat, chain, class, 0)
                    .into_iter()
                    .map(|(c, flow)| match flow {
                        Flow::Nat(rule) => (c, Some(rule)),
                        // NAT chains of the plan hold no filter verdicts.
                        Flow::Final(..) | Flow::Fall => (c, None),
                    })
                    .collect(),
                None => vec![(class, None)],
            }
        } else {
            vec![(class, None)]
        };
        for (c, nat) in translated {
            let hook = match (incoming, c.local) {
                (true, true) => Hook::Input,
                (true, false) => Hook::Forward,
                (false, _) => Hook::Output,
            };
            let Some(chain) = builtin(&self.plan.filter, hook) else {
                continue;
            };
            let policy = match chain.kind {
                ChainKind::BuiltIn {
                    policy: BasePolicy::Drop,
                    ..
                } => Verdict::Drop,
                _ => Verdict::Accept,
            };
            for (part, flow) in self.run(&self.plan.filter, chain, c, 0) {
                let (verdict, by) = match flow {
                    Flow::Final(v, rule) => (v, DecidedBy::Rule(rule)),
                    Flow::Nat(rule) => (Verdict::Accept, DecidedBy::Rule(rule)),
                    Flow::Fall => (policy, DecidedBy::Policy(hook)),
                };
                out.push(Outcome {
                    class: part,
                    verdict,
                    by,
                    nat,
                });
            }
        }
        out
    }

    /// The parts of `class` as they leave `chain`.
    fn run(
        &self,
        table: &'p Table,
        chain: &'p Chain,
        class: Class,
        depth: usize,
    ) -> Vec<(Class, Flow<'p>)> {
        let mut out = Vec::new();
        let mut pending = vec![(0usize, class)];
        while let Some((i, c)) = pending.pop() {
            let Some(rule) = chain.rules.get(i) else {
                out.push((c, Flow::Fall));
                continue;
            };
            let (matched, rest) = split(rule, c);
            pending.extend(rest.into_iter().map(|r| (i + 1, r)));
            let Some(m) = matched else { continue };
            match &rule.target {
                Target::Accept => out.push((m, Flow::Final(Verdict::Accept, rule))),
                Target::Drop => out.push((m, Flow::Final(Verdict::Drop, rule))),
                Target::Reject(_) => out.push((m, Flow::Final(Verdict::Reject, rule))),
                Target::Log { .. } => pending.push((i + 1, m)),
                Target::Jump(u) | Target::Goto(u) => {
                    let goto = matches!(rule.target, Target::Goto(_));
                    let Some(sub) = user(table, *u).filter(|_| depth < MAX_DEPTH) else {
                        // A missing chain is a plan error; iptables refuses
                        // such a ruleset. Treat the jump as not taken.
                        pending.push((i + 1, m));
                        continue;
                    };
                    for (part, flow) in self.run(table, sub, m, depth + 1) {
                        match flow {
                            Flow::Fall if !goto => pending.push((i + 1, part)),
                            other => out.push((part, other)),
                        }
                    }
                }
                Target::Dnat { to, port } => {
                    let mut t = m;
                    t.dnat_from = Some(t.dport.clone());
                    t.dst = IntervalSet::range(
                        u128::from(u32::from(to.addr())),
                        u128::from(u32::from(to.addr())),
                    );
                    t.dport = single_port(port.get());
                    t.local = false;
                    if t.oif.is_none() {
                        t.oif = Some(self.inside.clone());
                    }
                    out.push((t, Flow::Nat(rule)));
                }
                Target::Redirect { port } => {
                    let mut t = m;
                    t.dnat_from = Some(t.dport.clone());
                    t.dport = single_port(port.get());
                    t.local = true;
                    out.push((t, Flow::Nat(rule)));
                }
                // Source translation changes no verdict.
                Target::Masquerade => out.push((m, Flow::Nat(rule))),
            }
        }
        out
    }
}

fn single_port(p: u16) -> IntervalSet {
    IntervalSet::range(u128::from(p), u128::from(p))
}

fn builtin(table: &Table, hook: Hook) -> Option<&Chain> {
    table
        .chains
        .iter()
        .find(|c| matches!(c.kind, ChainKind::BuiltIn { hook: h, .. } if h == hook))
}

fn user(table: &Table, u: UserChain) -> Option<&Chain> {
    table.chain(ChainKind::User(u))
}

/// Whether interface `name` matches the rule's `pattern` (`eth+`: a prefix).
fn iface_matches(pattern: &Iface, name: Option<&str>) -> bool {
    let Some(name) = name else { return false };
    match pattern.as_str().strip_suffix('+') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern.as_str() == name,
    }
}

/// The ICMP type number a rule names, in `family`.
fn icmp_number(t: IcmpType, family: Family) -> u8 {
    match (t, family) {
        (IcmpType::EchoRequest, Family::V4) => 8,
        (IcmpType::EchoRequest, Family::V6) => 128,
        (IcmpType::V6(t), _) => t.number(),
    }
}

/// One interval dimension of a class.
#[derive(Clone, Copy)]
enum Dim {
    Src,
    Dst,
    Sport,
    Dport,
    DnatFrom,
}

fn dim(c: &mut Class, d: Dim) -> &mut IntervalSet {
    match d {
        Dim::Src => &mut c.src,
        Dim::Dst => &mut c.dst,
        Dim::Sport => &mut c.sport,
        Dim::Dport => &mut c.dport,
        // Only asked for when the class is translated (see `split`).
        Dim::DnatFrom => c.dnat_from.get_or_insert_with(IntervalSet::empty),
    }
}

/// `class` split by `rule`: the part it matches (if any) and the rest, as
/// disjoint classes.
pub fn split(rule: &Rule, class: Class) -> (Option<Class>, Vec<Class>) {
    let m = &rule.matches;
    // A class no rule touches is handed back, not copied: its address sets
    // may hold thousands of intervals.
    macro_rules! whole {
        () => {
            return (None, vec![class])
        };
    }
    // The scalar facts either match or not.
    let ports = match &m.proto {
        None => None,
        Some(L4::Tcp(p)) if class.proto == Proto::Tcp => Some(p),
        Some(L4::Udp(p)) if class.proto == Proto::Udp => Some(p),
        Some(L4::Icmp(t)) if class.proto == Proto::Icmp => {
            if let Some(t) = t {
                if class.icmp_type != Some(icmp_number(*t, class.family)) {
                    whole!();
                }
            }
            None
        }
        Some(_) => whole!(),
    };
    if !rule.applies_to(class.family)
        || m.iif
            .as_ref()
            .is_some_and(|i| !iface_matches(i, class.iif.as_deref()))
        || m.oif
            .as_ref()
            .is_some_and(|i| !iface_matches(i, class.oif.as_deref()))
        || m.hop_limit.is_some_and(|h| h != class.hop_limit)
        || m.ct_state.is_some_and(|s| !s.iter().any(|s| s == class.ct))
        || (m.ct_dnat_from.is_some() && class.dnat_from.is_none())
    {
        whole!();
    }
    // `limit`: within the rate the rule matches; a rate-limited accept accepts.
    // Ports first: cheap, and what most rules differ in; addresses last.
    let mut dims: Vec<(Dim, IntervalSet)> = Vec::new();
    if let Some(p) = ports {
        if let Some(dp) = &p.dport {
            dims.push((Dim::Dport, IntervalSet::ports(dp.ranges())));
        }
        if let Some(sp) = p.sport {
            dims.push((Dim::Sport, single_port(sp.get())));
        }
    }
    if let Some(p) = m.ct_dnat_from {
        dims.push((Dim::DnatFrom, single_port(p.get())));
    }
    if let Some(s) = &m.dst {
        dims.push((Dim::Dst, IntervalSet::nets(s.nets())));
    }
    if let Some(s) = &m.src {
        dims.push((Dim::Src, IntervalSet::nets(s.nets())));
    }
    let mut matched = class;
    let mut rest = Vec::new();
    for (d, set) in dims {
        let current = dim(&mut matched, d).clone();
        let inside = current.intersect(&set);
        let outside = current.minus(&set);
        if !outside.is_empty() {
            let mut r = matched.clone();
            *dim(&mut r, d) = outside;
            rest.push(r);
        }
        if inside.is_empty() {
            return (None, rest);
        }
        *dim(&mut matched, d) = inside;
    }
    (Some(matched), rest)
}
