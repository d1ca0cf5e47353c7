//! Self-test of the namespace harness in `tests/common`, without the project:
//! the topology itself, listeners, a hand-written ruleset that closes a port
//! (with iptables-restore and with nft), hand-written reference rulesets that
//! prove the section 5 matrix and the "forwards nothing" check can pass and
//! can fail, and the harness's single pieces: the skip gate, the namespace
//! guard, the bounded command runner and the iptables-save reader.

mod common;

use common::command;
use common::gate::{self, Need};
use common::netns::Netns;
use common::save::{self, Counters, Family, Tools};
use common::{addr, Ns, Topology};
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn netns_list() -> String {
    let out = command::run(&["ip", "netns", "list"], None, 10);
    assert!(
        out.status.success(),
        "{}",
        command::describe("ip netns list", &out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn topology_without_firewall_reaches_everything_it_routes() {
    if !common::kernel_tests_available("topology_without_firewall_reaches_everything_it_routes") {
        return;
    }
    let t = Topology::new("selftest_open");
    let _fw22 = t.listen_tcp(Ns::Firewall, 22);
    let _fw25 = t.listen_tcp(Ns::Firewall, 25);
    let _in22 = t.listen_tcp(Ns::Inside, 22);
    let out = t.listen_tcp(Ns::Outside, common::OUTSIDE_SERVICE_PORT);

    assert!(
        !t.ip_forward(),
        "a fresh firewall namespace must not forward"
    );
    for a in [addr::FW_EXT_V4, addr::FW_EXT_V6] {
        assert!(t.ping(Ns::Outside, a), "outside cannot ping {a}");
        for p in [22, 25] {
            assert!(t.tcp_connects(Ns::Outside, a, p), "outside -> {a}:{p}");
            assert_eq!(
                t.tcp_banner(Ns::Outside, a, p).as_deref(),
                Some(format!("firewall:{p}").as_str()),
                "banner of {a}:{p}"
            );
        }
    }
    for a in [addr::FW_INT_V4, addr::FW_INT_V6] {
        assert!(t.tcp_connects(Ns::Inside, a, 25), "inside -> {a}:25");
    }
    // The firewall reaches both sides directly.
    assert_eq!(
        t.tcp_banner(Ns::Firewall, addr::INSIDE_V4, 22).as_deref(),
        Some("inside:22")
    );
    assert_eq!(
        t.tcp_banner(Ns::Firewall, addr::OUTSIDE_V6, common::OUTSIDE_SERVICE_PORT)
            .as_deref(),
        Some("outside:8000")
    );
    // The listener sees the source address.
    let peers = out.wait_for_peers(1, Duration::from_secs(3));
    assert_eq!(
        peers,
        vec![addr::FW_EXT_V6.parse::<IpAddr>().unwrap()],
        "source address seen outside"
    );
    // Nothing crosses without forwarding/NAT: outside has no route inward,
    // and the firewall does not forward.
    assert!(!t.tcp_connects(Ns::Outside, addr::INSIDE_V4, 22));
    assert!(!t.tcp_connects(Ns::Inside, addr::OUTSIDE_V4, 8000));
    assert!(!t.ping(Ns::Inside, addr::OUTSIDE_V4));
}

#[test]
fn hand_written_rules_close_one_port() {
    if !common::kernel_tests_available("hand_written_rules_close_one_port") {
        return;
    }
    let t = Topology::new("selftest_drop25");
    let _fw22 = t.listen_tcp(Ns::Firewall, 22);
    let _fw25 = t.listen_tcp(Ns::Firewall, 25);
    let empty = t.ruleset(Ns::Firewall);
    let rules = "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i eth0 -p tcp -m tcp --dport 25 -j DROP
COMMIT
";
    t.load_rules(rules, rules);
    for a in [addr::FW_EXT_V4, addr::FW_EXT_V6] {
        assert!(t.tcp_connects(Ns::Outside, a, 22), "{a}:22 must stay open");
        assert!(
            !t.tcp_connects(Ns::Outside, a, 25),
            "{a}:25 must be dropped"
        );
    }
    // The trusted side is not affected (-i eth0).
    assert!(t.tcp_connects(Ns::Inside, addr::FW_INT_V4, 25));

    let set = t.ruleset(Ns::Firewall);
    assert_ne!(set, empty);
    assert_eq!(
        set.matches("-A INPUT -i eth0 -p tcp -m tcp --dport 25 -j DROP")
            .count(),
        2,
        "one rule per family:\n{set}"
    );
    assert!(!set.contains('#') && !set.contains("[0:0]"), "{set}");
    assert!(set.contains(":INPUT ACCEPT\n"), "{set}");
    // Loading the same text again gives the same normalised ruleset.
    t.load_rules(rules, rules);
    assert_eq!(t.ruleset(Ns::Firewall), set);
    // The root namespace is never touched: our rule is not there.
    let root = command::run(&["iptables-save"], None, 10);
    assert!(!String::from_utf8_lossy(&root.stdout).contains("--dport 25 -j DROP"));
    // A ruleset the kernel refuses is reported, not ignored.
    assert!(t
        .try_load_rules("*filter\n-A NOPE -j DROP\nCOMMIT\n", "")
        .is_err());
}

#[test]
fn listeners_and_namespaces_are_cleaned_up() {
    if !common::kernel_tests_available("listeners_and_namespaces_are_cleaned_up") {
        return;
    }
    let names: Vec<String>;
    {
        let t = Topology::new("selftest_cleanup");
        names = [Ns::Outside, Ns::Firewall, Ns::Inside]
            .iter()
            .map(|&ns| t.name(ns).to_owned())
            .collect();
        let list = netns_list();
        for n in &names {
            assert!(list.contains(n.as_str()), "{n} missing from {list}");
        }
        {
            let _l = t.listen_tcp(Ns::Firewall, 4242);
            assert!(t.tcp_connects(Ns::Outside, addr::FW_EXT_V4, 4242));
        }
        // Dropped: the port is closed again (refused, so this is quick).
        assert!(common::eventually(10, || !t.tcp_connects(
            Ns::Outside,
            addr::FW_EXT_V4,
            4242
        )));
        // Panicking inside a test still drops the topology.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let t2 = Topology::new("selftest_panic");
            let n = t2.name(Ns::Firewall).to_owned();
            panic!("{n}");
        }));
        let n = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(!netns_list().contains(n.as_str()), "{n} left behind");
    }
    let list = netns_list();
    for n in &names {
        assert!(!list.contains(n.as_str()), "{n} left behind: {list}");
    }
}

/// The section 5 policy written by hand after the howto: proves the matrix's
/// expectations hold for a correct ruleset.
const REFERENCE_V4: &str = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i eth0 -p tcp -m tcp --dport 221 -j DNAT --to-destination 203.0.113.2:22
-A PREROUTING -i eth0 -p tcp -m tcp --dport 26 -j REDIRECT --to-ports 25
-A POSTROUTING -o eth0 -j MASQUERADE
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT ! -i eth0 -j ACCEPT
-A INPUT -i eth0 -p tcp -m multiport --dports 22,80 -j ACCEPT
-A INPUT -i eth0 -p tcp -m tcp --dport 25 -m conntrack --ctstate DNAT --ctorigdstport 26 -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD ! -i eth0 -o eth0 -j ACCEPT
-A FORWARD -i eth0 -d 203.0.113.2/32 -p tcp -m tcp --dport 22 -m conntrack --ctstate DNAT -j ACCEPT
COMMIT
";

const REFERENCE_V6: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT ! -i eth0 -j ACCEPT
-A INPUT -p ipv6-icmp -j ACCEPT
-A INPUT -i eth0 -p tcp -m multiport --dports 22,80 -j ACCEPT
COMMIT
";

#[test]
fn section5_matrix_passes_on_a_hand_written_reference() {
    if !common::kernel_tests_available("section5_matrix_passes_on_a_hand_written_reference") {
        return;
    }
    let t = Topology::new("selftest_ref5");
    t.load_rules(REFERENCE_V4, REFERENCE_V6);
    t.set_ip_forward(true);
    common::assert_section5_matrix(&t);
}

#[test]
fn section5_matrix_fails_on_an_open_firewall() {
    if !common::kernel_tests_available("section5_matrix_fails_on_an_open_firewall") {
        return;
    }
    let t = Topology::new("selftest_open5");
    t.set_ip_forward(true);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::assert_section5_matrix(&t)
    }));
    let msg = match r {
        Ok(()) => panic!("the matrix passed on a host without any firewall"),
        Err(e) => e
            .downcast::<String>()
            .map(|s| *s)
            .unwrap_or_else(|_| "?".into()),
    };
    for expected in [
        ":221 should reach inside:22",
        ":26 should reach firewall:25",
        "port 25 must be closed",
        "2001:db8:1::1 port 443 must be closed",
        "should arrive outside from 198.51.100.1",
    ] {
        assert!(msg.contains(expected), "missing {expected:?} in:\n{msg}");
    }
}

const NON_ROUTER_V4: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT ! -i eth0 -j ACCEPT
-A INPUT -i eth0 -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
";

#[test]
fn forwards_nothing_check_passes_and_fails() {
    if !common::kernel_tests_available("forwards_nothing_check_passes_and_fails") {
        return;
    }
    // Without rules, forwarding on and a route back: traffic does cross, so
    // the check must fail.
    let open = Topology::new("selftest_fwd_open");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::assert_forwards_nothing(&open)
    }));
    let msg = *r
        .expect_err("an open router must fail the check")
        .downcast::<String>()
        .unwrap();
    for expected in [
        "inside -> 198.51.100.2:8000 was forwarded",
        "inside -> 2001:db8:1::2:8000 was forwarded",
        "outside -> 203.0.113.2:22 was forwarded",
        "outside -> 2001:db8:2::2:22 was forwarded",
    ] {
        assert!(msg.contains(expected), "missing {expected:?} in:\n{msg}");
    }
    drop(open);

    let t = Topology::new("selftest_fwd_ref");
    t.load_rules(NON_ROUTER_V4, NON_ROUTER_V4);
    common::assert_forwards_nothing(&t);
}

/// The inner half of `run_test_in_runs_a_test_inside_the_namespace`.
#[test]
#[ignore = "inner half of a namespace test; started by the outer test"]
fn inner_sees_the_firewall_namespace() {
    let Some(role) = common::inner_role() else {
        return;
    };
    assert_eq!(role, "firewall");
    let out = command::run(&["ip", "-o", "addr", "show", "dev", "eth1"], None, 10);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(addr::FW_INT_V4),
        "not in the firewall: {text}"
    );
    assert_ne!(
        std::env::var("FWT_SELFTEST_FAIL").as_deref(),
        Ok("1"),
        "asked to fail"
    );
    println!("INNER-OK");
}

#[test]
fn run_test_in_runs_a_test_inside_the_namespace() {
    if !common::kernel_tests_available("run_test_in_runs_a_test_inside_the_namespace") {
        return;
    }
    let t = Topology::new("selftest_inner");
    let ok = t.run_test_in(Ns::Firewall, "inner_sees_the_firewall_namespace", &[]);
    assert!(ok.status.success(), "{}", common::describe("inner", &ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("INNER-OK"));
    let bad = t.run_test_in(
        Ns::Firewall,
        "inner_sees_the_firewall_namespace",
        &[("FWT_SELFTEST_FAIL", "1")],
    );
    assert!(!bad.status.success(), "{}", common::describe("inner", &bad));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        t.run_test_in(Ns::Firewall, "no_such_test", &[])
    }));
    assert!(r.is_err(), "a test name that matches nothing must not pass");
}

// ---------------------------------------------------------------------------
// The single pieces of the harness
// ---------------------------------------------------------------------------

/// The one gate: outside CI a missing piece skips (returns false), under
/// `CI=true` it panics; what is missing is named.
#[test]
fn gate_skips_outside_ci_and_panics_in_ci() {
    assert_eq!(
        gate::decide("selftest", "a thing", false),
        "SKIPPED selftest: needs a thing"
    );
    let r = std::panic::catch_unwind(|| gate::decide("selftest", "a thing", true));
    let msg = *r
        .expect_err("under CI=true a missing piece must panic")
        .downcast::<String>()
        .expect("a message");
    assert!(
        msg.contains("selftest cannot run in CI: it needs a thing"),
        "{msg}"
    );
    let missing = gate::missing(Need::Tool("no-such-tool-fwt-selftest", "nothing"));
    assert_eq!(
        missing.as_deref(),
        Some("`no-such-tool-fwt-selftest` (Debian package nothing)")
    );
    assert_eq!(gate::missing(Need::Tool("bash", "bash")), None);
    // Everything needed is there, so `require` says yes (and never skips).
    assert!(gate::require("selftest", &[Need::Tool("bash", "bash")]));
}

/// The one runner: a command that overruns its bound is killed, and one that
/// does not read its input does not block the caller.
#[test]
fn command_runner_bounds_every_command() {
    let start = Instant::now();
    let out = command::run(&["sleep", "30"], None, 1);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(124), "timeout's exit status");
    let big = "x".repeat(1 << 20);
    let out = command::run(&["true"], Some(&big), 10);
    assert!(out.status.success());
    let out = command::run(&["cat"], Some("in\n"), 10);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in\n");
    assert!(command::try_run(&["no-such-tool-fwt-selftest"], None, 5)
        .is_ok_and(|o| !o.status.success()));
}

/// The one reader of iptables-save output: comments and blank lines go,
/// counters go or stay as asked (built-in chains' policy counters read
/// `[*]`), and rule counters can be read.
#[test]
fn iptables_save_reader_normalises_and_counts() {
    let dump = "# Generated by iptables-save v1.8.9 (nf_tables) on now
*filter
:INPUT DROP [12:3400]
:FORWARD ACCEPT [0:0]
:ext-in - [0:0]
[7:420] -A INPUT -i eth0 -g ext-in
[0:0] -A ext-in -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
# Completed on now

*nat
:POSTROUTING ACCEPT [1:60]
[3:180] -A POSTROUTING -o eth0 -j MASQUERADE
COMMIT
";
    assert_eq!(
        save::normalize(dump, Counters::Strip),
        "*filter\n:INPUT DROP\n:FORWARD ACCEPT\n:ext-in -\n-A INPUT -i eth0 -g ext-in\n\
         -A ext-in -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n*nat\n:POSTROUTING ACCEPT\n\
         -A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n"
    );
    let counted = save::normalize(dump, Counters::Rules);
    assert!(
        counted.contains(":INPUT DROP [*]\n:FORWARD ACCEPT [*]\n:ext-in - [0:0]\n[7:420] -A INPUT"),
        "{counted}"
    );
    assert_eq!(
        save::rule_packets(&counted, &["-o eth0", "MASQUERADE"]),
        Some(3)
    );
    assert_eq!(save::rule_packets(&counted, &["--dport 23"]), None);
    let stripped = save::normalize(dump, Counters::Strip);
    assert_eq!(
        save::table_rules(&stripped, "nat"),
        vec!["-A POSTROUTING -o eth0 -j MASQUERADE"]
    );
    assert_eq!(
        save::command(Family::V6, Tools::Legacy, Counters::Rules),
        vec!["ip6tables-legacy-save", "-c"]
    );
}

/// The one namespace guard: a `Netns` exists while it lives and is deleted
/// when dropped, also when the test panics; the topology's three namespaces
/// are such guards (see `listeners_and_namespaces_are_cleaned_up`).
#[test]
fn namespace_guard_deletes_on_drop_and_on_panic() {
    if !common::kernel_tests_available("namespace_guard_deletes_on_drop_and_on_panic") {
        return;
    }
    let ns = Netns::new("selftest guard");
    let name = ns.name().to_owned();
    assert!(
        name.starts_with(&format!("fwt-{}-", std::process::id())),
        "{name}"
    );
    assert!(netns_list()
        .lines()
        .any(|l| l.split_whitespace().next() == Some(&name)));
    // Rules loaded into it are there and nowhere else.
    ns.restore(
        Family::V4,
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 9 -j DROP\nCOMMIT\n",
    );
    assert!(ns
        .save(Family::V4)
        .contains("-A INPUT -p tcp -m tcp --dport 9 -j DROP\n"));
    drop(ns);
    assert!(!netns_list().contains(&name), "{name} left behind");
    let r = std::panic::catch_unwind(|| {
        let ns = Netns::new("selftest guard panic");
        panic!("{}", ns.name());
    });
    let name = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(!netns_list().contains(&name), "{name} left behind");
}

/// A hand-written nftables ruleset in the firewall's own table closes one
/// port (both families); the nft loader refuses a file nft refuses, and a
/// file that leaves other tables than the expected ones behind.
#[test]
fn nft_loader_closes_one_port_and_checks_the_tables() {
    let test = "nft_loader_closes_one_port_and_checks_the_tables";
    if !gate::require(test, &[Need::Kernel, gate::NFT]) {
        return;
    }
    let t = Topology::new("selftest_nft25");
    let _fw22 = t.listen_tcp(Ns::Firewall, 22);
    let _fw25 = t.listen_tcp(Ns::Firewall, 25);
    let rules = "table inet firewall {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tiifname \"eth0\" tcp dport 25 drop
\t}
}
";
    t.try_load_nft(rules, &["inet firewall"])
        .unwrap_or_else(|e| panic!("{e}"));
    for a in [addr::FW_EXT_V4, addr::FW_EXT_V6] {
        assert!(
            common::eventually(3, || t.tcp_connects(Ns::Outside, a, 22)),
            "{a}:22 must stay open"
        );
        assert!(
            !t.tcp_connects(Ns::Outside, a, 25),
            "{a}:25 must be dropped"
        );
    }
    assert!(t.tcp_connects(Ns::Inside, addr::FW_INT_V4, 25));
    assert!(t.dump(Ns::Firewall).contains("tcp dport 25 drop"));
    // nft refuses it: reported with the numbered text.
    let bad = t
        .try_load_nft(
            "table inet firewall { chain input { nonsense; } }\n",
            &["inet firewall"],
        )
        .expect_err("nft must refuse nonsense");
    assert!(
        bad.contains("nft -c -f -") && bad.contains("   1 table inet firewall"),
        "{bad}"
    );
    // A table nobody expected is reported.
    let other = "table inet other {\n\tchain c {\n\t}\n}\n";
    let err = t
        .try_load_nft(other, &["inet firewall"])
        .expect_err("an unexpected table must be reported");
    assert!(err.contains("table inet other"), "{err}");
}
