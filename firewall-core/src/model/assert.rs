//! `assert` statements (DSL.md section 7): proof obligations on the rendered
//! rules. They produce no rule; [`crate::proof`] checks them against the plan.

use super::{fmt_from, port, proto_prefix, Host, Net, Port, PortRange, Proto, StmtId};
use std::fmt;

/// `assert ...;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assert {
    /// Statement it came from.
    pub stmt: StmtId,
    /// What it asserts.
    pub kind: AssertKind,
}

/// The four assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssertKind {
    /// `assert open PROTO PORTS [from NETS];`: every new connection from NETS
    /// (default: anyone) through an external interface to each port is accepted.
    Open {
        /// tcp or udp.
        proto: Proto,
        /// Ports, as written.
        ports: Vec<PortRange>,
        /// Sources; empty means every address of both families.
        from: Vec<Net>,
    },
    /// `assert closed PROTO PORTS [from NETS];`: none of them is accepted.
    Closed {
        /// tcp or udp.
        proto: Proto,
        /// Ports, as written.
        ports: Vec<PortRange>,
        /// Sources; empty means every address of both families.
        from: Vec<Net>,
    },
    /// `assert closed out PROTO PORTS;`: this host opens no new connection to
    /// these ports through an external interface.
    ClosedOut {
        /// tcp or udp.
        proto: Proto,
        /// Ports, as written.
        ports: Vec<PortRange>,
    },
    /// `assert forwarded [PROTO] PORT -> ADDR:PORT [from NETS];`: a new
    /// connection from outside to `port` reaches `to:to_port` behind the firewall.
    Forwarded {
        /// tcp (default) or udp.
        proto: Proto,
        /// Incoming port.
        port: Port,
        /// The inner host.
        to: Host,
        /// Its port.
        to_port: Port,
        /// Sources; empty means every IPv4 address (NAT is IPv4).
        from: Vec<Net>,
    },
}

impl fmt::Display for Assert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            AssertKind::Open { proto, ports, from } | AssertKind::Closed { proto, ports, from } => {
                let word = if matches!(self.kind, AssertKind::Open { .. }) {
                    "open"
                } else {
                    "closed"
                };
                write!(f, "assert {word} {proto} ")?;
                port::fmt_ports(f, ports)?;
                fmt_from(f, from)
            }
            AssertKind::ClosedOut { proto, ports } => {
                write!(f, "assert closed out {proto} ")?;
                port::fmt_ports(f, ports)
            }
            AssertKind::Forwarded {
                proto,
                port,
                to,
                to_port,
                from,
            } => {
                write!(
                    f,
                    "assert forwarded {}{port} -> {to}:{to_port}",
                    proto_prefix(*proto)
                )?;
                fmt_from(f, from)
            }
        }
    }
}
