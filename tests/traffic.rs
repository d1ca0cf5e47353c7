//! DSL.md section 5: the generated rules, run in network namespaces with real
//! traffic, loaded with each rule loader (`iptables-restore` of the two
//! texts, `nft -f` of the nftables file: `<test>::iptables_restore`,
//! `<test>::nft`: `both_loaders!`) and by the bash script with each backend
//! (`<test>::iptables_nft`, `<test>::nftables`: `both_backends!`; a failed
//! load of either is in tests/apply.rs). Needs root, `ip netns`, iptables,
//! nft and nc (see `common::gate`; under `CI=true` a missing piece fails).

mod common;

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

both_loaders! {
    /// DSL.md section 5 with the rules loaded directly (no sysctl is set by
    /// a loader: forwarding is switched on by hand; the bash script's own
    /// sysctl is tested below). With nft, the namespace holds only the
    /// firewall's own tables afterwards.
    fn section5_matrix(loader, test) {
        if !loader.available(test) {
            return;
        }
        let policy = parse(SECTION5_POLICY);
        let t = Topology::new(test);
        t.load_policy(&policy, loader);
        t.set_ip_forward(true);
        common::assert_section5_matrix(&t);
    }

    /// Port lists with ranges and source lists of several networks per
    /// family (named interval sets in nftables, multiport and one rule per
    /// network in iptables): exactly the listed ports, exactly from the
    /// listed sources, over both families.
    fn port_and_source_lists(loader, test) {
        if !loader.available(test) {
            return;
        }
        use common::addr::{FW_EXT_V4, FW_EXT_V6, OUTSIDE_V4, OUTSIDE_V6};
        let policy = parse(
            "extif eth0; ssh none;
             open tcp 22, 8000..=8080 from 198.51.100.2/32, 198.51.100.4/31,
                  \"2001:db8:1::2/128\", \"2001:db8:1::4/126\";
             open tcp 9000, 9002;",
        );
        let t = Topology::new(test);
        for extra in ["198.51.100.3/24", "198.51.100.5/24", "2001:db8:1::3/64", "2001:db8:1::5/64"] {
            t.add_address(Ns::Outside, extra);
        }
        t.load_policy(&policy, loader);
        let _l: Vec<_> = [22, 8000, 8080, 8081, 7999, 9000, 9001, 9002]
            .iter()
            .map(|&p| t.listen_tcp(Ns::Firewall, p))
            .collect();
        let mut open = Vec::new();
        let mut closed = Vec::new();
        for (fw, listed, unlisted, second) in [
            (FW_EXT_V4, OUTSIDE_V4, "198.51.100.3", "198.51.100.5"),
            (FW_EXT_V6, OUTSIDE_V6, "2001:db8:1::3", "2001:db8:1::5"),
        ] {
            for port in [22, 8000, 8080] {
                open.push((listed, fw, port));
                open.push((second, fw, port));
                closed.push((unlisted, fw, port));
            }
            for port in [7999, 8081, 9001] {
                closed.push((listed, fw, port));
            }
            for port in [9000, 9002] {
                open.push((unlisted, fw, port));
            }
        }
        let mut failures = Vec::new();
        for &(src, fw, port) in &open {
            if !common::eventually(3, || t.tcp_connects_from(Ns::Outside, src, fw, port)) {
                failures.push(format!("{loader}: {src} -> {fw}:{port} should connect"));
            }
        }
        let refused: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = closed
                .iter()
                .map(|&(src, fw, port)| {
                    let t = &t;
                    s.spawn(move || {
                        t.tcp_connects_from(Ns::Outside, src, fw, port)
                            .then(|| format!("{loader}: {src} -> {fw}:{port} must not connect"))
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().expect("probe thread"))
                .collect()
        });
        failures.extend(refused);
        assert!(
            failures.is_empty(),
            "{test}:\n  {}\n{}",
            failures.join("\n  "),
            t.dump(Ns::Firewall)
        );
    }

    /// An interface wildcard (`extif "eth+"`: the inside link is external
    /// too) and `reject` as the policy of OUTPUT and FORWARD: the inside host
    /// reaches only the opened port, the firewall's own new connections and
    /// forwarded ones are refused at once (not dropped), over both families,
    /// while replies to accepted connections still leave.
    fn wildcard_extif_and_reject_policies(loader, test) {
        if !loader.available(test) {
            return;
        }
        use common::addr::*;
        let policy = parse(
            "extif \"eth+\"; open tcp 22; policy output reject; policy forward reject;",
        );
        let t = common::policy::forwarding_topology(test, &policy, loader);
        t.route_outside_to_inside();
        let _ssh = t.listen_tcp(Ns::Firewall, 22);
        let _smtp = t.listen_tcp(Ns::Firewall, 25);
        let _inner = t.listen_tcp(Ns::Inside, 22);
        let _service = t.listen_tcp(Ns::Outside, common::OUTSIDE_SERVICE_PORT);
        let mut failures = Vec::new();
        for (ns, a) in [
            (Ns::Outside, FW_EXT_V4),
            (Ns::Outside, FW_EXT_V6),
            (Ns::Inside, FW_INT_V4),
            (Ns::Inside, FW_INT_V6),
        ] {
            if !common::eventually(3, || t.tcp_connects(ns, a, 22)) {
                failures.push(format!("{loader}: {} -> {a}:22 should connect", ns.role()));
            }
            if t.tcp_connects(ns, a, 25) {
                failures.push(format!(
                    "{loader}: {} -> {a}:25 connected, but eth+ makes every ethN external",
                    ns.role()
                ));
            }
        }
        for (ns, a, port, why) in [
            (Ns::Firewall, OUTSIDE_V4, common::OUTSIDE_SERVICE_PORT, "policy output reject"),
            (Ns::Firewall, OUTSIDE_V6, common::OUTSIDE_SERVICE_PORT, "policy output reject"),
            (Ns::Outside, INSIDE_V4, 22, "policy forward reject"),
            (Ns::Outside, INSIDE_V6, 22, "policy forward reject"),
            (Ns::Inside, OUTSIDE_V4, common::OUTSIDE_SERVICE_PORT, "policy forward reject"),
        ] {
            if !t.tcp_refused(ns, a, port) {
                failures.push(format!(
                    "{loader}: {} -> {a}:{port} should be refused ({why})",
                    ns.role()
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{test}:\n  {}\n{}",
            failures.join("\n  "),
            t.dump(Ns::Firewall)
        );
    }

    /// A policy that is not a router: still a host firewall (22 open, others
    /// closed, over both families), and it forwards nothing.
    fn non_router_forwards_nothing(loader, test) {
        if !loader.available(test) {
            return;
        }
        let policy = parse(NON_ROUTER_POLICY);
        let t = Topology::new(test);
        t.load_policy(&policy, loader);
        let _ssh = t.listen_tcp(Ns::Firewall, 22);
        let _smtp = t.listen_tcp(Ns::Firewall, 25);
        for a in [common::addr::FW_EXT_V4, common::addr::FW_EXT_V6] {
            assert!(
                common::eventually(3, || t.tcp_connects(Ns::Outside, a, 22)),
                "{loader}: {a}:22 must be open"
            );
            assert!(
                !t.tcp_connects(Ns::Outside, a, 25),
                "{loader}: {a}:25 must be closed"
            );
        }
        common::assert_forwards_nothing(&t);
    }
}

both_backends! {
    /// DSL.md section 5 with the bash script, which also switches forwarding on.
    fn section5_matrix_with_bash_script(backend, test) {
        let policy = parse(SECTION5_POLICY);
        let t = Topology::new(test);
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
}

/// The rules the script leaves as `backend` loads them: the iptables
/// rulesets, or the whole nftables ruleset.
fn loaded(t: &Topology, backend: &str) -> String {
    match backend {
        "nftables" => nft_ruleset(t),
        _ => t.ruleset(Ns::Firewall),
    }
}

both_backends! {
    /// The script run twice leaves the ruleset it left once, which is what
    /// loading the rendered texts by hand gives.
    fn bash_script_twice_leaves_the_identical_ruleset(backend, test) {
        let policy = parse(SECTION5_POLICY);
        let t = Topology::new(test);
        let empty = loaded(&t, backend);
        run_bash(&t, backend, &policy);
        let once = loaded(&t, backend);
        assert_ne!(once, empty, "the script changed no rule");
        run_bash(&t, backend, &policy);
        let twice = loaded(&t, backend);
        assert_eq!(once, twice, "running the script again changed the ruleset");
        // And it equals what loading the rendered text by hand gives.
        let fresh = Topology::new(&format!("{test}_cmp"));
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

    /// The script of a policy that is not a router leaves forwarding off, and
    /// nothing is forwarded.
    fn non_router_bash_script_does_not_enable_forwarding_and_forwards_nothing(backend, test) {
        let policy = parse(NON_ROUTER_POLICY);
        let t = Topology::new(test);
        run_bash(&t, backend, &policy);
        assert!(
            !t.ip_forward(),
            "the script of a policy that is not a router enabled ip_forward"
        );
        common::assert_forwards_nothing(&t);
    }
}
