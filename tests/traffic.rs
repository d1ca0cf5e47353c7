//! DSL.md section 5: the generated rules, run in network namespaces with real
//! traffic. Needs root, `ip netns`, iptables and nc (see
//! `common::kernel_tests_available`; under `CI=true` a missing piece fails).

mod common;
#[path = "common/netns.rs"]
mod netns;

use common::policy::parse;
use common::{Ns, Topology, NON_ROUTER_POLICY, SECTION5_POLICY};
use firewall::Policy;

fn run_bash(t: &Topology, policy: &Policy) {
    let out = t.run_script_in_firewall(policy.bash());
    assert!(
        out.status.success(),
        "{}\n--- script ---\n{}",
        common::describe("the generated bash script", &out),
        policy.bash()
    );
}

#[test]
fn section5_matrix_with_iptables_restore() {
    if !common::kernel_tests_available("section5_matrix_with_iptables_restore") {
        return;
    }
    let policy = parse(SECTION5_POLICY);
    let t = Topology::new("traffic_restore5");
    t.load_rules(policy.iptables_restore(), policy.ip6tables_restore());
    // iptables-restore sets no sysctl; the bash script does (tested below).
    t.set_ip_forward(true);
    common::assert_section5_matrix(&t);
}

/// Loads `policy.nft()` with `nft -f` in `t`'s firewall namespace (a fresh
/// one: no iptables rules there, which would filter too), after `nft -c -f`.
fn load_nft(t: &Topology, policy: &Policy) {
    for args in [
        &["timeout", "30", "nft", "-c", "-f", "-"][..],
        &["timeout", "30", "nft", "-f", "-"][..],
    ] {
        let out = t.exec_with_stdin(Ns::Firewall, args, policy.nft());
        assert!(
            out.status.success(),
            "{}\n--- nft ---\n{}",
            common::describe("nft", &out),
            policy.nft()
        );
    }
    let tables = t.sh(Ns::Firewall, "timeout 10 nft list tables");
    let expected = if policy.nft().contains("table ip firewall_nat {\n") {
        "table inet firewall\ntable ip firewall_nat\n"
    } else {
        "table inet firewall\n"
    };
    assert_eq!(tables, expected, "only the firewall's own tables");
}

#[test]
fn section5_matrix_with_nft() {
    if !common::kernel_tests_available("section5_matrix_with_nft")
        || !netns::require("section5_matrix_with_nft", &["nft"], true)
    {
        return;
    }
    let policy = parse(SECTION5_POLICY);
    let t = Topology::new("traffic_nft5");
    load_nft(&t, &policy);
    t.set_ip_forward(true);
    common::assert_section5_matrix(&t);
}

#[test]
fn non_router_forwards_nothing_with_nft() {
    if !common::kernel_tests_available("non_router_forwards_nothing_with_nft")
        || !netns::require("non_router_forwards_nothing_with_nft", &["nft"], true)
    {
        return;
    }
    let policy = parse(NON_ROUTER_POLICY);
    let t = Topology::new("traffic_nft_nonrouter");
    load_nft(&t, &policy);
    let _ssh = t.listen_tcp(Ns::Firewall, 22);
    let _smtp = t.listen_tcp(Ns::Firewall, 25);
    for a in [common::addr::FW_EXT_V4, common::addr::FW_EXT_V6] {
        assert!(
            common::eventually(3, || t.tcp_connects(Ns::Outside, a, 22)),
            "{a}:22 must be open"
        );
        assert!(!t.tcp_connects(Ns::Outside, a, 25), "{a}:25 must be closed");
    }
    common::assert_forwards_nothing(&t);
}

#[test]
fn section5_matrix_with_bash_script() {
    if !common::kernel_tests_available("section5_matrix_with_bash_script") {
        return;
    }
    let policy = parse(SECTION5_POLICY);
    let t = Topology::new("traffic_bash5");
    assert!(!t.ip_forward(), "fresh firewall namespace forwards already");
    run_bash(&t, &policy);
    assert!(
        t.ip_forward(),
        "the script of a router policy must enable net.ipv4.ip_forward"
    );
    common::assert_section5_matrix(&t);
}

#[test]
fn bash_script_twice_leaves_the_identical_ruleset() {
    if !common::kernel_tests_available("bash_script_twice_leaves_the_identical_ruleset") {
        return;
    }
    let policy = parse(SECTION5_POLICY);
    let t = Topology::new("traffic_bash_twice");
    let empty = t.ruleset(Ns::Firewall);
    run_bash(&t, &policy);
    let once = t.ruleset(Ns::Firewall);
    assert_ne!(once, empty, "the script changed no rule");
    run_bash(&t, &policy);
    let twice = t.ruleset(Ns::Firewall);
    assert_eq!(once, twice, "running the script again changed the ruleset");
    // And it equals what iptables-restore of the rendered text gives.
    let fresh = Topology::new("traffic_restore_cmp");
    fresh.load_rules(policy.iptables_restore(), policy.ip6tables_restore());
    assert_eq!(
        fresh.ruleset(Ns::Firewall),
        once,
        "bash() and iptables_restore()/ip6tables_restore() give different rulesets"
    );
}

#[test]
fn non_router_forwards_nothing_with_iptables_restore() {
    if !common::kernel_tests_available("non_router_forwards_nothing_with_iptables_restore") {
        return;
    }
    let policy = parse(NON_ROUTER_POLICY);
    let t = Topology::new("traffic_nonrouter");
    t.load_rules(policy.iptables_restore(), policy.ip6tables_restore());
    // Still a host firewall: 22 open, others closed, over both families.
    let _ssh = t.listen_tcp(Ns::Firewall, 22);
    let _smtp = t.listen_tcp(Ns::Firewall, 25);
    for a in [common::addr::FW_EXT_V4, common::addr::FW_EXT_V6] {
        assert!(
            common::eventually(3, || t.tcp_connects(Ns::Outside, a, 22)),
            "{a}:22 must be open"
        );
        assert!(!t.tcp_connects(Ns::Outside, a, 25), "{a}:25 must be closed");
    }
    common::assert_forwards_nothing(&t);
}

#[test]
fn non_router_bash_script_does_not_enable_forwarding_and_forwards_nothing() {
    if !common::kernel_tests_available("non_router_bash_script_forwards_nothing") {
        return;
    }
    let policy = parse(NON_ROUTER_POLICY);
    let t = Topology::new("traffic_nonrouter_bash");
    run_bash(&t, &policy);
    assert!(
        !t.ip_forward(),
        "the script of a policy that is not a router enabled ip_forward"
    );
    common::assert_forwards_nothing(&t);
}
