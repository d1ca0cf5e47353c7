//! Random policies for the differential test, as DSL text (DSL.md sections
//! 1-2). Built from a small pool of ports and networks that the probe sample
//! covers, so that most statements change a verdict the probes can see.
//! Most of the section 3 mistakes are avoided by construction
//! ([`Spec::tidy`]: no port opened, blocked or forwarded twice, no `open`
//! shadowed by a `dnat`/`redirect`, no `redirect A -> A`, no `forward drop`
//! in a router, no `from` or `log drops` under `policy input accept`, `ssh
//! none` when nothing opens the ssh port, no interface both external and
//! trusted); the rest (about 3 %, lockouts the simple rule misses) are left
//! to `Policy::parse`: the test keeps the texts it accepts and counts the
//! others.

use proptest::prelude::*;
use proptest::sample::select;
use std::fmt::Write as _;

/// The ports policies use; the probes try each of them (and one more).
pub const POOL: [u16; 10] = [22, 25, 26, 53, 80, 443, 2222, 8000, 8001, 8080];

/// `from` lists (as written in the DSL): some contain the outside host
/// (198.51.100.2, 2001:db8:1::2), some do not; none lists a network inside
/// another.
const FROM: [&[&str]; 12] = [
    &["198.51.100.0/24"],
    &["198.51.100.2"],
    &["198.51.100.128/25"],
    &["203.0.113.0/24"],
    &["\"2001:db8:1::/64\""],
    &["\"2001:db8:1::2\""],
    &["\"2001:db8:9::/48\""],
    &["\"2001:db8::/32\""],
    &["198.51.100.0/24", "\"2001:db8:1::/64\""],
    &["198.51.100.128/25", "\"2001:db8:1::2\""],
    &["198.51.100.2", "\"2001:db8:9::/48\""],
    &["203.0.113.0/24", "\"2001:db8::/32\""],
];

/// One item of a `PORTS` list.
#[derive(Debug, Clone, Copy)]
pub enum Ports {
    /// `PORT`
    One(u16),
    /// `PORT..=PORT`
    Range(u16, u16),
}

/// `open PROTO PORTS [from NETS];`
#[derive(Debug, Clone)]
pub struct Open {
    proto: &'static str,
    ports: Vec<Ports>,
    from: Vec<&'static str>,
}

/// `dnat [PROTO] PORT -> 203.0.113.2[:PORT];` (the inside host).
#[derive(Debug, Clone)]
pub struct Dnat {
    proto: Option<&'static str>,
    port: u16,
    to_port: Option<u16>,
}

/// `redirect [PROTO] PORT -> PORT;`
#[derive(Debug, Clone)]
pub struct Redirect {
    proto: Option<&'static str>,
    from: u16,
    to: u16,
}

/// `block out PROTO PORTS;`
#[derive(Debug, Clone)]
pub struct BlockOut {
    proto: &'static str,
    ports: Vec<Ports>,
}

/// A generated policy; [`Spec::text`] is the DSL text (also what `{:?}`
/// shows, so that proptest's "minimal failing input" reads as a policy).
#[derive(Clone)]
pub struct Spec {
    extif: &'static str,
    trust: Option<&'static str>,
    input: Option<&'static str>,
    forward: Option<&'static str>,
    output: Option<&'static str>,
    opens: Vec<Open>,
    icmp: Option<&'static str>,
    masquerade: bool,
    dnats: Vec<Dnat>,
    redirects: Vec<Redirect>,
    forward_drop: bool,
    block_out: Vec<BlockOut>,
    ssh: Option<String>,
    log_drops: bool,
    failsafe: bool,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\n{}", self.text())
    }
}

fn ports_text(ports: &[Ports]) -> String {
    ports
        .iter()
        .map(|p| match p {
            Ports::One(p) => p.to_string(),
            Ports::Range(a, b) => format!("{a}..={b}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `[start, end]` of a ports item.
fn span(p: Ports) -> (u16, u16) {
    match p {
        Ports::One(p) => (p, p),
        Ports::Range(a, b) => (a, b),
    }
}

/// Keeps the items of `ports` that overlap nothing in `used`, adding them.
fn keep_fresh(ports: &mut Vec<Ports>, used: &mut Vec<(u16, u16)>) {
    ports.retain(|&p| {
        let (a, b) = span(p);
        if used.iter().any(|&(c, d)| a <= d && c <= b) {
            false
        } else {
            used.push((a, b));
            true
        }
    });
}

impl Spec {
    /// Drops what would make the policy a section 3 mistake that is easy to
    /// see here: a second `dnat`/`redirect` of an incoming port, an `open`
    /// of a port one of them takes or that an earlier `open` (of the same
    /// protocol) already covers, a `block out` overlap, `redirect A -> A`,
    /// `forward drop` in a router, `from` and `log drops` that `policy input
    /// accept` makes redundant, an ssh port nothing opens (then `ssh none`),
    /// `trust` of an external interface.
    fn tidy(mut self) -> Spec {
        let proto_of = |p: Option<&'static str>| p.unwrap_or("tcp");
        let mut incoming: Vec<(&str, u16)> = Vec::new();
        self.redirects.retain(|r| {
            let key = (proto_of(r.proto), r.from);
            let fresh = r.from != r.to && !incoming.contains(&key);
            if fresh {
                incoming.push(key);
            }
            fresh
        });
        self.dnats.retain(|d| {
            let key = (proto_of(d.proto), d.port);
            let fresh = !incoming.contains(&key);
            if fresh {
                incoming.push(key);
            }
            fresh
        });
        for proto in ["tcp", "udp"] {
            let mut used: Vec<(u16, u16)> = incoming
                .iter()
                .filter(|(p, _)| *p == proto)
                .map(|&(_, port)| (port, port))
                .collect();
            for o in self.opens.iter_mut().filter(|o| o.proto == proto) {
                keep_fresh(&mut o.ports, &mut used);
            }
            let mut blocked = Vec::new();
            for b in self.block_out.iter_mut().filter(|b| b.proto == proto) {
                keep_fresh(&mut b.ports, &mut blocked);
            }
        }
        self.opens.retain(|o| !o.ports.is_empty());
        self.block_out.retain(|b| !b.ports.is_empty());
        if self.masquerade || !self.dnats.is_empty() {
            self.forward_drop = false;
        }
        if self.input == Some("accept") {
            // `from` and `log drops` would do nothing: `redundant`.
            for o in &mut self.opens {
                o.from.clear();
            }
            self.log_drops = false;
        } else if self.ssh.as_deref() != Some("none") {
            // Keep the ssh port reachable, or declare that it need not be.
            let ssh: u16 = self
                .ssh
                .as_deref()
                .map_or(Some(22), |p| p.parse().ok())
                .unwrap_or(22);
            let opened = self.opens.iter().any(|o| {
                o.proto == "tcp"
                    && o.ports.iter().any(|&p| {
                        let (a, b) = span(p);
                        (a..=b).contains(&ssh)
                    })
            });
            let redirected = self
                .redirects
                .iter()
                .any(|r| r.proto != Some("udp") && r.to == ssh);
            if !opened && !redirected {
                self.ssh = Some("none".into());
            }
        }
        if self.extif.contains("eth+")
            || self.extif.contains("eth1") && self.trust.is_some_and(|t| t.contains("eth1"))
        {
            // An external interface is never trusted (`interface`).
            self.trust = None;
        }
        self
    }

    /// The policy as DSL text, one statement a line.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "extif {};", self.extif);
        if let Some(trust) = self.trust {
            let _ = writeln!(t, "trust {trust};");
        }
        for (chain, verdict) in [
            ("input", self.input),
            ("forward", self.forward),
            ("output", self.output),
        ] {
            if let Some(v) = verdict {
                let _ = writeln!(t, "policy {chain} {v};");
            }
        }
        for o in &self.opens {
            let _ = write!(t, "open {} {}", o.proto, ports_text(&o.ports));
            if !o.from.is_empty() {
                let _ = write!(t, " from {}", o.from.join(", "));
            }
            t.push_str(";\n");
        }
        if let Some(icmp) = self.icmp {
            let _ = writeln!(t, "icmp {icmp};");
        }
        if self.masquerade {
            t.push_str("masquerade;\n");
        }
        for d in &self.dnats {
            let proto = d.proto.map(|p| format!("{p} ")).unwrap_or_default();
            let to = d.to_port.map(|p| format!(":{p}")).unwrap_or_default();
            let _ = writeln!(t, "dnat {proto}{} -> 203.0.113.2{to};", d.port);
        }
        for r in &self.redirects {
            let proto = r.proto.map(|p| format!("{p} ")).unwrap_or_default();
            let _ = writeln!(t, "redirect {proto}{} -> {};", r.from, r.to);
        }
        if self.forward_drop {
            t.push_str("forward drop;\n");
        }
        for b in &self.block_out {
            let _ = writeln!(t, "block out {} {};", b.proto, ports_text(&b.ports));
        }
        if let Some(ssh) = &self.ssh {
            let _ = writeln!(t, "ssh {ssh};");
        }
        if self.log_drops {
            t.push_str("log drops;\n");
        }
        if self.failsafe {
            t.push_str("failsafe 10s;\n");
        }
        t
    }
}

fn port() -> impl Strategy<Value = u16> {
    select(&POOL[..])
}

fn ports() -> impl Strategy<Value = Vec<Ports>> {
    let item = prop_oneof![
        3 => port().prop_map(Ports::One),
        1 => (0..POOL.len(), 0..POOL.len()).prop_map(|(a, b)| {
            if a == b {
                Ports::One(POOL[a])
            } else {
                Ports::Range(POOL[a.min(b)], POOL[a.max(b)])
            }
        }),
    ];
    prop::collection::vec(item, 1..=3)
}

fn proto() -> impl Strategy<Value = &'static str> {
    prop_oneof![3 => Just("tcp"), 1 => Just("udp")]
}

fn maybe_proto() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![2 => Just(None), 1 => Just(Some("tcp")), 1 => Just(Some("udp"))]
}

fn verdict() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some("drop")),
        1 => Just(Some("reject")),
        1 => Just(Some("accept")),
    ]
}

fn open() -> impl Strategy<Value = Open> {
    let from = prop_oneof![
        2 => Just(Vec::new()),
        1 => select(&FROM[..]).prop_map(<[&str]>::to_vec),
    ];
    (proto(), ports(), from).prop_map(|(proto, ports, from)| Open { proto, ports, from })
}

/// An `open` (or `block out`) of more single ports than one iptables
/// `multiport` match takes (15): every other port from 9000, 14 to 20 of
/// them, outside [`POOL`] so that nothing else overlaps them.
fn wide() -> impl Strategy<Value = Option<(&'static str, Vec<Ports>, bool)>> {
    let list = (14u16..=20).prop_map(|n| (0..n).map(|i| Ports::One(9000 + 2 * i)).collect());
    proptest::option::weighted(0.25, (proto(), list, proptest::bool::weighted(0.3)))
}

fn dnat() -> impl Strategy<Value = Dnat> {
    (maybe_proto(), port(), proptest::option::of(port())).prop_map(|(proto, port, to_port)| Dnat {
        proto,
        port,
        to_port,
    })
}

fn redirect() -> impl Strategy<Value = Redirect> {
    (maybe_proto(), port(), port()).prop_map(|(proto, from, to)| Redirect { proto, from, to })
}

fn block_out() -> impl Strategy<Value = BlockOut> {
    (proto(), ports()).prop_map(|(proto, ports)| BlockOut { proto, ports })
}

/// Random policies of the section 2 statements (not all of them valid).
pub fn spec() -> impl Strategy<Value = Spec> {
    let interfaces = (
        prop_oneof![
            8 => Just("eth0"),
            1 => Just("eth0, \"ppp0\""),
            1 => Just("eth0, \"ppp+\""),
            1 => Just("eth1"),
            1 => Just("eth0, eth1"),
            1 => Just("\"eth+\""),
        ],
        prop_oneof![
            4 => Just(None),
            2 => Just(Some("eth1")),
            1 => Just(Some("eth9")),
            1 => Just(Some("eth1, \"br-lan\"")),
        ],
        verdict(),
        verdict(),
        verdict(),
    );
    let rules = (
        prop::collection::vec(open(), 0..=3),
        prop_oneof![Just(None), Just(Some("accept")), Just(Some("drop"))],
        proptest::bool::weighted(0.4),
        prop::collection::vec(dnat(), 0..=2),
        prop::collection::vec(redirect(), 0..=2),
    );
    let rest = (
        proptest::bool::weighted(0.15),
        prop::collection::vec(block_out(), 0..=2),
        prop_oneof![
            2 => Just(None),
            3 => Just(Some("none".to_string())),
            1 => port().prop_map(|p| Some(p.to_string())),
        ],
        proptest::bool::weighted(0.3),
        proptest::bool::weighted(0.1),
    );
    let extra = (wide(), select(&FROM[..]));
    (interfaces, rules, rest, extra).prop_map(
        |(
            (extif, trust, input, forward, output),
            (mut opens, icmp, masquerade, dnats, redirects),
            (forward_drop, mut block_out, ssh, log_drops, failsafe),
            (wide, wide_from),
        )| {
            match wide {
                // Some blocked outward, most opened (tcp ones from `wide_from`).
                Some((proto, ports, true)) => block_out.push(BlockOut { proto, ports }),
                Some((proto, ports, false)) => opens.push(Open {
                    proto,
                    ports,
                    from: if proto == "tcp" {
                        wide_from.to_vec()
                    } else {
                        Vec::new()
                    },
                }),
                None => {}
            }
            Spec {
                extif,
                trust,
                input,
                forward,
                output,
                opens,
                icmp,
                masquerade,
                dnats,
                redirects,
                forward_drop,
                block_out,
                ssh,
                log_drops,
                failsafe,
            }
            .tidy()
        },
    )
}
