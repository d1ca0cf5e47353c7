//! The classifier on plans of real policies, and `assert` diagnostics.

use super::{Class, Classifier, DecidedBy, Outcome, Proto, Verdict};
use crate::compile::{compile_str, test_model};
use crate::diagnostic::Code;
use crate::model::{Iface, Port};
use crate::plan::{
    self, BasePolicy, Chain, ChainKind, CtState, CtStates, Family, Hook, Matches, Origin, Plan,
    PortMatch, PortSet, RateLimit, Rule, Table, TableKind, Target, UserChain, L4,
};

fn plan_of(text: &str) -> Plan {
    plan::lower(&test_model(text))
}

/// Dport intervals, verdict, origin text.
type Part = (Vec<(u128, u128)>, Verdict, String);

/// Every part as a [`Part`], sorted by port.
fn parts(outcomes: &[Outcome]) -> Vec<Part> {
    let mut v: Vec<_> = outcomes
        .iter()
        .map(|o| {
            let by = match o.by {
                DecidedBy::Rule(r) => r.origin.to_string(),
                DecidedBy::Policy(h) => format!("policy {h:?}"),
            };
            (o.class.original_dport().intervals().to_vec(), o.verdict, by)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn port_intervals_are_split_at_the_rules() {
    let plan = plan_of("extif eth0; open tcp 22, 80, 8000..=8080;");
    let c = Classifier::new(&plan, "lan0");
    for family in [Family::V4, Family::V6] {
        let out = c.classify(Class::incoming(family, "eth0", Proto::Tcp));
        assert_eq!(
            parts(&out),
            vec![
                (
                    vec![(1, 21), (23, 79), (81, 7999), (8081, 65535)],
                    Verdict::Drop,
                    "policy Input".to_string()
                ),
                (
                    vec![(22, 22), (80, 80), (8000, 8080)],
                    Verdict::Accept,
                    "open tcp 22, 80, 8000..=8080".to_string()
                ),
            ],
            "{family:?}"
        );
    }
    // UDP meets nothing of it.
    let out = c.classify(Class::incoming(Family::V4, "eth0", Proto::Udp));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].verdict, Verdict::Drop);
}

#[test]
fn sources_are_split_and_trusted_interfaces_accept() {
    let plan = plan_of("extif eth0; open tcp 22 from 198.51.100.0/24;");
    let c = Classifier::new(&plan, "lan0");
    let out = c.classify(Class {
        dport: super::IntervalSet::range(22, 22),
        ..Class::incoming(Family::V4, "eth0", Proto::Tcp)
    });
    let accepted: Vec<_> = out
        .iter()
        .filter(|o| o.verdict == Verdict::Accept)
        .collect();
    assert_eq!(accepted.len(), 1);
    assert_eq!(
        accepted[0].class.src.intervals(),
        &[(0xc633_6400, 0xc633_64ff)]
    );
    // The rest of the address space is dropped, in parts that cover it.
    let dropped: u128 = out
        .iter()
        .filter(|o| o.verdict == Verdict::Drop)
        .flat_map(|o| o.class.src.intervals().iter().map(|(a, b)| b - a + 1))
        .sum();
    assert_eq!(dropped, (1u128 << 32) - 256);
    // IPv6: nobody.
    let out = c.classify(Class::incoming(Family::V6, "eth0", Proto::Tcp));
    assert!(out.iter().all(|o| o.verdict == Verdict::Drop));
    // Any other interface is trusted; loopback too.
    for iif in ["eth1", "lo"] {
        let out = c.classify(Class::incoming(Family::V4, iif, Proto::Tcp));
        assert!(out.iter().all(|o| o.verdict == Verdict::Accept), "{iif}");
    }
}

#[test]
fn established_is_accepted_and_invalid_dropped() {
    let plan = plan_of("extif eth0; ssh none;");
    let c = Classifier::new(&plan, "lan0");
    for (ct, verdict) in [
        (CtState::Established, Verdict::Accept),
        (CtState::Related, Verdict::Accept),
        (CtState::Invalid, Verdict::Drop),
        (CtState::New, Verdict::Drop),
    ] {
        let out = c.classify(Class {
            ct,
            ..Class::incoming(Family::V6, "eth0", Proto::Tcp)
        });
        assert!(out.iter().all(|o| o.verdict == verdict), "{ct:?}");
        // UDP: DHCPv6 replies are accepted before the invalid drop (the
        // plan's choice: conntrack cannot pair them), nothing else is.
        let out = c.classify(Class {
            ct,
            ..Class::incoming(Family::V6, "eth0", Proto::Udp)
        });
        for o in out.iter().filter(|o| o.verdict != verdict) {
            assert_eq!(o.class.dport.intervals(), &[(546, 546)], "{ct:?}");
            assert_eq!(o.class.sport.intervals(), &[(547, 547)], "{ct:?}");
        }
    }
}

#[test]
fn dnat_is_forwarded_and_redirect_accepts_only_the_translated_port() {
    let plan = plan_of(
        "extif eth0; trust eth1; open tcp 22; masquerade; dnat 221 -> 192.168.125.22:22; redirect 26 -> 25;",
    );
    let c = Classifier::new(&plan, "eth1");
    let out = c.classify(Class::incoming(Family::V4, "eth0", Proto::Tcp));
    let accepted: Vec<_> = out
        .iter()
        .filter(|o| o.verdict == Verdict::Accept)
        .collect();
    let mut by: Vec<(u128, bool, u128, String)> = accepted
        .iter()
        .map(|o| {
            (
                o.class.original_dport().intervals()[0].0,
                o.class.local,
                o.class.dport.intervals()[0].0,
                o.nat.map(|r| r.origin.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    by.sort();
    assert_eq!(
        by,
        vec![
            (22, true, 22, String::new()),
            (26, true, 25, "redirect 26 -> 25".to_string()),
            (221, false, 22, "dnat 221 -> 192.168.125.22:22".to_string()),
        ]
    );
    let fwd = accepted.iter().find(|o| !o.class.local).unwrap();
    assert_eq!(fwd.class.dst.single(), Some(0xc0a8_7d16));
    // Port 25 itself stays closed, and IPv6 has no NAT.
    assert!(out
        .iter()
        .filter(|o| o.class.dnat_from.is_none() && o.class.dport.contains(25))
        .all(|o| o.verdict == Verdict::Drop));
    let out = c.classify(Class::incoming(Family::V6, "eth0", Proto::Tcp));
    let accepted: Vec<_> = out
        .iter()
        .filter(|o| o.verdict == Verdict::Accept)
        .collect();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].class.dport.intervals(), &[(22, 22)]);
    // An established packet skips NAT: not translated, and accepted anyway.
    let out = c.classify(Class {
        ct: CtState::Established,
        ..Class::incoming(Family::V4, "eth0", Proto::Tcp)
    });
    assert!(out
        .iter()
        .all(|o| o.nat.is_none() && o.verdict == Verdict::Accept));
}

#[test]
fn block_out_and_output_policy() {
    let plan = plan_of("extif eth0; open tcp 22; block out tcp 25, 465;");
    let c = Classifier::new(&plan, "lan0");
    let out = c.classify(Class::outgoing(Family::V6, "eth0", Proto::Tcp));
    assert_eq!(
        parts(&out),
        vec![
            (
                vec![(1, 24), (26, 464), (466, 65535)],
                Verdict::Accept,
                "policy Output".to_string()
            ),
            (
                vec![(25, 25), (465, 465)],
                Verdict::Drop,
                "block out tcp 25, 465".to_string()
            ),
        ]
    );
}

/// A plan written by hand: jump returns, goto does not, a rate-limited
/// accept accepts, a log goes on.
#[test]
fn jump_goto_return_log_and_limit() {
    let rule = |matches: Matches, target: Target| Rule {
        family: None,
        matches,
        target,
        origin: Origin::Derived(plan::Cause::Loopback),
    };
    let dport = |a: u16, b: u16| Matches {
        proto: Some(L4::Tcp(PortMatch {
            sport: None,
            dport: PortSet::new(&[crate::model::PortRange::new(
                Port::new(a).unwrap(),
                Port::new(b).unwrap(),
            )
            .unwrap()]),
        })),
        ..Matches::default()
    };
    let limited = RateLimit {
        per_minute: 4,
        burst: 4,
    };
    let filter = Table {
        kind: TableKind::Filter,
        chains: vec![
            Chain {
                kind: ChainKind::BuiltIn {
                    hook: Hook::Input,
                    policy: BasePolicy::Accept,
                },
                rules: vec![
                    rule(Matches::default(), Target::Log { prefix: "x" }),
                    // 1..=100: jump, and what ext-in leaves comes back here.
                    rule(dport(1, 100), Target::Jump(UserChain::ExtIn)),
                    // 101..=200: goto: what ext-in leaves gets the policy (accept).
                    rule(dport(101, 200), Target::Goto(UserChain::ExtIn)),
                    rule(Matches::default(), Target::Drop),
                ],
            },
            Chain {
                kind: ChainKind::User(UserChain::ExtIn),
                rules: vec![
                    rule(
                        Matches {
                            limit: Some(limited),
                            ..dport(10, 10)
                        },
                        Target::Accept,
                    ),
                    rule(dport(20, 20), Target::Reject(plan::RejectWith::TcpReset)),
                    rule(
                        Matches {
                            iif: Some(Iface::new("eth+").unwrap()),
                            ct_state: Some(CtStates::of(&[CtState::New])),
                            ..dport(150, 150)
                        },
                        Target::Drop,
                    ),
                ],
            },
        ],
    };
    let plan = Plan {
        filter,
        nat: Table {
            kind: TableKind::Nat,
            chains: vec![],
        },
    };
    let c = Classifier::new(&plan, "lan0");
    let out = c.classify(Class::incoming(Family::V4, "eth7", Proto::Tcp));
    let p: Vec<_> = parts(&out).into_iter().map(|(i, v, _)| (i, v)).collect();
    assert_eq!(
        p,
        vec![
            (vec![(1, 9), (11, 19), (21, 100)], Verdict::Drop),
            (vec![(10, 10)], Verdict::Accept),
            (vec![(20, 20)], Verdict::Reject),
            (vec![(101, 149), (151, 200)], Verdict::Accept),
            (vec![(150, 150)], Verdict::Drop),
            (vec![(201, 65535)], Verdict::Drop),
        ]
    );
}

#[test]
fn the_whole_port_space_is_a_few_parts() {
    let plan = plan_of("extif eth0; open tcp 22, 80;");
    let c = Classifier::new(&plan, "lan0");
    let t = std::time::Instant::now();
    let out = c.classify(Class {
        dport: super::IntervalSet::of([(1, 21), (23, 79), (81, 65535)]),
        ..Class::incoming(Family::V4, "eth0", Proto::Tcp)
    });
    assert!(out.len() <= 4, "{}", out.len());
    assert!(out.iter().all(|o| o.verdict == Verdict::Drop));
    let _ = t; // speed is the bench's business (benches/compile.rs)
}

/// The `assert` diagnostics of `text`: (code, message, note).
fn asserts(text: &str) -> Vec<(Code, String, Option<String>)> {
    match compile_str(text) {
        Ok(_) => Vec::new(),
        Err(ds) => ds
            .iter()
            .map(|d| {
                let l = d.located();
                (
                    d.code,
                    d.message.clone(),
                    l.note.map(|n| format!("{}: {}", n.start, n.message)),
                )
            })
            .collect(),
    }
}

#[test]
fn assertions_that_hold() {
    for ok in [
        "extif eth0; open tcp 22, 80; assert open tcp 22, 80; assert closed tcp 1..=21, 23..=79, 81..=65535;",
        "extif eth0; open tcp 22; open tcp 3306 from 10.0.0.0/8; assert closed tcp 3306 from 198.51.100.0/24, \"2001:db8::/32\"; assert open tcp 3306 from 10.1.2.3;",
        "extif eth0; open tcp 22; masquerade; dnat 221 -> 192.168.125.22:22; assert forwarded 221 -> 192.168.125.22:22; assert closed udp 221;",
        "extif eth0; open tcp 22; block out tcp 25; assert closed out tcp 25;",
        "extif eth0; open tcp 22; assert closed udp 1..=65535 from 0.0.0.0/0, \"2000::/3\";",
        "extif eth0; open tcp 22; redirect 2222 -> 22; assert open tcp 2222 from 0.0.0.0/0; assert closed tcp 2222 from \"::/0\";",
    ] {
        assert_eq!(asserts(ok), vec![], "{ok}");
    }
}

#[test]
fn assertions_that_fail_name_a_counterexample_and_the_deciding_statement() {
    let ds = asserts("extif eth0; open tcp 22, 3306; assert closed tcp 3306;");
    assert_eq!(ds.len(), 1, "{ds:?}");
    assert_eq!(ds[0].0, Code::Assert);
    assert_eq!(
        ds[0].1,
        "`assert closed tcp 3306` does not hold: tcp from 198.51.100.7 to port 3306 on eth0 is accepted (and over IPv6: from 2001:db8::7)"
    );
    assert_eq!(
        ds[0].2.as_deref(),
        Some("1:13: `open tcp 22, 3306` decides it")
    );

    let ds = asserts("extif eth0; open tcp 22; assert open tcp 22, 80;");
    assert_eq!(
        ds[0].1,
        "`assert open tcp 22, 80` does not hold: tcp from 198.51.100.7 to port 80 on eth0 is dropped by the default `policy input drop` (and over IPv6: from 2001:db8::7)"
    );
    assert_eq!(ds[0].2, None);

    let ds = asserts(
        "extif eth0; open tcp 22; policy input drop; assert open udp 53 from 203.0.113.0/24;",
    );
    assert!(
        ds[0]
            .1
            .contains("udp from 203.0.113.7 to port 53 on eth0 is dropped"),
        "{ds:?}"
    );
    assert_eq!(
        ds[0].2.as_deref(),
        Some("1:26: `policy input drop` decides it")
    );

    let ds = asserts("extif eth0; open tcp 22; masquerade; dnat 221 -> 192.168.125.22:22; assert forwarded 221 -> 192.168.125.23:22;");
    assert!(
        ds[0].1.contains(
            "tcp from 198.51.100.7 to port 221 on eth0 is forwarded to 192.168.125.22:22"
        ),
        "{ds:?}"
    );
    assert_eq!(
        ds[0].2.as_deref(),
        Some("1:38: `dnat 221 -> 192.168.125.22:22` decides it")
    );

    let ds = asserts(
        "extif eth0; open tcp 22; redirect 2222 -> 22; assert forwarded 2222 -> 192.168.125.23:22;",
    );
    assert!(
        ds[0]
            .1
            .contains("to port 2222 on eth0 is accepted by this host itself (port 22)"),
        "{ds:?}"
    );

    let ds = asserts("extif eth0; open tcp 22; assert closed out tcp 25;");
    assert_eq!(
        ds[0].1,
        "`assert closed out tcp 25` does not hold: this host's IPv4 tcp to port 25 out through eth0 is accepted by the default `policy output accept` (and over IPv6)"
    );
    // A redirect's target port stays closed, so `assert open` of it fails at the input tail.
    let ds =
        asserts("extif eth0; ssh 2222; redirect 2222 -> 22; assert open tcp 22 from 0.0.0.0/0;");
    assert!(ds[0].1.contains("to port 22 on eth0 is dropped"), "{ds:?}");
    // Every source port is asked: DHCPv6 replies (547 -> 546 from a
    // link-local server) are accepted, so udp 546 is not closed over IPv6.
    let ds = asserts("extif eth0; open tcp 22; assert closed udp 546;");
    assert!(
        ds[0].1.contains("udp from fe80::1 to port 546 on eth0 is accepted by the rule `default: DHCPv6 replies from a link-local server`"),
        "{ds:?}"
    );
    // A failing check stops the proofs: one mistake, one diagnostic.
    let ds = asserts("extif eth0; open tcp 80; assert open tcp 22;");
    assert_eq!(
        ds.iter().map(|d| d.0).collect::<Vec<_>>(),
        vec![Code::Lockout]
    );
}

#[test]
fn assertions_are_written_back_and_parse_again() {
    let text =
        "extif eth0; open tcp 22; block out tcp 25; masquerade; dnat udp 53 -> 192.168.1.2:5353; \
        assert open tcp 22 from 198.51.100.0/24, \"2001:db8::/32\"; assert closed udp 1..=52; \
        assert closed out tcp 25; assert forwarded udp 53 -> 192.168.1.2:5353 from 203.0.113.7;";
    let model = test_model(text);
    let source = crate::render::policy::text(&model);
    for line in [
        "assert open tcp 22 from 198.51.100.0/24, \"2001:db8::/32\";",
        "assert closed udp 1..=52;",
        "assert closed out tcp 25;",
        "assert forwarded udp 53 -> 192.168.1.2:5353 from 203.0.113.7/32;",
    ] {
        assert!(source.contains(line), "{line}\n{source}");
    }
    let kinds =
        |m: &crate::model::Model| m.asserts.iter().map(|a| a.kind.clone()).collect::<Vec<_>>();
    assert_eq!(kinds(&test_model(&source)), kinds(&model));
    // They render no rule.
    let without = test_model(
        "extif eth0; open tcp 22; block out tcp 25; masquerade; dnat udp 53 -> 192.168.1.2:5353;",
    );
    assert_eq!(plan::lower(&model), plan::lower(&without));
}

#[test]
fn explain_is_computed_from_the_rules() {
    let model = test_model(
        "extif eth0; trust eth1; open tcp 22, 80; open tcp 5432 from 198.51.100.0/24; icmp accept; \
         masquerade; dnat 221 -> 192.168.125.22:22; redirect 26 -> 25; block out tcp 25;",
    );
    let text = super::explain(&model, &plan::lower(&model));
    for line in [
        "IPv4, new connections in through eth0:",
        "  tcp 22, 80: accepted from anyone (open tcp 22, 80)",
        "  tcp 5432: accepted from 198.51.100.0/24 (open tcp 5432 from 198.51.100.0/24)",
        "  tcp 221: forwarded to 192.168.125.22:22 from anyone (dnat 221 -> 192.168.125.22:22)",
        "  tcp 26: accepted on port 25 from anyone (redirect 26 -> 25)",
        "  icmp echo request: accepted from anyone (icmp accept)",
        "IPv4, forwarded from the inside (eth1) out through eth0:",
        "  tcp 25: dropped (block out tcp 25)",
        "IPv6, new connections this host opens out through eth0:",
        "  tcp 1..=24, 26..=65535: accepted (policy output)",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }
    // IPv6 has no NAT: 221 and 26 are not accepted there.
    let v6 = &text[text.find("IPv6, new connections in").unwrap()..];
    assert!(!v6.contains("221") && !v6.contains("tcp 26"), "{v6}");
}

#[test]
#[ignore = "prints the explanation of the README's gateway"]
fn print_explain() {
    let model = test_model(
        "extif eth0; open tcp 22, 80; open tcp 5432 from 198.51.100.0/24; icmp accept; masquerade; dnat 221 -> 192.168.125.22:22; redirect 26 -> 25; block out tcp 25;",
    );
    print!("{}", super::explain(&model, &plan::lower(&model)));
}
