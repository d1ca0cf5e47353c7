//! The rule model: what the firewall installs, decided once, before any
//! backend spells it.
//!
//! Pipeline: model → checks → **plan** → render → apply. [`lower`] turns a
//! checked [`Model`](crate::model::Model) into a [`Plan`]: tables of chains of [`Rule`]s with typed
//! [`Matches`] and [`Target`]s, each carrying its [`Origin`] (the statement or
//! the default it came from). The printers in `render` only spell a plan
//! (`iptables-restore` text, nftables); they decide nothing about which packets
//! pass. Kernel limits of one backend (the 15 entries of an iptables
//! `multiport` match, its 255-byte comments) are that printer's business: port
//! lists here are whole sets of ranges, never cut into chunks.
//!
//! One plan covers both address families: a rule whose [`Rule::family`] is
//! `None` applies to IPv4 and IPv6 alike, otherwise only to that family. A
//! printer for one family keeps the rules of its family, in order.
//!
//! Nothing here imports from `render` or `apply`.
//!
//! ```
//! use firewall_core::{plan, Policy};
//! let policy = Policy::parse("extif eth0; open tcp 22, 80, 8000..=8080;").unwrap();
//! let plan = plan::lower(policy.model());
//! let ext_in = plan.filter.chain(plan::ChainKind::User(plan::UserChain::ExtIn)).unwrap();
//! let open = &ext_in.rules[0];
//! assert_eq!(open.origin.to_string(), "open tcp 22, 80, 8000..=8080");
//! assert_eq!(open.target, plan::Target::Accept);
//! match &open.matches.proto {
//!     Some(plan::L4::Tcp(ports)) => assert_eq!(ports.dport.as_ref().unwrap().ranges().len(), 3),
//!     other => panic!("{other:?}"),
//! }
//! ```

mod backend;
mod lower;
mod origin;
pub mod requirements;
#[cfg(test)]
mod tests;

pub use backend::Backend;
pub use lower::lower;
pub use origin::{Cause, Origin};

use crate::model::{Host, Iface, Net, Port, PortRange};

/// The name prefix of every iptables chain the firewall creates (`fw-input`,
/// `fw-ext-in`, ...): the chains it owns, next to other tools' chains (Docker's
/// `DOCKER`, fail2ban's `f2b-sshd`). Applying, verifying, rolling back and
/// removing touch only chains with this prefix, the one jump ("hook") from
/// each built-in chain into its own chain, and the built-in chains' policies.
pub const CHAIN_PREFIX: &str = "fw-";

/// The bridge interfaces other tools create for their guests: Docker's
/// default bridge `docker0` and its user networks `br-+`, libvirt's `virbr+`
/// (a name ending in `+` matches every name with that prefix). Forwarded
/// traffic from them, and connections destination-translated to them (a
/// container's published port), is accepted in the forward chain, for each
/// one the policy does not itself name (see [`lower`](lower::lower)): under
/// nftables a packet must pass every base chain of its hook, so the firewall's
/// own forward chain would otherwise drop what Docker's chains accept.
pub const FOREIGN_BRIDGES: [&str; 3] = ["docker0", "br-+", "virbr+"];

/// The `LOG` prefix of `log drops;`.
pub const LOG_PREFIX: &str = "firewall drop: ";

/// The rate at which `log drops;` logs.
pub const LOG_RATE: RateLimit = RateLimit {
    per_minute: 5,
    burst: 10,
};

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Whether this is IPv4.
    pub const fn is_v4(self) -> bool {
        matches!(self, Family::V4)
    }
}

/// Everything the firewall installs: the filter table and the NAT table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Packet filtering (`filter` in iptables).
    pub filter: Table,
    /// Address translation (`nat`); its rules are IPv4 only.
    pub nat: Table,
}

impl Plan {
    /// Both tables, filter first.
    pub fn tables(&self) -> [&Table; 2] {
        [&self.filter, &self.nat]
    }
}

/// Which table a [`Table`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    /// Filtering.
    Filter,
    /// Address translation.
    Nat,
}

/// One table: its chains, in order (the order in which their rules are listed;
/// a printer that must declare built-in chains first does so itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Filter or NAT.
    pub kind: TableKind,
    /// The chains.
    pub chains: Vec<Chain>,
}

impl Table {
    /// Whether the firewall owns chain `chain` of this table for `family` (in
    /// iptables: creates its own chain for it, hooked into the built-in one):
    /// every filter chain; a NAT chain only when it has rules of `family`.
    pub fn owns(&self, chain: &Chain, family: Family) -> bool {
        self.kind == TableKind::Filter || chain.rules_of(family).next().is_some()
    }

    /// Whether the firewall touches this table for `family` at all: it owns
    /// one of its chains. A policy without NAT touches no `nat` table.
    pub fn is_owned(&self, family: Family) -> bool {
        self.chains.iter().any(|c| self.owns(c, family))
    }

    /// The chain of that kind, if the table has it.
    pub fn chain(&self, kind: ChainKind) -> Option<&Chain> {
        self.chains.iter().find(|c| c.kind == kind)
    }
}

/// A chain and its rules, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Built-in (hooked, with a policy) or user chain.
    pub kind: ChainKind,
    /// The rules, first match first.
    pub rules: Vec<Rule>,
}

impl Chain {
    /// The rules that apply to `family`, in order.
    pub fn rules_of(&self, family: Family) -> impl Iterator<Item = &Rule> + '_ {
        self.rules.iter().filter(move |r| r.applies_to(family))
    }
}

/// What kind of chain: one the kernel calls at a hook, or one reached by goto/jump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainKind {
    /// A built-in chain at `hook` with a default policy.
    BuiltIn {
        /// Where the kernel calls it.
        hook: Hook,
        /// What happens to a packet no rule decided.
        policy: BasePolicy,
    },
    /// A chain of the firewall's own, reached from a built-in chain.
    User(UserChain),
}

/// The netfilter hook of a built-in chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// Before routing (NAT: destination translation).
    Prerouting,
    /// To this host.
    Input,
    /// Routed through this host.
    Forward,
    /// From this host.
    Output,
    /// After routing (NAT: source translation).
    Postrouting,
}

/// The default policy of a built-in chain. A policy `reject` is `Drop` plus
/// explicit [`Target::Reject`] rules at the end of the chains concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BasePolicy {
    /// Let it through.
    Accept,
    /// Discard silently.
    Drop,
}

/// The firewall's own chains: where packets from or to the external
/// interfaces are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserChain {
    /// Incoming from an external interface.
    ExtIn,
    /// Forwarded from an external interface.
    ExtFwd,
    /// Outgoing through an external interface.
    ExtOut,
}

impl UserChain {
    /// The chain's name in every backend: `ext-in`, `ext-fwd`, `ext-out`.
    pub const fn name(self) -> &'static str {
        match self {
            UserChain::ExtIn => "ext-in",
            UserChain::ExtFwd => "ext-fwd",
            UserChain::ExtOut => "ext-out",
        }
    }

    /// The chain's name in the iptables backends: [`CHAIN_PREFIX`] and
    /// [`UserChain::name`] (`fw-ext-in`).
    pub const fn own_name(self) -> &'static str {
        match self {
            UserChain::ExtIn => "fw-ext-in",
            UserChain::ExtFwd => "fw-ext-fwd",
            UserChain::ExtOut => "fw-ext-out",
        }
    }
}

impl Hook {
    /// The iptables chain of the firewall's own that holds the rules of the
    /// built-in chain at this hook (`fw-input`): the built-in chain itself only
    /// gets the policy and one jump to it.
    pub const fn own_chain(self) -> &'static str {
        match self {
            Hook::Prerouting => "fw-prerouting",
            Hook::Input => "fw-input",
            Hook::Forward => "fw-forward",
            Hook::Output => "fw-output",
            Hook::Postrouting => "fw-postrouting",
        }
    }
}

impl ChainKind {
    /// The name of the firewall's own iptables chain for this chain.
    pub const fn own_name(self) -> &'static str {
        match self {
            ChainKind::BuiltIn { hook, .. } => hook.own_chain(),
            ChainKind::User(c) => c.own_name(),
        }
    }
}

/// One rule: a packet of [`Rule::family`] meeting every one of [`Rule::matches`]
/// meets [`Rule::target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `None`: both families; otherwise only this one.
    pub family: Option<Family>,
    /// What the packet must match (all of it).
    pub matches: Matches,
    /// What happens to it.
    pub target: Target,
    /// The statement or default the rule comes from.
    pub origin: Origin,
}

impl Rule {
    /// Whether the rule applies to packets of `family`.
    pub fn applies_to(&self, family: Family) -> bool {
        self.family.is_none_or(|f| f == family)
    }
}

/// The conditions of a rule; `None` (or the default) matches every packet.
///
/// Networks in [`Matches::src`] and [`Matches::dst`] are of the rule's family
/// (a rule with either has `Some` family).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches {
    /// Incoming interface (a name ending in `+` matches every name with that prefix).
    pub iif: Option<Iface>,
    /// Outgoing interface (same wildcard).
    pub oif: Option<Iface>,
    /// Source address in one of these networks.
    pub src: Option<NetSet>,
    /// Destination address in one of these networks.
    pub dst: Option<NetSet>,
    /// Transport protocol, with its ports or ICMP type.
    pub proto: Option<L4>,
    /// ICMPv6 hop limit equal to this (255: from the link itself, RFC 4861).
    pub hop_limit: Option<u8>,
    /// Connection tracking state in this set.
    pub ct_state: Option<CtStates>,
    /// The connection was destination-translated (DNAT or REDIRECT) and its
    /// original destination port was this one.
    pub ct_dnat_from: Option<Port>,
    /// The connection was destination-translated (DNAT), by anyone, to any port.
    pub ct_dnat: bool,
    /// At most this rate (the rest does not match).
    pub limit: Option<RateLimit>,
}

/// A transport protocol match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L4 {
    /// TCP, with ports.
    Tcp(PortMatch),
    /// UDP, with ports.
    Udp(PortMatch),
    /// ICMP of the packet's family (ICMP for IPv4, ICMPv6 for IPv6), of one
    /// type or any.
    Icmp(Option<IcmpType>),
}

impl L4 {
    /// TCP or UDP with these ports.
    pub fn ports(proto: crate::model::Proto, ports: PortMatch) -> L4 {
        match proto {
            crate::model::Proto::Tcp => L4::Tcp(ports),
            crate::model::Proto::Udp => L4::Udp(ports),
        }
    }
}

/// The ports of a TCP or UDP match; `None` matches any port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortMatch {
    /// Source port.
    pub sport: Option<Port>,
    /// Destination port in this set.
    pub dport: Option<PortSet>,
}

/// A non-empty set of port ranges: sorted, without duplicates, never cut to
/// fit a backend's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSet(Vec<PortRange>);

impl PortSet {
    /// The set of `ranges` (sorted, duplicates removed); `None` if empty.
    pub fn new(ranges: &[PortRange]) -> Option<PortSet> {
        let mut v = ranges.to_vec();
        v.sort();
        v.dedup();
        (!v.is_empty()).then_some(PortSet(v))
    }

    /// The set holding only `port`.
    pub fn single(port: Port) -> PortSet {
        PortSet(vec![PortRange::single(port)])
    }

    /// The ranges, sorted.
    pub fn ranges(&self) -> &[PortRange] {
        &self.0
    }
}

/// A non-empty set of networks of one family, in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSet {
    family: Family,
    nets: Vec<Net>,
}

impl NetSet {
    /// The set of `nets`; `None` if empty or of mixed families.
    pub fn new(nets: Vec<Net>) -> Option<NetSet> {
        let first = nets.first()?;
        let family = if first.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        nets.iter()
            .all(|n| n.is_ipv4() == family.is_v4())
            .then_some(NetSet { family, nets })
    }

    /// The set holding only `net`.
    pub fn single(net: Net) -> NetSet {
        NetSet {
            family: if net.is_ipv4() {
                Family::V4
            } else {
                Family::V6
            },
            nets: vec![net],
        }
    }

    /// The family of every network in the set.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The networks.
    pub fn nets(&self) -> &[Net] {
        &self.nets
    }
}

/// An ICMP type the rules name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IcmpType {
    /// Echo request (ping): type 8 in ICMP, 128 in ICMPv6.
    EchoRequest,
    /// An ICMPv6 type (only in rules of family [`Family::V6`]).
    V6(Icmpv6Type),
}

/// The ICMPv6 messages of neighbour discovery and RFC 4890 that the rules accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Icmpv6Type {
    /// Multicast listener query (130).
    MldQuery = 130,
    /// Multicast listener report (131).
    MldReport = 131,
    /// Multicast listener done (132).
    MldDone = 132,
    /// Router solicitation (133).
    RouterSolicitation = 133,
    /// Router advertisement (134).
    RouterAdvertisement = 134,
    /// Neighbour solicitation (135).
    NeighbourSolicitation = 135,
    /// Neighbour advertisement (136).
    NeighbourAdvertisement = 136,
    /// Inverse neighbour discovery solicitation (141).
    InverseNdSolicitation = 141,
    /// Inverse neighbour discovery advertisement (142).
    InverseNdAdvertisement = 142,
    /// Version 2 multicast listener report (143).
    Mldv2Report = 143,
    /// SEND certification path solicitation (148).
    CertPathSolicitation = 148,
    /// SEND certification path advertisement (149).
    CertPathAdvertisement = 149,
    /// Multicast router advertisement (151).
    MrdAdvertisement = 151,
    /// Multicast router solicitation (152).
    MrdSolicitation = 152,
    /// Multicast router termination (153).
    MrdTermination = 153,
}

impl Icmpv6Type {
    /// The type number.
    pub const fn number(self) -> u8 {
        self as u8
    }
}

/// A conntrack state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CtState {
    /// The first packet of a connection.
    New,
    /// Related to a tracked connection (ICMP errors, FTP data).
    Related,
    /// Part of a connection that has seen traffic both ways.
    Established,
    /// Belongs to no connection conntrack can make sense of.
    Invalid,
}

/// A set of conntrack states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CtStates {
    bits: u8,
}

impl CtStates {
    const ALL: [CtState; 4] = [
        CtState::New,
        CtState::Related,
        CtState::Established,
        CtState::Invalid,
    ];

    /// The set of `states`.
    pub fn of(states: &[CtState]) -> CtStates {
        CtStates {
            bits: states.iter().fold(0, |b, s| b | Self::bit(*s)),
        }
    }

    const fn bit(s: CtState) -> u8 {
        match s {
            CtState::New => 1,
            CtState::Related => 2,
            CtState::Established => 4,
            CtState::Invalid => 8,
        }
    }

    /// The states in the set, in the order new, related, established, invalid.
    pub fn iter(self) -> impl Iterator<Item = CtState> {
        Self::ALL
            .into_iter()
            .filter(move |s| self.bits & Self::bit(*s) != 0)
    }
}

/// A rate limit: on average `per_minute` packets a minute, bursts of `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Average packets per minute.
    pub per_minute: u32,
    /// Packets let through at once before the average applies.
    pub burst: u32,
}

/// What a rule does to a packet it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Let it through.
    Accept,
    /// Discard silently.
    Drop,
    /// Discard and answer.
    Reject(RejectWith),
    /// Continue in a user chain, and when it ends, end the calling chain too
    /// (its policy applies).
    Goto(UserChain),
    /// Continue in a user chain, then come back.
    Jump(UserChain),
    /// Send the connection to `to:port` (NAT table, before routing).
    Dnat {
        /// The inner host.
        to: Host,
        /// Its port.
        port: Port,
    },
    /// Send the connection to `port` of this host (NAT table, before routing).
    Redirect {
        /// The local port.
        port: Port,
    },
    /// Source-translate to the outgoing interface's address (NAT table, after routing).
    Masquerade,
    /// Log it with `prefix` and go on with the next rule.
    Log {
        /// Kernel log prefix.
        prefix: &'static str,
    },
}

/// How a [`Target::Reject`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectWith {
    /// A TCP reset (the rule matches TCP only).
    TcpReset,
    /// ICMP (IPv6: ICMPv6) port unreachable.
    PortUnreachable,
}
