//! Lowering: the syntax tree in, the model's types out. Every raw value is
//! validated here (`port-range`, `address`, `interface`, `failsafe`,
//! `redirect-self`, statements given twice), and the span table (`Spans`) records
//! where each part of the model was written, for the checks that come next.
//!
//! Stage two of the pipeline that [`crate::compile`] runs: it reads only the
//! syntax tree and writes only the model, the span table and diagnostics.

mod spans;

pub(crate) use spans::{Once, Spans};

use crate::diagnostic::{Code, Sink, SpanRange};
use crate::model::{
    Assert, AssertKind, BlockOut, Chain, Dnat, Failsafe, Host, Iface, Model, Net, Open, Port,
    PortRange, Proto, Redirect, StmtId, Verdict,
};
use crate::syntax::{
    AddrText, AssertSyntax, IfaceName, Keyword, Num, PolicySyntax, PortItem, Stmt, StmtKind,
};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;

/// What lowering hands to the checks.
pub(crate) struct Lowered {
    /// The policy in the model's types. When lowering failed its `extif` may
    /// be empty: the checks still run on it, but it is never handed out.
    pub model: Model,
    /// Where each part of `model` was written.
    pub spans: Spans,
    /// Every statement parsed and lowered and there is an `extif`: checks that
    /// reason about what is *missing* (lockout) may run.
    pub complete: bool,
}

/// Lowers every parsed statement; diagnostics go to `diags`, which already
/// holds the parser's (a statement that did not parse makes the policy
/// incomplete). `whole` is the whole policy, where "no `extif`" points.
pub(crate) fn lower(parsed: &PolicySyntax, whole: SpanRange, diags: &mut Sink) -> Lowered {
    let mut lower = Lower {
        diags,
        // A failed statement that is `extif`, a misspelt word or no word at all
        // may be the `extif`: then "no extif" would be a follow-on error.
        extif_failed: parsed
            .failed
            .iter()
            .any(|k| matches!(k, None | Some(Keyword::Extif))),
        spans: Spans::default(),
        extif: Vec::new(),
        trust: None,
        policies: HashMap::new(),
        opens: Vec::new(),
        icmp_accept: false,
        masquerade: false,
        dnats: Vec::new(),
        redirects: Vec::new(),
        forward_drop: false,
        block_out: Vec::new(),
        ssh: None,
        failsafe: None,
        log_drops: false,
        exclusive: false,
        asserts: Vec::new(),
    };
    for stmt in &parsed.stmts {
        lower.stmt(stmt);
    }
    let complete = lower.diags.is_empty();
    lower.finish(whole, complete)
}

struct Lower<'d> {
    spans: Spans,
    diags: &'d mut Sink,
    extif: Vec<Iface>,
    trust: Option<Vec<Iface>>,
    policies: HashMap<Chain, Verdict>,
    opens: Vec<Open>,
    icmp_accept: bool,
    masquerade: bool,
    dnats: Vec<Dnat>,
    redirects: Vec<Redirect>,
    forward_drop: bool,
    block_out: Vec<BlockOut>,
    ssh: Option<Option<Port>>,
    failsafe: Option<Failsafe>,
    log_drops: bool,
    exclusive: bool,
    asserts: Vec<Assert>,
    /// The `extif` statement was there but did not parse.
    extif_failed: bool,
}

impl Lower<'_> {
    fn error(
        &mut self,
        code: Code,
        span: SpanRange,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.diags.error(code, span, message, help);
    }

    /// Records a once-only statement; false (and an error) if it was given before.
    fn once(&mut self, which: Once, id: StmtId, stmt: &Stmt) -> bool {
        if self.spans.once.contains_key(&which) {
            let name = stmt.kind.name();
            let help = match which {
                Once::Extif | Once::Trust => {
                    format!("keep one `{name}` statement and list every interface in it")
                }
                _ => format!("keep one `{name}` statement"),
            };
            self.error(
                Code::Syntax,
                stmt.span,
                format!("`{name}` is given twice"),
                help,
            );
            return false;
        }
        self.spans.once.insert(which, id);
        true
    }

    fn stmt(&mut self, stmt: &Stmt) {
        let id = StmtId(self.spans.stmt.len() as u32);
        self.spans.stmt.push(stmt.span);
        match &stmt.kind {
            StmtKind::Extif(names) => {
                if self.once(Once::Extif, id, stmt) {
                    self.extif = self.ifaces(id, names, "extif");
                }
            }
            StmtKind::Trust(names) => {
                if self.once(Once::Trust, id, stmt) {
                    self.trust = Some(self.ifaces(id, names, "trust"));
                }
            }
            StmtKind::Policy { chain, verdict } => {
                if self.once(Once::Policy(chain.value), id, stmt) {
                    self.policies.insert(chain.value, verdict.value);
                }
            }
            StmtKind::Open { proto, ports, from } => {
                let ports = self.ports(id, ports);
                let from = self.nets(id, from);
                self.opens.push(Open {
                    stmt: id,
                    proto: proto.value,
                    ports,
                    from,
                });
            }
            StmtKind::Icmp(accept) => {
                if self.once(Once::Icmp, id, stmt) {
                    self.icmp_accept = accept.value;
                }
            }
            StmtKind::Masquerade => {
                self.masquerade |= self.once(Once::Masquerade, id, stmt);
            }
            StmtKind::ForwardDrop => {
                self.forward_drop |= self.once(Once::ForwardDrop, id, stmt);
            }
            StmtKind::LogDrops => {
                self.log_drops |= self.once(Once::LogDrops, id, stmt);
            }
            StmtKind::Exclusive => {
                self.exclusive |= self.once(Once::Exclusive, id, stmt);
            }
            StmtKind::Ssh(port) => {
                if self.once(Once::Ssh, id, stmt) {
                    match port {
                        None => self.ssh = Some(None),
                        Some(n) => {
                            if let Some(p) = self.port(n) {
                                self.spans.ports.insert((id, 0), SpanRange::single(n.span));
                                self.ssh = Some(Some(p));
                            }
                        }
                    }
                }
            }
            StmtKind::Failsafe(d) => {
                if self.once(Once::Failsafe, id, stmt) {
                    match d.secs.and_then(Failsafe::from_secs) {
                        Some(f) => self.failsafe = Some(f),
                        None => self.error(
                            Code::Failsafe,
                            SpanRange::single(d.span),
                            if d.secs == Some(0) {
                                "a failsafe of zero reverts the rules at once: nothing would ever be kept".to_string()
                            } else {
                                "a failsafe over one hour leaves a broken firewall in place far too long".to_string()
                            },
                            "use a window from `1s` to `60min`; `30s` is typical",
                        ),
                    }
                }
            }
            StmtKind::Dnat {
                proto,
                port,
                to,
                to_port,
            } => {
                let proto = proto.map_or(Proto::Tcp, |p| p.value);
                let incoming = self.port(port);
                let host = self.dnat_host(to);
                let target_port = match to_port {
                    Some(n) => self.port(n),
                    None => incoming,
                };
                if let (Some(port_v), Some(to), Some(to_port)) = (incoming, host, target_port) {
                    self.spans
                        .ports
                        .insert((id, 0), SpanRange::single(port.span));
                    self.dnats.push(Dnat {
                        stmt: id,
                        proto,
                        port: port_v,
                        to,
                        to_port,
                    });
                }
            }
            StmtKind::Redirect {
                proto,
                port,
                to_port,
            } => {
                let proto = proto.map_or(Proto::Tcp, |p| p.value);
                if let (Some(p), Some(t)) = (self.port(port), self.port(to_port)) {
                    if p == t {
                        self.error(
                            Code::RedirectSelf,
                            SpanRange::single(port.span).to(SpanRange::single(to_port.span)),
                            format!(
                                "`redirect {}{p} -> {t}` redirects port {p} to itself",
                                if proto == Proto::Udp { "udp " } else { "" }
                            ),
                            format!("to accept port {p}, write `open {proto} {p};`; otherwise name the port to redirect to"),
                        );
                    } else {
                        self.spans
                            .ports
                            .insert((id, 0), SpanRange::single(port.span));
                        self.redirects.push(Redirect {
                            stmt: id,
                            proto,
                            port: p,
                            to_port: t,
                        });
                    }
                }
            }
            StmtKind::BlockOut { proto, ports } => {
                let ports = self.ports(id, ports);
                self.block_out.push(BlockOut {
                    stmt: id,
                    proto: proto.value,
                    ports,
                });
            }
            StmtKind::Assert(a) => {
                if let Some(kind) = self.assertion(id, a) {
                    self.asserts.push(Assert { stmt: id, kind });
                }
            }
        }
    }

    /// An assertion in the model's types; `None` when a value was refused
    /// (reported) or nothing is left of its ports.
    fn assertion(&mut self, id: StmtId, a: &AssertSyntax) -> Option<AssertKind> {
        match a {
            AssertSyntax::Reach {
                open,
                proto,
                ports,
                from,
            } => {
                let (ports, from) = (self.ports(id, ports), self.nets(id, from));
                let proto = proto.value;
                (!ports.is_empty()).then_some(if *open {
                    AssertKind::Open { proto, ports, from }
                } else {
                    AssertKind::Closed { proto, ports, from }
                })
            }
            AssertSyntax::ClosedOut { proto, ports } => {
                let ports = self.ports(id, ports);
                (!ports.is_empty()).then_some(AssertKind::ClosedOut {
                    proto: proto.value,
                    ports,
                })
            }
            AssertSyntax::Forwarded {
                proto,
                port,
                to,
                to_port,
                from,
            } => {
                let (p, host, t) = (self.port(port), self.dnat_host(to), self.port(to_port));
                let from = self.nets(id, from);
                let (port, to, to_port) = (p?, host?, t?);
                Some(AssertKind::Forwarded {
                    proto: proto.map_or(Proto::Tcp, |p| p.value),
                    port,
                    to,
                    to_port,
                    from,
                })
            }
        }
    }

    fn ifaces(&mut self, id: StmtId, names: &[IfaceName], what: &str) -> Vec<Iface> {
        let mut out: Vec<Iface> = Vec::new();
        let mut seen = HashSet::new();
        for n in names {
            match Iface::new(&n.name) {
                Ok(i) if i.is_loopback() => self.error(
                    Code::Interface,
                    n.span,
                    format!("`lo` cannot be in `{what}`: the loopback interface is always trusted"),
                    "remove `lo` from the list",
                ),
                Ok(i) if !seen.insert(i.clone()) => self.error(
                    Code::Duplicate,
                    n.span,
                    format!("interface `{i}` is listed twice in `{what}`"),
                    format!("remove the second `{i}`"),
                ),
                Ok(i) => {
                    self.spans.ifaces.insert((id, out.len()), n.span);
                    out.push(i);
                }
                Err(e @ crate::model::IfaceError::Empty) => self.error(
                    Code::Interface,
                    n.span,
                    e.to_string(),
                    "write the interface's name, as `ip link` shows it",
                ),
                Err(e) => self.error(
                    Code::Interface,
                    n.span,
                    format!(
                        "`{}` is not a valid interface name: {e}",
                        n.name.escape_debug()
                    ),
                    "use the name `ip link` shows (at most 15 bytes, no `/`, `:` or whitespace)",
                ),
            }
        }
        out
    }

    fn port(&mut self, n: &Num) -> Option<Port> {
        let value = n
            .value
            .and_then(|v| u16::try_from(v).ok())
            .and_then(Port::new);
        if value.is_none() {
            let shown = n
                .value
                .map_or_else(|| "this number".to_string(), |v| v.to_string());
            let why = if n.value == Some(0) {
                "port 0 is not a port".to_string()
            } else {
                format!("{shown} is above the highest port, 65535")
            };
            self.error(
                Code::PortRange,
                SpanRange::single(n.span),
                why,
                "ports are 1..=65535",
            );
        }
        value
    }

    fn ports(&mut self, id: StmtId, items: &[PortItem]) -> Vec<PortRange> {
        let mut out = Vec::new();
        for item in items {
            let span = item.span();
            let start = self.port(&item.start);
            let range = match &item.end {
                None => start.map(PortRange::single),
                Some((end_num, inclusive)) => {
                    let end = self.port(end_num);
                    match (start, end) {
                        (Some(s), Some(e)) => {
                            if !inclusive {
                                self.error(
                                    Code::PortRange,
                                    span,
                                    format!("`{s}..{e}` is ambiguous: port ranges include their last port"),
                                    format!("write `{s}..={e}`"),
                                );
                                None
                            } else if let Some(r) = PortRange::new(s, e) {
                                Some(r)
                            } else {
                                self.error(
                                    Code::PortRange,
                                    span,
                                    format!("the range `{s}..={e}` runs backwards"),
                                    format!("write `{e}..={s}`"),
                                );
                                None
                            }
                        }
                        _ => None,
                    }
                }
            };
            if let Some(r) = range {
                self.spans.ports.insert((id, out.len()), span);
                out.push(r);
            }
        }
        out
    }

    fn address(&mut self, a: &AddrText) -> Option<()> {
        if a.gap {
            self.error(
                Code::Address,
                a.span,
                format!("whitespace inside the address `{}`", a.text),
                format!("write it without spaces: `{}`", a.text),
            );
            return None;
        }
        Some(())
    }

    fn nets(&mut self, id: StmtId, addrs: &[AddrText]) -> Vec<Net> {
        let mut out = Vec::new();
        // A set, so that a long `from` list is not searched once per entry.
        let mut seen = HashSet::new();
        for a in addrs {
            if self.address(a).is_none() {
                continue;
            }
            let parsed = if a.text.contains('/') {
                Net::from_str(&a.text)
            } else {
                // A lone address means that one host.
                match IpAddr::from_str(&a.text) {
                    Ok(ip) => Net::new(ip, if ip.is_ipv4() { 32 } else { 128 }),
                    Err(_) => Err(crate::model::AddrError::Malformed(a.text.clone())),
                }
            };
            match parsed {
                Ok(n) if !seen.insert(n) => self.error(
                    Code::Duplicate,
                    a.span,
                    format!("{n} is listed twice in this `from`"),
                    format!("remove the second `{}`", a.text),
                ),
                Ok(n) => {
                    self.spans.nets.insert((id, out.len()), a.span);
                    out.push(n);
                }
                Err(crate::model::AddrError::HostBits { network }) => self.error(
                    Code::Address,
                    a.span,
                    format!("`{}` has host bits set", a.text),
                    format!("write `{}`", quote_if_v6(&network.to_string())),
                ),
                Err(e) => self.error(
                    Code::Address,
                    a.span,
                    e.to_string(),
                    "write an IPv4 network bare (`198.51.100.0/24`) or an IPv6 one in quotes (`\"2001:db8::/32\"`)",
                ),
            }
        }
        out
    }

    fn dnat_host(&mut self, a: &AddrText) -> Option<Host> {
        self.address(a)?;
        let ip = match IpAddr::from_str(&a.text) {
            Ok(IpAddr::V4(ip)) => ip,
            Ok(IpAddr::V6(_)) => {
                self.error(
                    Code::Address,
                    a.span,
                    "NAT statements are IPv4: a `dnat` target must be an IPv4 host",
                    "give the inner host's IPv4 address",
                );
                return None;
            }
            Err(_) => {
                let help = if a.text.contains('/') {
                    "a DNAT target is one host: drop the `/PREFIX`"
                } else {
                    "write the inner host's IPv4 address, e.g. `192.0.2.22` (then `:PORT` if it differs)"
                };
                self.error(
                    Code::Address,
                    a.span,
                    format!("`{}` is not an IPv4 address", a.text),
                    help,
                );
                return None;
            }
        };
        match Host::new(ip) {
            Ok(h) => Some(h),
            Err(e) => {
                self.error(
                    Code::Address,
                    a.span,
                    format!("`{ip}` cannot be a DNAT target: {e}"),
                    "give the unicast address of the inner host",
                );
                None
            }
        }
    }

    fn finish(self, whole: SpanRange, complete: bool) -> Lowered {
        if self.extif.is_empty()
            && !self.extif_failed
            && !self.spans.once.contains_key(&Once::Extif)
        {
            self.diags.error(
                Code::Interface,
                whole,
                "no `extif`: the policy must name its untrusted external interface(s)",
                "add `extif eth0;` with the interface that faces the untrusted network",
            );
        }
        let model = Model {
            extif: self.extif,
            trust: self.trust,
            input: self
                .policies
                .get(&Chain::Input)
                .copied()
                .unwrap_or(Verdict::Drop),
            forward: self.policies.get(&Chain::Forward).copied(),
            output: self
                .policies
                .get(&Chain::Output)
                .copied()
                .unwrap_or(Verdict::Accept),
            opens: self.opens,
            icmp_accept: self.icmp_accept,
            masquerade: self.masquerade,
            dnats: self.dnats,
            redirects: self.redirects,
            forward_drop: self.forward_drop,
            block_out: self.block_out,
            ssh: self.ssh.unwrap_or(Port::new(22)),
            failsafe: self.failsafe,
            log_drops: self.log_drops,
            exclusive: self.exclusive,
            asserts: self.asserts,
        };
        Lowered {
            complete: complete && !model.extif.is_empty(),
            model,
            spans: self.spans,
        }
    }
}

fn quote_if_v6(s: &str) -> String {
    if s.contains(':') {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}
