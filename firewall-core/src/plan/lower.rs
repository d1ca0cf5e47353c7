//! The lowering model → plan: every decision about which packets pass.
//!
//! # `filter`
//!
//! The built-in chains input, forward and output get the model's policies
//! (`input`, [`Model::forward_policy`], `output`). `reject` cannot be the policy of
//! a built-in chain, so it becomes policy drop plus a final reject in the chain's
//! *tail*. The user chains `ext-in`, `ext-fwd` and `ext-out` always exist. The
//! built-in chains send external traffic there with a goto, not a jump: when an
//! `ext-*` chain ends without a verdict, the built-in chain's policy applies
//! directly, and the packet never falls through to the trusted-interface accepts.
//!
//! The *tail* of a chain is: a rate-limited log with prefix [`LOG_PREFIX`]
//! (only on the input side, only with `log drops;`, and only when the input
//! policy drops or rejects: it logs what that policy drops), then, when the
//! chain's policy is `reject`, a TCP reset for TCP followed by a port
//! unreachable for the rest. On the input side with `icmp drop` (the default),
//! an ICMP drop comes before those rejects: `icmp drop` means no answer at all,
//! not even a "port unreachable" that tells a ping sweep the host is there.
//!
//! * input: accept related/established; IPv6 only: accept neighbour discovery
//!   (ICMPv6 133–136 with hop limit 255) and the rest of what RFC 4890 (4.4.1)
//!   says a host must accept, each only as it arrives from the link itself:
//!   inverse neighbour discovery (141, 142) and SEND certificate path (148,
//!   149) with hop limit 255; multicast listener discovery (130, 131, 132, 143)
//!   from `fe80::/10`, and its reports (131, 143) also from `::`, and multicast
//!   router discovery (151–153) from `fe80::/10`, all with hop limit 1; and
//!   DHCPv6 replies (from and to `fe80::/10`, UDP 547 to 546: conntrack cannot
//!   pair a server's unicast answer with the client's multicast request). ICMP
//!   errors pass as related, echo as `icmp` says. All of this *before* the
//!   invalid drop, because IPv6 breaks without it; drop invalid; accept `lo`;
//!   goto `ext-in` per external interface; then the trusted interfaces: with
//!   `trust`, an accept each and the input tail; without it, one accept (every
//!   interface that is not external is trusted, as in the howto).
//! * `ext-in`: ICMP (`icmp accept;`: IPv4 any ICMP, IPv6 echo request accepted;
//!   with the default `icmp drop` and an accepting input policy the same rules
//!   drop, under a rejecting one the tail drops ICMP; ICMP errors pass as
//!   related already); each `open`, per family of its sources (an `open` whose
//!   `from` has no network of a family opens nothing in it); IPv4: each
//!   `redirect`'s connections exactly (the target port, of connections
//!   translated from the incoming port; the target port itself is not opened);
//!   then the input tail.
//! * forward: accept related/established; drop invalid; goto `ext-fwd` per
//!   external interface; when something forwards outward (IPv4 routers,
//!   `masquerade`/`dnat`; or `policy forward accept`, both families) drop new
//!   forwarded connections matching `block out` (out through each external
//!   interface); IPv4 routers then accept the trusted interfaces outward
//!   (`trust`: each; else everything not external). IPv6 forwards nothing by
//!   rule: the forward policy decides. Then the forward tail.
//! * `ext-fwd`: IPv4: exactly the DNAT'd connections of each `dnat` (to the
//!   inner host and port, translated from the incoming port); `forward drop;`
//!   drops the rest, and so does a final drop under `policy forward accept`
//!   (nothing from outside reaches inside unless a `dnat` says so: the
//!   accepting policy is for what the other interfaces forward); then the
//!   forward tail.
//! * output: when the output policy blocks: accept related/established, IPv6
//!   neighbour discovery, the same RFC 4890 messages as on input (a host that
//!   cannot send its multicast listener reports stops receiving neighbour
//!   discovery behind a switch that snoops MLD) and DHCPv6 requests (from
//!   `fe80::/10` to `ff02::1:2`, UDP 546 to 547), and `lo` first. Goto
//!   `ext-out` per external interface; when the output policy blocks, the
//!   trusted interfaces are accepted and the output tail follows.
//! * `ext-out`: each `block out` dropped, new connections only: under the
//!   default `policy output accept` nothing accepts replies before it, and the
//!   reply to a client whose source port lies in a blocked range must still
//!   leave. Then the output tail.
//!
//! # `nat`
//!
//! Prerouting, input, output, postrouting, all accept. IPv4 only: prerouting
//! per external interface: each `dnat`, then each `redirect`; postrouting: a
//! masquerade per external interface with `masquerade;`.

use super::{
    BasePolicy, Cause, Chain, ChainKind, CtState, CtStates, Family, Hook, IcmpType, Icmpv6Type,
    Matches, NetSet, Origin, Plan, PortMatch, PortSet, RejectWith, Rule, Table, TableKind, Target,
    UserChain, L4, LOG_PREFIX, LOG_RATE,
};
use crate::model::{self, BlockOut, Iface, Model, Net, Port, Verdict};

/// The plan of `model`: both tables, both families (see the module documentation).
pub fn lower(model: &Model) -> Plan {
    // Every field, by name: a statement added to the model and forgotten here
    // does not compile.
    let Model {
        extif,
        trust,
        input,
        forward: _, // read through `Model::forward_policy`
        output,
        opens,
        icmp_accept,
        masquerade,
        dnats,
        redirects,
        forward_drop,
        block_out,
        ssh: _,      // the lockout check's business: it renders no rule
        failsafe: _, // applying's business: it renders no rule
        log_drops,
        exclusive: _, // applying's business: the loader flushes, the rules are the same
        asserts: _,   // proof obligations, checked against the plan: no rule
    } = model;
    let l = Lowering {
        extif,
        trust: trust.as_deref(),
        input: *input,
        forward: model.forward_policy(),
        output: *output,
        icmp_accept: *icmp_accept,
        log_drops: *log_drops,
        router: model.is_router(),
    };

    let mut chains = Vec::new();

    // input
    let mut c = Builder::new(builtin(Hook::Input, l.input));
    c.established();
    neighbour_discovery(&mut c, true);
    link_local_services(&mut c, true);
    c.invalid();
    c.push(
        None,
        Matches {
            iif: Some(Iface::loopback()),
            ..Matches::default()
        },
        Target::Accept,
        Cause::Loopback,
    );
    l.extif_goto(&mut c, true, UserChain::ExtIn);
    l.trusted(&mut c, None, true);
    if l.trust.is_some() {
        l.input_tail(&mut c);
    }
    chains.push(c.chain);

    // ext-in
    let mut c = Builder::new(ChainKind::User(UserChain::ExtIn));
    let icmp_target = if l.icmp_accept {
        Some(Target::Accept)
    } else if !l.input.blocks() {
        Some(Target::Drop)
    } else {
        None
    };
    if let Some(target) = icmp_target {
        let cause = if l.icmp_accept {
            Cause::IcmpAccept
        } else {
            Cause::IcmpDrop
        };
        for (family, ty) in [
            (Family::V4, None),
            (Family::V6, Some(IcmpType::EchoRequest)),
        ] {
            c.push(
                Some(family),
                Matches {
                    proto: Some(L4::Icmp(ty)),
                    ..Matches::default()
                },
                target.clone(),
                cause.clone(),
            );
        }
    }
    for open in opens {
        let origin = Origin::statement(open.stmt, open);
        let Some(dport) = PortSet::new(&open.ports) else {
            continue;
        };
        let proto = Some(L4::ports(
            open.proto,
            PortMatch {
                sport: None,
                dport: Some(dport),
            },
        ));
        if open.from.is_empty() {
            c.push(
                None,
                Matches {
                    proto,
                    ..Matches::default()
                },
                Target::Accept,
                origin,
            );
            continue;
        }
        for family in [Family::V4, Family::V6] {
            let nets: Vec<Net> = open
                .from
                .iter()
                .filter(|n| n.is_ipv4() == family.is_v4())
                .copied()
                .collect();
            if let Some(src) = NetSet::new(nets) {
                c.push(
                    Some(family),
                    Matches {
                        src: Some(src),
                        proto: proto.clone(),
                        ..Matches::default()
                    },
                    Target::Accept,
                    origin.clone(),
                );
            }
        }
    }
    for r in redirects {
        c.push(
            Some(Family::V4),
            Matches {
                proto: Some(dport(r.proto, r.to_port)),
                ct_dnat_from: Some(r.port),
                ..Matches::default()
            },
            Target::Accept,
            Origin::statement(r.stmt, r),
        );
    }
    l.input_tail(&mut c);
    chains.push(c.chain);

    // forward
    let mut c = Builder::new(builtin(Hook::Forward, l.forward));
    c.established();
    c.invalid();
    // Connections another tool translated to its guests (a container's
    // published port) before the external gotos: from outside, they end there.
    let bridges = foreign_bridges(model);
    for b in &bridges {
        c.push(
            None,
            Matches {
                oif: Some(b.clone()),
                ct_dnat: true,
                ..Matches::default()
            },
            Target::Accept,
            Cause::ForeignBridge(b.clone()),
        );
    }
    l.extif_goto(&mut c, true, UserChain::ExtFwd);
    // Whatever forwards outward (an IPv4 router's trusted accepts, or the
    // policy itself) meets `block out` first.
    let outward = if l.forward == Verdict::Accept {
        Some(None)
    } else if l.router {
        Some(Some(Family::V4))
    } else {
        None
    };
    if let Some(family) = outward {
        for b in block_out {
            for e in l.extif {
                block_out_rule(&mut c, family, Some(e), b);
            }
        }
    }
    if l.router {
        l.trusted(&mut c, Some(Family::V4), true);
    }
    // What the guests of another tool's bridge send (after `block out`).
    for b in &bridges {
        c.push(
            None,
            iface(true, b),
            Target::Accept,
            Cause::ForeignBridge(b.clone()),
        );
    }
    reject_tail(&mut c, model::Chain::Forward, l.forward);
    chains.push(c.chain);

    // ext-fwd
    let mut c = Builder::new(ChainKind::User(UserChain::ExtFwd));
    for d in dnats {
        c.push(
            Some(Family::V4),
            Matches {
                dst: Some(NetSet::single(Net::from(d.to))),
                proto: Some(dport(d.proto, d.to_port)),
                ct_dnat_from: Some(d.port),
                ..Matches::default()
            },
            Target::Accept,
            Origin::statement(d.stmt, d),
        );
    }
    if *forward_drop {
        c.push(None, Matches::default(), Target::Drop, Cause::ForwardDrop);
    } else if l.forward == Verdict::Accept {
        // Nothing from outside reaches inside unless a `dnat` says so, also
        // when the policy accepts (that is for what the inside forwards).
        c.push(
            None,
            Matches::default(),
            Target::Drop,
            Cause::ForwardAcceptFromOutside,
        );
    }
    reject_tail(&mut c, model::Chain::Forward, l.forward);
    chains.push(c.chain);

    // output
    let mut c = Builder::new(builtin(Hook::Output, l.output));
    let out_blocks = l.output.blocks();
    if out_blocks {
        c.established();
        neighbour_discovery(&mut c, false);
        link_local_services(&mut c, false);
        c.push(
            None,
            Matches {
                oif: Some(Iface::loopback()),
                ..Matches::default()
            },
            Target::Accept,
            Cause::Loopback,
        );
    }
    l.extif_goto(&mut c, false, UserChain::ExtOut);
    if out_blocks {
        l.trusted(&mut c, None, false);
        reject_tail(&mut c, model::Chain::Output, l.output);
    }
    chains.push(c.chain);

    // ext-out
    let mut c = Builder::new(ChainKind::User(UserChain::ExtOut));
    for b in block_out {
        block_out_rule(&mut c, None, None, b);
    }
    reject_tail(&mut c, model::Chain::Output, l.output);
    chains.push(c.chain);

    let filter = Table {
        kind: TableKind::Filter,
        chains,
    };

    // nat
    let mut pre = Builder::new(builtin(Hook::Prerouting, Verdict::Accept));
    for e in l.extif {
        for d in dnats {
            pre.push(
                Some(Family::V4),
                Matches {
                    iif: Some(e.clone()),
                    proto: Some(dport(d.proto, d.port)),
                    ..Matches::default()
                },
                Target::Dnat {
                    to: d.to,
                    port: d.to_port,
                },
                Origin::statement(d.stmt, d),
            );
        }
        for r in redirects {
            pre.push(
                Some(Family::V4),
                Matches {
                    iif: Some(e.clone()),
                    proto: Some(dport(r.proto, r.port)),
                    ..Matches::default()
                },
                Target::Redirect { port: r.to_port },
                Origin::statement(r.stmt, r),
            );
        }
    }
    let mut post = Builder::new(builtin(Hook::Postrouting, Verdict::Accept));
    if *masquerade {
        for e in l.extif {
            post.push(
                Some(Family::V4),
                Matches {
                    oif: Some(e.clone()),
                    ..Matches::default()
                },
                Target::Masquerade,
                Cause::Masquerade,
            );
        }
    }
    let nat = Table {
        kind: TableKind::Nat,
        chains: vec![
            pre.chain,
            Builder::new(builtin(Hook::Input, Verdict::Accept)).chain,
            Builder::new(builtin(Hook::Output, Verdict::Accept)).chain,
            post.chain,
        ],
    };

    Plan { filter, nat }
}

/// The [`FOREIGN_BRIDGES`](super::FOREIGN_BRIDGES) the policy does not name:
/// a pattern is left out when an `extif` or `trust` interface falls under it
/// or it under one (`trust br-lan;` drops `br-+`: the policy decides there).
fn foreign_bridges(model: &Model) -> Vec<Iface> {
    let covers = |pattern: &str, name: &str| match pattern.strip_suffix('+') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    };
    let named: Vec<&str> = model
        .extif
        .iter()
        .chain(model.trust.iter().flatten())
        .map(Iface::as_str)
        .collect();
    super::FOREIGN_BRIDGES
        .iter()
        .filter(|b| !named.iter().any(|n| covers(b, n) || covers(n, b)))
        .filter_map(|b| Iface::new(b).ok())
        .collect()
}

/// The settings the rules of several chains read.
struct Lowering<'m> {
    extif: &'m [Iface],
    trust: Option<&'m [Iface]>,
    input: Verdict,
    forward: Verdict,
    output: Verdict,
    icmp_accept: bool,
    log_drops: bool,
    router: bool,
}

impl Lowering<'_> {
    /// The tail of the input side: log what the policy drops, then reject.
    fn input_tail(&self, c: &mut Builder) {
        if self.log_drops && self.input.blocks() {
            c.push(
                None,
                Matches {
                    limit: Some(LOG_RATE),
                    ..Matches::default()
                },
                Target::Log { prefix: LOG_PREFIX },
                Cause::LogDrops,
            );
        }
        if self.input == Verdict::Reject && !self.icmp_accept {
            // `icmp drop` means no answer at all: not even the reject's error.
            c.push(
                None,
                Matches {
                    proto: Some(L4::Icmp(None)),
                    ..Matches::default()
                },
                Target::Drop,
                Cause::IcmpDrop,
            );
        }
        reject_tail(c, model::Chain::Input, self.input);
    }

    /// Accepts traffic from (`incoming`) or to the trusted interfaces.
    fn trusted(&self, c: &mut Builder, family: Option<Family>, incoming: bool) {
        match self.trust {
            Some(list) => {
                for i in list {
                    c.push(
                        family,
                        iface(incoming, i),
                        Target::Accept,
                        Cause::Trust(i.clone()),
                    );
                }
            }
            None => c.push(
                family,
                Matches::default(),
                Target::Accept,
                Cause::NonExternalTrusted,
            ),
        }
    }

    /// A goto to `target` per external interface, in (`incoming`) or out.
    fn extif_goto(&self, c: &mut Builder, incoming: bool, target: UserChain) {
        for e in self.extif {
            c.push(
                None,
                iface(incoming, e),
                Target::Goto(target),
                Cause::Extif(e.clone()),
            );
        }
    }
}

/// Rules of one chain being built.
struct Builder {
    chain: Chain,
}

impl Builder {
    fn new(kind: ChainKind) -> Builder {
        Builder {
            chain: Chain {
                kind,
                rules: Vec::new(),
            },
        }
    }

    fn push(
        &mut self,
        family: Option<Family>,
        matches: Matches,
        target: Target,
        origin: impl Into<Origin>,
    ) {
        self.chain.rules.push(Rule {
            family,
            matches,
            target,
            origin: origin.into(),
        });
    }

    fn established(&mut self) {
        self.push(
            None,
            ct(&[CtState::Related, CtState::Established]),
            Target::Accept,
            Cause::Established,
        );
    }

    fn invalid(&mut self) {
        self.push(None, ct(&[CtState::Invalid]), Target::Drop, Cause::Invalid);
    }

    /// An IPv6 ICMPv6 accept of `ty`, from `src` if given, with hop limit `hl` if given.
    fn icmpv6(&mut self, src: Option<Net>, ty: Icmpv6Type, hl: Option<u8>, cause: Cause) {
        self.push(
            Some(Family::V6),
            Matches {
                src: src.map(NetSet::single),
                proto: Some(L4::Icmp(Some(IcmpType::V6(ty)))),
                hop_limit: hl,
                ..Matches::default()
            },
            Target::Accept,
            cause,
        );
    }
}

impl From<Cause> for Origin {
    fn from(c: Cause) -> Origin {
        Origin::Derived(c)
    }
}

fn builtin(hook: Hook, policy: Verdict) -> ChainKind {
    ChainKind::BuiltIn {
        hook,
        policy: match policy {
            Verdict::Accept => BasePolicy::Accept,
            Verdict::Drop | Verdict::Reject => BasePolicy::Drop,
        },
    }
}

fn iface(incoming: bool, i: &Iface) -> Matches {
    if incoming {
        Matches {
            iif: Some(i.clone()),
            ..Matches::default()
        }
    } else {
        Matches {
            oif: Some(i.clone()),
            ..Matches::default()
        }
    }
}

fn ct(states: &[CtState]) -> Matches {
    Matches {
        ct_state: Some(CtStates::of(states)),
        ..Matches::default()
    }
}

/// TCP/UDP to one destination port.
fn dport(proto: model::Proto, port: Port) -> L4 {
    L4::ports(
        proto,
        PortMatch {
            sport: None,
            dport: Some(PortSet::single(port)),
        },
    )
}

/// `REJECT` rules standing in for a `reject` policy of `chain`.
fn reject_tail(c: &mut Builder, chain: model::Chain, policy: Verdict) {
    if policy != Verdict::Reject {
        return;
    }
    c.push(
        None,
        Matches {
            proto: Some(L4::Tcp(PortMatch::default())),
            ..Matches::default()
        },
        Target::Reject(RejectWith::TcpReset),
        Cause::PolicyReject(chain),
    );
    c.push(
        None,
        Matches::default(),
        Target::Reject(RejectWith::PortUnreachable),
        Cause::PolicyReject(chain),
    );
}

/// Drops new connections to the ports of `b` (out through `oif`): only new
/// ones, so that replies of connections accepted from outside (whose client
/// port may lie in a blocked range) always leave, whatever the output policy.
fn block_out_rule(c: &mut Builder, family: Option<Family>, oif: Option<&Iface>, b: &BlockOut) {
    let Some(ports) = PortSet::new(&b.ports) else {
        return;
    };
    c.push(
        family,
        Matches {
            oif: oif.cloned(),
            proto: Some(L4::ports(
                b.proto,
                PortMatch {
                    sport: None,
                    dport: Some(ports),
                },
            )),
            ct_state: Some(CtStates::of(&[CtState::New])),
            ..Matches::default()
        },
        Target::Drop,
        Origin::statement(b.stmt, b),
    );
}

/// Neighbour discovery (router/neighbour solicitation and advertisement),
/// IPv6 only; with hop limit 255 on the way in.
fn neighbour_discovery(c: &mut Builder, incoming: bool) {
    for ty in [
        Icmpv6Type::RouterSolicitation,
        Icmpv6Type::RouterAdvertisement,
        Icmpv6Type::NeighbourSolicitation,
        Icmpv6Type::NeighbourAdvertisement,
    ] {
        c.icmpv6(None, ty, incoming.then_some(255), Cause::NeighbourDiscovery);
    }
}

/// What RFC 4890 (section 4.4.1) says an IPv6 host must accept besides
/// neighbour discovery, errors and echo (related and `icmp` decide those),
/// each only as it arrives from the link itself, plus DHCPv6 replies from a
/// link-local server. On output (`incoming` false: only when the output
/// policy blocks) the same messages leave, and DHCPv6 requests to the link's
/// servers instead of the replies.
fn link_local_services(c: &mut Builder, incoming: bool) {
    use Icmpv6Type as T;
    let link_local = Net::IPV6_LINK_LOCAL;
    // Inverse neighbour discovery, SEND certificate path: hop limit 255.
    for (ty, cause) in [
        (T::InverseNdSolicitation, Cause::InverseNeighbourDiscovery),
        (T::InverseNdAdvertisement, Cause::InverseNeighbourDiscovery),
        (T::CertPathSolicitation, Cause::SendCertificatePath),
        (T::CertPathAdvertisement, Cause::SendCertificatePath),
    ] {
        c.icmpv6(None, ty, Some(255), cause);
    }
    // Multicast listener discovery (query, report, done, v2 report) from a
    // link-local address; a report may come from `::` before the sender has
    // one (RFC 3590). Multicast router discovery likewise. Hop limit 1.
    let mld = || Cause::MulticastListenerDiscovery;
    let mrd = || Cause::MulticastRouterDiscovery;
    for (src, ty, cause) in [
        (link_local, T::MldQuery, mld()),
        (link_local, T::MldReport, mld()),
        (link_local, T::MldDone, mld()),
        (link_local, T::Mldv2Report, mld()),
        (Net::IPV6_UNSPECIFIED, T::MldReport, mld()),
        (Net::IPV6_UNSPECIFIED, T::Mldv2Report, mld()),
        (link_local, T::MrdAdvertisement, mrd()),
        (link_local, T::MrdSolicitation, mrd()),
        (link_local, T::MrdTermination, mrd()),
    ] {
        c.icmpv6(Some(src), ty, Some(1), cause);
    }
    // DHCPv6: a server (or relay) answers the client's link-local address
    // from its own, port 547 to 546; conntrack cannot pair that with the
    // multicast request (All_DHCP_Relay_Agents_and_Servers, ff02::1:2).
    let (dst, sport, dport, cause) = if incoming {
        (link_local, 547, 546, Cause::Dhcpv6Replies)
    } else {
        (Net::IPV6_ALL_DHCP_SERVERS, 546, 547, Cause::Dhcpv6Requests)
    };
    c.push(
        Some(Family::V6),
        Matches {
            src: Some(NetSet::single(link_local)),
            dst: Some(NetSet::single(dst)),
            proto: Some(L4::Udp(PortMatch {
                sport: Port::new(sport),
                dport: Port::new(dport).map(PortSet::single),
            })),
            ..Matches::default()
        },
        Target::Accept,
        cause,
    );
}
