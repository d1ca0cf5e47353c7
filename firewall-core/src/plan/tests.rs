use super::*;
use crate::model::{Model, Proto, StmtId, Verdict};

fn policy(text: &str) -> Model {
    crate::compile::test_model(text)
}

/// Policies that between them use every statement.
fn policies() -> Vec<Model> {
    [
        "extif eth0; open tcp 22, 80;",
        "extif eth0; open tcp 22, 80; icmp accept; masquerade;
         dnat 221 -> 203.0.113.2:22; redirect 26 -> 25;",
        "extif eth0, \"ppp+\"; trust eth1, \"wg+\"; policy input reject; policy output drop;
         policy forward reject; open tcp 22 from 198.51.100.0/24, \"2001:db8::/32\";
         open udp 5000..=5100, 53; block out tcp 25, 6000..=6010; log drops; masquerade;
         dnat udp 5353 -> 203.0.113.9; ssh 22; failsafe 30s;",
        "extif eth0; policy forward accept; forward drop; open tcp 22; block out udp 9;",
        "extif eth0; policy input accept; policy output reject; ssh none;",
    ]
    .iter()
    .map(|t| policy(t))
    .collect()
}

fn user(chain: UserChain) -> ChainKind {
    ChainKind::User(chain)
}

fn all_rules(plan: &Plan) -> impl Iterator<Item = (TableKind, &Chain, &Rule)> {
    plan.tables()
        .into_iter()
        .flat_map(|t| t.chains.iter().map(move |c| (t.kind, c)))
        .flat_map(|(k, c)| c.rules.iter().map(move |r| (k, c, r)))
}

#[test]
fn layout() {
    let plan = lower(&policies()[2]);
    let kinds: Vec<ChainKind> = plan.filter.chains.iter().map(|c| c.kind).collect();
    let drop = BasePolicy::Drop;
    assert_eq!(
        kinds,
        vec![
            ChainKind::BuiltIn {
                hook: Hook::Input,
                policy: drop
            },
            user(UserChain::ExtIn),
            ChainKind::BuiltIn {
                hook: Hook::Forward,
                policy: drop
            },
            user(UserChain::ExtFwd),
            ChainKind::BuiltIn {
                hook: Hook::Output,
                policy: drop
            },
            user(UserChain::ExtOut),
        ]
    );
    let hooks: Vec<ChainKind> = plan.nat.chains.iter().map(|c| c.kind).collect();
    let accept = |hook| ChainKind::BuiltIn {
        hook,
        policy: BasePolicy::Accept,
    };
    assert_eq!(
        hooks,
        vec![
            accept(Hook::Prerouting),
            accept(Hook::Input),
            accept(Hook::Output),
            accept(Hook::Postrouting)
        ]
    );
}

#[test]
fn port_sets_are_whole() {
    let mut m = policies()[0].clone();
    m.opens[0].ports = (1000..2000)
        .rev()
        .map(|n| PortRange::single(Port::new(n).unwrap()))
        .collect();
    let plan = lower(&m);
    let ext_in = plan.filter.chain(user(UserChain::ExtIn)).unwrap();
    assert_eq!(ext_in.rules.len(), 1);
    let Some(L4::Tcp(PortMatch {
        dport: Some(set), ..
    })) = &ext_in.rules[0].matches.proto
    else {
        panic!("{:?}", ext_in.rules[0]);
    };
    // sorted, one set of 1000 entries
    let ports: Vec<u16> = set.ranges().iter().map(|r| r.start().get()).collect();
    assert_eq!(ports, (1000..2000).collect::<Vec<u16>>());
    // duplicates are gone
    let p = |n| PortRange::single(Port::new(n).unwrap());
    assert_eq!(
        PortSet::new(&[p(443), p(80), p(443)]).unwrap().ranges(),
        &[p(80), p(443)]
    );
    assert!(PortSet::new(&[]).is_none());
}

#[test]
fn families_are_consistent() {
    for m in policies() {
        let plan = lower(&m);
        for (table, chain, r) in all_rules(&plan) {
            for set in [&r.matches.src, &r.matches.dst].into_iter().flatten() {
                assert_eq!(r.family, Some(set.family()), "{r:?}");
            }
            if let Some(L4::Icmp(Some(IcmpType::V6(_)))) = r.matches.proto {
                assert_eq!(r.family, Some(Family::V6), "{r:?}");
            }
            if r.matches.hop_limit.is_some() || r.matches.ct_dnat_from.is_some() {
                assert!(r.family.is_some(), "{r:?}");
            }
            let nat_target = matches!(
                r.target,
                Target::Dnat { .. } | Target::Redirect { .. } | Target::Masquerade
            );
            assert_eq!(nat_target, table == TableKind::Nat, "{r:?}");
            if table == TableKind::Nat {
                assert_eq!(r.family, Some(Family::V4), "NAT is IPv4: {r:?}");
            }
            if let Target::Goto(_) | Target::Jump(_) = r.target {
                assert!(matches!(chain.kind, ChainKind::BuiltIn { .. }));
            }
        }
    }
}

#[test]
fn origins_name_their_statements() {
    for m in policies() {
        let plan = lower(&m);
        let mut texts: Vec<(StmtId, String)> = Vec::new();
        texts.extend(m.opens.iter().map(|o| (o.stmt, o.to_string())));
        texts.extend(m.dnats.iter().map(|o| (o.stmt, o.to_string())));
        texts.extend(m.redirects.iter().map(|o| (o.stmt, o.to_string())));
        texts.extend(m.block_out.iter().map(|o| (o.stmt, o.to_string())));
        for (_, _, r) in all_rules(&plan) {
            if let Origin::Statement { stmt, text } = &r.origin {
                assert!(texts.contains(&(*stmt, text.clone())), "{r:?}");
            }
        }
        // every statement that carries an index renders at least one rule
        for (stmt, text) in &texts {
            let rendered = all_rules(&plan).any(|(_, _, r)| r.origin.stmt() == Some(*stmt));
            let v6_only_nothing = m
                .opens
                .iter()
                .any(|o| o.stmt == *stmt && o.sources(true) == Some(vec![]));
            assert!(rendered || v6_only_nothing, "{text} renders nothing");
        }
    }
    assert_eq!(
        Origin::Derived(Cause::PolicyReject(crate::model::Chain::Input)).to_string(),
        "policy input reject"
    );
    assert_eq!(
        Origin::Derived(Cause::Trust(Iface::new("wg+").unwrap())).to_string(),
        "trust wg+"
    );
}

#[test]
fn block_out_is_new_only() {
    for m in policies() {
        for (_, _, r) in all_rules(&lower(&m)) {
            if r.origin.to_string().starts_with("block out") {
                assert_eq!(r.matches.ct_state, Some(CtStates::of(&[CtState::New])));
                assert_eq!(r.target, Target::Drop);
            }
        }
    }
}

#[test]
fn icmp_drop_precedes_rejects() {
    let m = &policies()[2];
    assert_eq!(m.input, Verdict::Reject);
    let plan = lower(m);
    for kind in [
        user(UserChain::ExtIn),
        ChainKind::BuiltIn {
            hook: Hook::Input,
            policy: BasePolicy::Drop,
        },
    ] {
        let rules = &plan.filter.chain(kind).unwrap().rules;
        let n = rules.len();
        assert_eq!(rules[n - 4].target, Target::Log { prefix: LOG_PREFIX });
        assert_eq!(rules[n - 3].matches.proto, Some(L4::Icmp(None)));
        assert_eq!(rules[n - 3].target, Target::Drop);
        assert_eq!(rules[n - 2].target, Target::Reject(RejectWith::TcpReset));
        assert_eq!(
            rules[n - 1].target,
            Target::Reject(RejectWith::PortUnreachable)
        );
    }
}

#[test]
fn forward_accept_drops_from_outside() {
    let m = policy("extif eth0; open tcp 22; policy forward accept; block out tcp 25;");
    let plan = lower(&m);
    let ext_fwd = plan.filter.chain(user(UserChain::ExtFwd)).unwrap();
    assert_eq!(
        ext_fwd.rules,
        vec![Rule {
            family: None,
            matches: Matches::default(),
            target: Target::Drop,
            origin: Origin::Derived(Cause::ForwardAcceptFromOutside),
        }]
    );
    // both families' forwarded connections meet block out
    let fwd = &plan.filter.chains[2];
    let block = fwd
        .rules
        .iter()
        .find(|r| r.origin.stmt().is_some())
        .unwrap();
    assert_eq!(block.family, None);
    assert_eq!(
        block.matches.proto,
        Some(L4::ports(
            Proto::Tcp,
            PortMatch {
                sport: None,
                dport: Some(PortSet::single(Port::new(25).unwrap()))
            }
        ))
    );
}

#[test]
fn ipv6_link_local_services_before_invalid() {
    let plan = lower(&policies()[0]);
    let input = &plan.filter.chains[0];
    let v6: Vec<&Rule> = input.rules_of(Family::V6).collect();
    let inv = v6
        .iter()
        .position(|r| r.origin == Origin::Derived(Cause::Invalid))
        .unwrap();
    // established, 4 ND, 4 hop-limit-255, 9 hop-limit-1, DHCPv6, then invalid
    assert_eq!(inv, 19);
    assert_eq!(input.rules_of(Family::V4).count() + 18, v6.len());
}
