//! The rendered `iptables-save` rulesets, loaded for real into throwaway network
//! namespaces with `iptables-restore`/`ip6tables-restore`, then read back with
//! `iptables-save`.
//!
//! Kernel gate (`common::gate`): without root or without `ip`/`iptables-restore`,
//! each test prints why and returns; with `CI=true` it panics instead (a skipped
//! kernel test in CI is a defect). Every firewall command runs inside the test's
//! own namespace (`common::netns::Netns`, `ip netns exec fwt-<pid>-... ...`),
//! never in the caller's, and the namespace is deleted by its drop guard, even
//! when the test panics.
//!
//! Test policies use only documentation addresses (198.51.100.0/24,
//! 203.0.113.0/24, 2001:db8::/32).

mod common;

use common::kernel_tests_available;
use common::netns::Netns;
use common::save::{table_rules, Family};
use firewall::Policy;

/// Loads both rulesets of `policy` into a fresh namespace and returns what
/// `iptables-save`/`ip6tables-save` print afterwards (normalised: no
/// comments, no counters; `common::save`).
fn load(test: &str, policy: &Policy) -> Option<(String, String)> {
    if !kernel_tests_available(test) {
        return None;
    }
    let ns = Netns::new(test);
    ns.restore(Family::V4, policy.iptables_restore());
    ns.restore(Family::V6, policy.ip6tables_restore());
    Some((ns.save(Family::V4), ns.save(Family::V6)))
}

#[track_caller]
fn assert_has(saved: &str, needles: &[&str]) {
    for n in needles {
        assert!(
            saved.lines().any(|l| l.contains(n)),
            "no rule containing {n:?} in:\n{saved}"
        );
    }
}

#[track_caller]
fn assert_lacks(saved: &str, needles: &[&str]) {
    for n in needles {
        assert!(!saved.contains(n), "unexpected {n:?} in:\n{saved}");
    }
}

/// Every rule line of the rendered text reached the kernel (none lost or merged).
#[track_caller]
fn assert_same_rule_count(rendered: &str, saved: &str) {
    let count = |s: &str| s.lines().filter(|l| l.starts_with("-A ")).count();
    assert_eq!(count(rendered), count(saved), "saved:\n{saved}");
}

// ---------------------------------------------------------------- policies

/// Parses a test policy; a policy that does not parse is a broken test.
fn parse(text: &str) -> Policy {
    match Policy::parse(text) {
        Ok(p) => p,
        Err(d) => panic!("the test policy does not parse:\n{text}\n{d}"),
    }
}

/// DSL.md section 1 (DNAT target moved to a documentation address) plus `redirect 26 -> 25;`.
const GATEWAY: &str = "extif eth0;
open tcp 22, 80;
icmp accept;
masquerade;
dnat 221 -> 203.0.113.2:22;
redirect 26 -> 25;
";

/// Every statement a router can have at once (`forward drop;` cannot: see [`TRUST`]).
const EVERYTHING: &str = r#"
extif eth0, "ppp+";
trust eth1, "br-lan";
policy input reject;
policy forward reject;
policy output drop;
open tcp 22, 443, 8000..=8080;
open udp 51820 from 198.51.100.0/24, "2001:db8::/32";
icmp drop;
masquerade;
dnat udp 5353 -> 203.0.113.2;
redirect 2222 -> 22;
block out tcp 25, 6660..=6669;
ssh 22;
failsafe 10s;
log drops;
"#;

/// A host with `trust` and `forward drop`.
const TRUST: &str = "extif eth0; trust eth1; open tcp 22, 80; forward drop; icmp accept;";

/// Every chain policy `reject`.
const REJECT: &str = "extif eth0; open tcp 22, 80;
policy input reject; policy output reject; policy forward reject;";

/// A plain host.
const HOST: &str = "extif eth0; open tcp 22, 80;";

/// 1,000 single ports (20000..=20999, written one by one) from one net per family.
fn thousand_ports() -> String {
    let ports: Vec<String> = (20000..21000).map(|n: u16| n.to_string()).collect();
    format!(
        "extif eth0; ssh none;\nopen tcp {} from 198.51.100.0/24, \"2001:db8::/32\";\n",
        ports.join(", ")
    )
}

// ---------------------------------------------------------------- tests

#[test]
fn gateway_loads_with_nat() {
    let p = parse(GATEWAY);
    let Some((v4, v6)) = load("gateway", &p) else {
        return;
    };
    assert_same_rule_count(p.iptables_restore(), &v4);
    assert_same_rule_count(p.ip6tables_restore(), &v6);
    assert_has(
        &v4,
        &[
            ":INPUT DROP",
            ":FORWARD DROP",
            ":OUTPUT ACCEPT",
            ":fw-ext-in -",
            "-A fw-input -m conntrack --ctstate RELATED,ESTABLISHED",
            "-A fw-input -i eth0 -m comment --comment \"extif eth0\" -g fw-ext-in",
            "--dports 22,80",
            "\"open tcp 22, 80\"",
            "-A fw-ext-in -p icmp",
            "--ctorigdstport 26",
            "--ctorigdstport 221",
            "-j DNAT --to-destination 203.0.113.2:22",
            "-j REDIRECT --to-ports 25",
            "-A fw-postrouting -o eth0 -m comment --comment masquerade -j MASQUERADE",
        ],
    );
    // Port 25 is reachable only through the redirect.
    let ext_in: Vec<&str> = table_rules(&v4, "filter")
        .into_iter()
        .filter(|l| l.starts_with("-A fw-ext-in") && l.contains("--dport 25 "))
        .collect();
    assert_eq!(ext_in.len(), 1, "{ext_in:?}");
    assert!(ext_in[0].contains("--ctstate DNAT"));
    // IPv6: same ports, neighbour discovery, ping, no NAT.
    assert_has(
        &v6,
        &[
            "--dports 22,80",
            "--icmpv6-type 135",
            "--hl-eq 255",
            "--icmpv6-type 128",
        ],
    );
    assert!(table_rules(&v6, "nat").is_empty(), "{v6}");
    assert_lacks(&v6, &["MASQUERADE", "DNAT --to", "ctorigdstport"]);
}

#[test]
fn every_statement_loads() {
    let p = parse(EVERYTHING);
    let Some((v4, v6)) = load("every", &p) else {
        return;
    };
    assert_same_rule_count(p.iptables_restore(), &v4);
    assert_same_rule_count(p.ip6tables_restore(), &v6);
    assert_has(
        &v4,
        &[
            ":INPUT DROP",
            ":FORWARD DROP",
            ":OUTPUT DROP",
            "-A fw-input -i ppp+ ",
            "-A fw-input -i br-lan ",
            "--dports 22,443,8000:8080",
            "-A fw-ext-in -s 198.51.100.0/24 -p udp -m udp --dport 51820",
            "--ctorigdstport 2222",
            "-A fw-ext-fwd -d 203.0.113.2/32 -p udp -m udp --dport 5353",
            "-j DNAT --to-destination 203.0.113.2:5353",
            "-A fw-forward -o ppp+ -p tcp -m multiport --dports 25,6660:6669",
            "-A fw-ext-out -p tcp -m multiport --dports 25,6660:6669",
            "-j LOG --log-prefix \"firewall drop: \"",
            "--reject-with tcp-reset",
            "--reject-with icmp-port-unreachable",
            "-A fw-output -o lo ",
            "-A fw-postrouting -o ppp+ ",
        ],
    );
    assert_has(
        &v6,
        &[
            "-A fw-ext-in -s 2001:db8::/32 -p udp -m udp --dport 51820",
            "--reject-with icmp6-port-unreachable",
            "-A fw-output -p ipv6-icmp -m icmp6 --icmpv6-type 136",
        ],
    );
    assert_lacks(
        &v6,
        &[
            "-s 198.51.100.0/24",
            "ctorigdstport",
            "-A fw-forward -i eth1",
        ],
    );
    // icmp drop under `policy input reject`: ICMP is dropped before the
    // rejects (no "port unreachable" for a ping), never accepted.
    for saved in [&v4, &v6] {
        let ext_in: Vec<&str> = table_rules(saved, "filter")
            .into_iter()
            .filter(|l| l.starts_with("-A fw-ext-in "))
            .collect();
        let n = ext_in.len();
        assert!(
            ext_in[n - 3].contains("-m comment --comment \"icmp drop\" -j DROP")
                && ext_in[n - 3].contains("icmp"),
            "{ext_in:#?}"
        );
    }
    assert_lacks(
        &v4,
        &["-A fw-ext-in -p icmp -m comment --comment \"icmp accept\""],
    );
}

#[test]
fn host_with_trust_and_forward_drop_loads() {
    let p = parse(TRUST);
    let Some((v4, v6)) = load("trust", &p) else {
        return;
    };
    assert_same_rule_count(p.iptables_restore(), &v4);
    assert_same_rule_count(p.ip6tables_restore(), &v6);
    assert_has(
        &v4,
        &[
            "-A fw-input -i eth1 -m comment --comment \"trust eth1\" -j ACCEPT",
            "-A fw-ext-fwd -m comment --comment \"forward drop\" -j DROP",
        ],
    );
    assert_lacks(&v4, &["not external is trusted", "-A fw-forward -i eth1"]);
    assert!(table_rules(&v4, "nat").is_empty());
}

#[test]
fn reject_policies_load() {
    let p = parse(REJECT);
    let Some((v4, v6)) = load("reject", &p) else {
        return;
    };
    for (saved, unreachable) in [
        (&v4, "icmp-port-unreachable"),
        (&v6, "icmp6-port-unreachable"),
    ] {
        for chain in [
            "fw-ext-in",
            "fw-ext-fwd",
            "fw-ext-out",
            "fw-forward",
            "fw-output",
        ] {
            let rules: Vec<&str> = table_rules(saved, "filter")
                .into_iter()
                .filter(|l| l.starts_with(&format!("-A {chain} ")))
                .collect();
            let last = rules.last().copied().unwrap_or_default();
            assert!(
                last.ends_with(&format!("-j REJECT --reject-with {unreachable}")),
                "{chain} does not end in a reject: {rules:#?}"
            );
        }
        assert!(saved.contains(":INPUT DROP") && saved.contains(":OUTPUT DROP"));
    }
}

#[test]
fn thousand_ports_from_nets_load() {
    let p = parse(&thousand_ports());
    let Some((v4, v6)) = load("ports", &p) else {
        return;
    };
    for saved in [&v4, &v6] {
        let ext_in: Vec<&str> = table_rules(saved, "filter")
            .into_iter()
            .filter(|l| l.starts_with("-A fw-ext-in ") && l.contains("-p tcp"))
            .collect();
        assert!(ext_in.len() <= 70, "{} rules", ext_in.len());
        let mut seen: Vec<u16> = Vec::new();
        for r in &ext_in {
            let list = r
                .split("--dports ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            let n: Vec<u16> = list.split(',').map(|x| x.parse().unwrap()).collect();
            assert!(n.len() <= 15);
            seen.extend(n);
        }
        assert_eq!(seen, (20000..21000).collect::<Vec<u16>>());
    }
    assert!(v4.contains("-A fw-ext-in -s 198.51.100.0/24 -p tcp -m multiport --dports 20000,"));
    assert!(v6.contains("-A fw-ext-in -s 2001:db8::/32 -p tcp -m multiport --dports 20000,"));
}

#[test]
fn reapplying_replaces_rules_and_clears_stale_nat() {
    if !kernel_tests_available("reapply") {
        return;
    }
    let ns = Netns::new("reapply");
    let g = parse(GATEWAY);
    ns.restore(Family::V4, g.iptables_restore());
    ns.restore(Family::V4, g.iptables_restore());
    let twice = ns.save(Family::V4);
    assert_same_rule_count(g.iptables_restore(), &twice);
    // Now a plain host: its text has no `*nat` (a policy without NAT touches
    // no nat table, DSL.md section 6), so a plain restore replaces the filter
    // table and leaves nat as it is; apply() and the script delete the
    // gateway's own nat chains (tests/apply.rs, tests/share.rs).
    let h = parse(HOST);
    assert!(!h.iptables_restore().contains("*nat"));
    ns.restore(Family::V4, h.iptables_restore());
    ns.restore(Family::V6, h.ip6tables_restore());
    let v4 = ns.save(Family::V4);
    let filter = |text: &str| {
        let mut only = String::new();
        for l in table_rules(text, "filter") {
            only.push_str(l);
            only.push('\n');
        }
        only
    };
    assert_same_rule_count(&filter(h.iptables_restore()), &filter(&v4));
    assert_lacks(&filter(&v4), &["DNAT", "REDIRECT"]);
    assert!(v4.contains("-j MASQUERADE"), "{v4}");
}

#[test]
fn failing_line_maps_back_to_its_statement() {
    if !kernel_tests_available("lineno") {
        return;
    }
    let ns = Netns::new("lineno");
    let p = parse(GATEWAY);
    // Break the rule of `open tcp 22, 80` the way a kernel without a module would
    // refuse it: an unknown match.
    let broken = p.iptables_restore().replace(
        "-m multiport --dports 22,80",
        "-m no-such-match-fwrs --dports 22,80",
    );
    assert_ne!(broken, p.iptables_restore());
    let out = ns.exec(&["iptables-restore", "-w", "--test"], Some(&broken));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // "line N failed" (legacy) or "Error occurred at line: N" (nf_tables).
    let line = line_number(&err).unwrap_or_else(|| panic!("no line number in {err:?}"));
    // The printer's map of the text (the edit kept every line in place).
    let map = p
        .texts()
        .ipv4
        .with_text(&broken)
        .expect("the same line structure");
    assert_eq!(
        map.origin_at(line).map(ToString::to_string).as_deref(),
        Some("open tcp 22, 80"),
        "iptables-restore said: {err}"
    );
    // Nothing was loaded by --test.
    assert!(table_rules(&ns.save(Family::V4), "filter").is_empty());
}

/// The first number after "line" in an iptables-restore error.
fn line_number(err: &str) -> Option<usize> {
    let lower = err.to_lowercase();
    let at = lower.find("line")?;
    lower[at..]
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}
