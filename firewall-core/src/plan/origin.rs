//! Where a rule comes from: the statement as written, or a derived cause.
//!
//! `Display` writes the text rule comments show (`open tcp 22, 80`, `default:
//! loopback`, `trust eth1`).

use crate::model::{Chain, Iface, StmtId};
use std::fmt;

/// The statement or default a rule comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A statement the model keeps with its index (`open`, `dnat`,
    /// `redirect`, `block out`), and its text as written back by its `Display`.
    Statement {
        /// Index of the statement in the policy.
        stmt: StmtId,
        /// The statement in the policy language.
        text: String,
    },
    /// A setting or a built-in default.
    Derived(Cause),
}

impl Origin {
    /// The origin of a rule rendered from statement `stmt` written as `text`.
    pub fn statement(stmt: StmtId, text: impl fmt::Display) -> Origin {
        Origin::Statement {
            stmt,
            text: text.to_string(),
        }
    }

    /// The statement index, for rules that come from a statement.
    pub fn stmt(&self) -> Option<StmtId> {
        match self {
            Origin::Statement { stmt, .. } => Some(*stmt),
            Origin::Derived(_) => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Statement { text, .. } => f.write_str(text),
            Origin::Derived(cause) => cause.fmt(f),
        }
    }
}

/// A derived cause: a setting of the policy that the model keeps without a
/// statement index, or a default every policy gets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Cause {
    /// Replies to accepted connections (`RELATED,ESTABLISHED`).
    Established,
    /// Packets conntrack cannot place are dropped.
    Invalid,
    /// The loopback interface.
    Loopback,
    /// IPv6 neighbour discovery (ICMPv6 133–136).
    NeighbourDiscovery,
    /// IPv6 inverse neighbour discovery (RFC 4890).
    InverseNeighbourDiscovery,
    /// IPv6 SEND certificate path (RFC 4890).
    SendCertificatePath,
    /// IPv6 multicast listener discovery (RFC 4890).
    MulticastListenerDiscovery,
    /// IPv6 multicast router discovery (RFC 4890).
    MulticastRouterDiscovery,
    /// DHCPv6 replies from a link-local server.
    Dhcpv6Replies,
    /// DHCPv6 requests to the servers of the link.
    Dhcpv6Requests,
    /// No `trust`: every interface that is not external is trusted.
    NonExternalTrusted,
    /// `extif IFACE`.
    Extif(Iface),
    /// `trust IFACE`.
    Trust(Iface),
    /// `icmp accept;`
    IcmpAccept,
    /// `icmp drop;` (the default).
    IcmpDrop,
    /// `masquerade;`
    Masquerade,
    /// `forward drop;`
    ForwardDrop,
    /// `policy forward accept`: from outside still only what a `dnat` forwards.
    ForwardAcceptFromOutside,
    /// `log drops;`
    LogDrops,
    /// `policy CHAIN reject`: the rejects standing in for the policy.
    PolicyReject(Chain),
    /// Another tool's bridge ([`super::FOREIGN_BRIDGES`]): its guests' traffic
    /// and the connections translated to them are that tool's to decide.
    ForeignBridge(Iface),
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Cause::Established => "default: replies to accepted connections",
            Cause::Invalid => "default: drop invalid packets",
            Cause::Loopback => "default: loopback",
            Cause::NeighbourDiscovery => "default: IPv6 neighbour discovery",
            Cause::InverseNeighbourDiscovery => {
                "default: IPv6 inverse neighbour discovery (RFC 4890)"
            }
            Cause::SendCertificatePath => "default: IPv6 SEND certificate path (RFC 4890)",
            Cause::MulticastListenerDiscovery => {
                "default: IPv6 multicast listener discovery (RFC 4890)"
            }
            Cause::MulticastRouterDiscovery => {
                "default: IPv6 multicast router discovery (RFC 4890)"
            }
            Cause::Dhcpv6Replies => "default: DHCPv6 replies from a link-local server",
            Cause::Dhcpv6Requests => "default: DHCPv6 requests to the servers of the link",
            Cause::NonExternalTrusted => "default: every interface that is not external is trusted",
            Cause::Extif(i) => return write!(f, "extif {i}"),
            Cause::Trust(i) => return write!(f, "trust {i}"),
            Cause::IcmpAccept => "icmp accept",
            Cause::IcmpDrop => "icmp drop",
            Cause::Masquerade => "masquerade",
            Cause::ForwardDrop => "forward drop",
            Cause::ForwardAcceptFromOutside => {
                "policy forward accept: from outside only what a dnat forwards"
            }
            Cause::LogDrops => "log drops",
            Cause::PolicyReject(chain) => return write!(f, "policy {} reject", chain.as_str()),
            Cause::ForeignBridge(i) => {
                // No quote: iptables-save escapes it, verification compares comments.
                return write!(f, "default: bridge {i} of another tool (Docker, libvirt)");
            }
        };
        f.write_str(text)
    }
}
