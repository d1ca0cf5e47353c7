//! DSL.md section 5: the generated rules, run in network namespaces with real
//! traffic. Needs root, `ip netns`, iptables and nc (see
//! `common::kernel_tests_available`; under `CI=true` a missing piece fails).

mod common;
#[path = "common/netns.rs"]
mod netns;

use common::policy::parse;
use common::script_backend::{self, nft_ruleset};
use common::{Ns, Topology, NON_ROUTER_POLICY, SECTION5_POLICY};
use firewall::Policy;

/// Runs `script` in the firewall namespace with `FIREWALL_BACKEND=backend`.
fn run_script(t: &Topology, backend: &str, script: &str) -> std::process::Output {
    t.run_script_in_firewall(&format!("export FIREWALL_BACKEND={backend}\n{script}"))
}

fn run_bash(t: &Topology, backend: &str, policy: &Policy) {
    let out = run_script(t, backend, policy.bash());
    assert!(
        out.status.success(),
        "{}\n--- script ---\n{}",
        common::describe(
            &format!("the generated bash script, FIREWALL_BACKEND={backend}"),
            &out
        ),
        policy.bash()
    );
    let said = format!("firewall: backend {backend}\n");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&said),
        "{}",
        common::describe("the script did not use the backend asked for", &out)
    );
}

/// Whether the script tests of `backend` can run here (see
/// [`common::kernel_tests_available`]).
fn available(test: &str, backend: &str) -> bool {
    common::kernel_tests_available(test) && script_backend::available(test, backend)
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

fn section5_matrix_with_bash_script(backend: &str) {
    let policy = parse(SECTION5_POLICY);
    let t = Topology::new(&format!("traffic_bash5_{backend}"));
    assert!(!t.ip_forward(), "fresh firewall namespace forwards already");
    run_bash(&t, backend, &policy);
    assert!(
        t.ip_forward(),
        "the script of a router policy must enable net.ipv4.ip_forward"
    );
    if backend == "nftables" {
        assert_eq!(
            t.ruleset(Ns::Firewall),
            "",
            "the nftables backend loaded iptables rules"
        );
    }
    common::assert_section5_matrix(&t);
}

#[test]
fn section5_matrix_with_bash_script_iptables_nft() {
    if available(
        "section5_matrix_with_bash_script_iptables_nft",
        "iptables-nft",
    ) {
        section5_matrix_with_bash_script("iptables-nft");
    }
}

#[test]
fn section5_matrix_with_bash_script_nftables() {
    if available("section5_matrix_with_bash_script_nftables", "nftables") {
        section5_matrix_with_bash_script("nftables");
    }
}

/// The rules the script leaves as `backend` loads them: the iptables
/// rulesets, or the whole nftables ruleset.
fn loaded(t: &Topology, backend: &str) -> String {
    match backend {
        "nftables" => nft_ruleset(t),
        _ => t.ruleset(Ns::Firewall),
    }
}

fn bash_script_twice_leaves_the_identical_ruleset(backend: &str) {
    let policy = parse(SECTION5_POLICY);
    let t = Topology::new(&format!("traffic_bash_twice_{backend}"));
    let empty = loaded(&t, backend);
    run_bash(&t, backend, &policy);
    let once = loaded(&t, backend);
    assert_ne!(once, empty, "the script changed no rule");
    run_bash(&t, backend, &policy);
    let twice = loaded(&t, backend);
    assert_eq!(once, twice, "running the script again changed the ruleset");
    // And it equals what loading the rendered text by hand gives.
    let fresh = Topology::new(&format!("traffic_cmp_{backend}"));
    if backend == "nftables" {
        script_backend::nft_load(&fresh, policy.nft());
    } else {
        fresh.load_rules(policy.iptables_restore(), policy.ip6tables_restore());
    }
    assert_eq!(
        loaded(&fresh, backend),
        once,
        "bash() and the rendered texts loaded by hand give different rulesets ({backend})"
    );
}

#[test]
fn bash_script_twice_leaves_the_identical_ruleset_iptables_nft() {
    if available("bash_script_twice_iptables_nft", "iptables-nft") {
        bash_script_twice_leaves_the_identical_ruleset("iptables-nft");
    }
}

#[test]
fn bash_script_twice_leaves_the_identical_ruleset_nftables() {
    if available("bash_script_twice_nftables", "nftables") {
        bash_script_twice_leaves_the_identical_ruleset("nftables");
    }
}

/// The nftables backend's load is one transaction: an nftables file the
/// kernel refuses in its last table (the NAT chain jumps to a chain that does
/// not exist, found only when the batch is committed, after the filter table
/// was replaced in it) changes nothing: the previous own tables and a foreign
/// table stay, byte for byte, and so does the traffic, IPv4 and IPv6; the
/// script rolls back (exit 1) and leaves no backup.
#[test]
fn nftables_script_whose_load_fails_changes_nothing() {
    if !available(
        "nftables_script_whose_load_fails_changes_nothing",
        "nftables",
    ) {
        return;
    }
    let t = Topology::new("traffic_nft_fail");
    let scratch = common::scratch::Scratch::new("fw-traffic", "nft_fail");
    // Before: the non-router policy applied by the script, and a foreign table.
    run_bash(&t, "nftables", &parse(NON_ROUTER_POLICY));
    script_backend::nft_load(&t, script_backend::FOREIGN_TABLE);
    let before = script_backend::state(&t, "nftables");
    // As listed, too: the rollback must not recreate tables that equal the
    // backup (that would move them behind the foreign one).
    let listed = script_backend::nft_ruleset_as_listed(&t);
    let _ssh = t.listen_tcp(Ns::Firewall, 22);
    let _http = t.listen_tcp(Ns::Firewall, 80);
    let _foreign = t.listen_tcp(Ns::Firewall, 7);
    let traffic = |when: &str| {
        for a in [common::addr::FW_EXT_V4, common::addr::FW_EXT_V6] {
            assert!(
                common::eventually(3, || t.tcp_connects(Ns::Outside, a, 22)),
                "{when}: {a}:22 must be open"
            );
            assert!(
                !t.tcp_connects(Ns::Outside, a, 80),
                "{when}: {a}:80 must be closed"
            );
            assert!(
                !t.tcp_connects(Ns::Inside, a, 7),
                "{when}: {a}:7 must be closed (the foreign table)"
            );
        }
    };
    traffic("before");

    let policy = parse(SECTION5_POLICY);
    let broken = policy.nft().replace(
        "masquerade comment \"masquerade\"",
        "jump nowhere comment \"masquerade\"",
    );
    assert_ne!(broken, policy.nft(), "the NAT rule to break is not there");
    let script = firewall_core::render::bash::script(
        policy.model(),
        policy.iptables_restore(),
        policy.ip6tables_restore(),
        &broken,
    );
    let out = run_script(
        &t,
        "nftables",
        &format!("export TMPDIR={}\n{script}", scratch.path()),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        common::describe("the broken script", &out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("previous rules and ip_forward restored"),
        "{err}"
    );
    assert_eq!(
        script_backend::state(&t, "nftables"),
        before,
        "a failed nft load changed the ruleset"
    );
    assert_eq!(
        script_backend::nft_ruleset_as_listed(&t),
        listed,
        "the rollback of a failed nft load recreated the tables"
    );
    assert!(!t.ip_forward(), "a failed load left ip_forward on");
    traffic("after the failed load");
    assert_eq!(
        std::fs::read_dir(scratch.dir())
            .map(|d| d.count())
            .unwrap_or(1),
        0,
        "backup left"
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

fn non_router_bash_script_does_not_enable_forwarding_and_forwards_nothing(backend: &str) {
    let policy = parse(NON_ROUTER_POLICY);
    let t = Topology::new(&format!("traffic_nonrouter_bash_{backend}"));
    run_bash(&t, backend, &policy);
    assert!(
        !t.ip_forward(),
        "the script of a policy that is not a router enabled ip_forward"
    );
    common::assert_forwards_nothing(&t);
}

#[test]
fn non_router_bash_script_does_not_enable_forwarding_and_forwards_nothing_iptables_nft() {
    if available("non_router_bash_script_iptables_nft", "iptables-nft") {
        non_router_bash_script_does_not_enable_forwarding_and_forwards_nothing("iptables-nft");
    }
}

#[test]
fn non_router_bash_script_does_not_enable_forwarding_and_forwards_nothing_nftables() {
    if available("non_router_bash_script_nftables", "nftables") {
        non_router_bash_script_does_not_enable_forwarding_and_forwards_nothing("nftables");
    }
}
