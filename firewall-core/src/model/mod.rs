//! The checked policy: what the parser produces once every value is valid,
//! and what every renderer and `apply` read. Invalid states are not representable:
//! ports are never 0, ranges never run backwards, interfaces are valid for Linux,
//! networks have no host bits, NAT targets are unicast hosts.
//!
//! The model carries no source spans (so it is `Send + Sync`); each item knows the
//! index of the statement it came from ([`StmtId`]), and `Display` writes it back
//! in the policy language, which is what rule comments show.

mod addr;
mod assert;
mod duration;
mod iface;
mod port;

pub use addr::{AddrError, Host, Net};
pub use assert::{Assert, AssertKind};
pub use duration::Failsafe;
pub use iface::{Iface, IfaceError};
pub use port::{Port, PortRange, Proto};

use std::fmt;

/// Index of a statement in the policy as written (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StmtId(pub u32);

/// A built-in chain whose default policy can be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Chain {
    /// Traffic to this host.
    Input,
    /// Traffic routed through this host.
    Forward,
    /// Traffic from this host.
    Output,
}

impl Chain {
    /// `input`, `forward` or `output`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Chain::Input => "input",
            Chain::Forward => "forward",
            Chain::Output => "output",
        }
    }
}

/// What happens to a packet no rule accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Silently discard.
    Drop,
    /// Discard and answer with an ICMP/TCP reset.
    Reject,
    /// Let it through.
    Accept,
}

impl Verdict {
    /// `drop`, `reject` or `accept`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Drop => "drop",
            Verdict::Reject => "reject",
            Verdict::Accept => "accept",
        }
    }

    /// Whether packets meeting this verdict are lost to the sender.
    pub const fn blocks(self) -> bool {
        !matches!(self, Verdict::Accept)
    }
}

/// `open tcp 22, 80 [from NET, ...];`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// Statement it came from.
    pub stmt: StmtId,
    /// tcp or udp.
    pub proto: Proto,
    /// Ports opened, in the order written.
    pub ports: Vec<PortRange>,
    /// Allowed sources; empty means everyone.
    pub from: Vec<Net>,
}

impl Open {
    /// Whether it opens `port` of `proto` (to someone).
    pub fn covers(&self, proto: Proto, port: Port) -> bool {
        self.proto == proto && self.ports.iter().any(|r| r.contains(port))
    }

    /// The sources of one address family (`None` means everyone; `Some(empty)` means nobody).
    pub fn sources(&self, ipv4: bool) -> Option<Vec<Net>> {
        if self.from.is_empty() {
            None
        } else {
            Some(
                self.from
                    .iter()
                    .filter(|n| n.is_ipv4() == ipv4)
                    .copied()
                    .collect(),
            )
        }
    }
}

impl fmt::Display for Open {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "open {} ", self.proto)?;
        port::fmt_ports(f, &self.ports)?;
        fmt_from(f, &self.from)
    }
}

/// ` from NET, ...` as the language writes it (nothing for an empty list).
fn fmt_from(f: &mut fmt::Formatter<'_>, from: &[Net]) -> fmt::Result {
    if !from.is_empty() {
        f.write_str(" from ")?;
        for (i, n) in from.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            // As the language writes it: IPv6 networks are quoted.
            if n.is_ipv4() {
                write!(f, "{n}")?;
            } else {
                write!(f, "\"{n}\"")?;
            }
        }
    }
    Ok(())
}

/// `dnat [tcp|udp] PORT -> ADDR[:PORT];`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnat {
    /// Statement it came from.
    pub stmt: StmtId,
    /// tcp (default) or udp.
    pub proto: Proto,
    /// Incoming port on the external interface(s).
    pub port: Port,
    /// The inner host.
    pub to: Host,
    /// Port on the inner host (defaults to `port`).
    pub to_port: Port,
}

impl fmt::Display for Dnat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dnat {}{} -> {}:{}",
            proto_prefix(self.proto),
            self.port,
            self.to,
            self.to_port
        )
    }
}

/// `redirect [tcp|udp] PORT -> PORT;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Statement it came from.
    pub stmt: StmtId,
    /// tcp (default) or udp.
    pub proto: Proto,
    /// Incoming port.
    pub port: Port,
    /// Local port it is sent to (never equal to `port`).
    pub to_port: Port,
}

impl fmt::Display for Redirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "redirect {}{} -> {}",
            proto_prefix(self.proto),
            self.port,
            self.to_port
        )
    }
}

/// `dnat`/`redirect` default to tcp, and are written without it then.
fn proto_prefix(proto: Proto) -> &'static str {
    match proto {
        Proto::Tcp => "",
        Proto::Udp => "udp ",
    }
}

/// `block out tcp PORTS;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOut {
    /// Statement it came from.
    pub stmt: StmtId,
    /// tcp or udp.
    pub proto: Proto,
    /// Destination ports dropped.
    pub ports: Vec<PortRange>,
}

impl fmt::Display for BlockOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "block out {} ", self.proto)?;
        port::fmt_ports(f, &self.ports)
    }
}

/// The whole checked policy.
///
/// Build one with [`crate::Policy::parse`] or the `firewall!` macro; the fields
/// are public so that renderers and tools can read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// Untrusted external interfaces (never empty).
    pub extif: Vec<Iface>,
    /// Trusted interfaces; `None` means every interface that is not external.
    pub trust: Option<Vec<Iface>>,
    /// Input chain policy (default drop).
    pub input: Verdict,
    /// Forward chain policy as written (`None`: derived, see [`Model::forward_policy`]).
    pub forward: Option<Verdict>,
    /// Output chain policy (default accept).
    pub output: Verdict,
    /// `open` statements.
    pub opens: Vec<Open>,
    /// `icmp accept;` (default drop).
    pub icmp_accept: bool,
    /// `masquerade;`
    pub masquerade: bool,
    /// `dnat` statements.
    pub dnats: Vec<Dnat>,
    /// `redirect` statements.
    pub redirects: Vec<Redirect>,
    /// `forward drop;`
    pub forward_drop: bool,
    /// `block out` statements.
    pub block_out: Vec<BlockOut>,
    /// The port remote administration reaches through the external interface;
    /// `None` for `ssh none;`.
    pub ssh: Option<Port>,
    /// `failsafe DURATION;`
    pub failsafe: Option<Failsafe>,
    /// `log drops;`
    pub log_drops: bool,
    /// `exclusive;`: the policy is the host's only firewall; applying it
    /// removes every other rule, chain and table first (DSL.md section 6).
    pub exclusive: bool,
    /// `assert` statements: checked against the plan, they render no rule.
    pub asserts: Vec<Assert>,
}

impl Model {
    /// A policy with `masquerade` or `dnat` routes traffic between interfaces.
    pub fn is_router(&self) -> bool {
        self.masquerade || !self.dnats.is_empty()
    }

    /// The forward chain's default policy: as written, else `drop`
    /// (a router forwards exactly what its rules accept; a host forwards nothing).
    pub fn forward_policy(&self) -> Verdict {
        self.forward.unwrap_or(Verdict::Drop)
    }

    /// Whether connections to `port` of `proto` from outside reach the firewall
    /// itself and are accepted (opened to someone, or redirected from that port).
    pub fn accepts_locally(&self, proto: Proto, port: Port) -> bool {
        !self.input.blocks()
            || self.opens.iter().any(|o| o.covers(proto, port))
            || self
                .redirects
                .iter()
                .any(|r| r.proto == proto && r.port == port)
    }
}
