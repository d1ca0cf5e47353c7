//! Sharing the host (DSL.md section 6, issue 8), on the real kernel in network
//! namespaces, with both backends and both paths (`apply()`/`remove()` and
//! the bash script/`--remove`): other tools' rules, made here by hand as
//! Docker and fail2ban make them (a `f2b-sshd` chain jumped to first from
//! INPUT that rejects a banned source, over IPv4 and IPv6; a `DOCKER` chain
//! jumped to first from FORWARD that accepts a DNAT'd port to a "container"
//! behind `docker0`; its DNAT in nat PREROUTING and a MASQUERADE in nat
//! POSTROUTING), installed before and after applying, survive applying,
//! re-applying (one hook each, rule count unchanged), the rollback of a
//! failing apply, a failsafe revert (with a ban added while it is pending)
//! and removing, byte for byte, and traffic shows it: the banned source is
//! refused, another source reaches the opened port, the published port
//! reaches the container. A policy without NAT leaves the nat table as it was.
//! iptables-legacy too (module `legacy`). tests/neighbours.rs runs the real
//! daemons.
//!
//! `apply()` and `remove()` run in the firewall namespace through the ignored
//! test [`share_inner`] (`common::Topology::run_test_in`).

mod common;

use common::env_of;
use common::policy::parse;
use common::scratch::{wait_until, PidGuard, Scratch};
use common::{Ns, Topology};
use firewall_core::apply::{self, ApplyError, Options, Rollback};
use std::io::Write;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

const INNER: &str = "share_inner";

/// The policy: a host (no NAT), ports 22 and 80 open.
const POLICY: &str = "extif eth0; open tcp 22, 80;";

/// The policy a failsafe apply tries (and does not keep): 8080 too.
const OTHER: &str = "extif eth0; open tcp 22, 80, 8080;";

/// The banned sources (fail2ban's), before the apply / after / while a failsafe is pending.
const BANNED: [(&str, &str); 3] = [
    ("198.51.100.9", "2001:db8:1::9"),
    ("198.51.100.10", "2001:db8:1::10"),
    ("198.51.100.11", "2001:db8:1::11"),
];

/// The published port on the firewall's outside address (Docker's DNAT to
/// the "container", the inside host behind `docker0`, port 8000).
const PUBLISHED: u16 = 8081;

// ---------------------------------------------------------------------------
// The inner half
// ---------------------------------------------------------------------------

/// In the firewall namespace: `FW_SHARE_DO` = `apply` (`FW_SHARE_POLICY`;
/// `FW_SHARE_FAILSAFE` seconds, left unconfirmed: prints `WATCHDOG pid`),
/// `fail` (the IPv6 load broken: must fail and roll back), `remove`, or
/// `remove-pending` (must refuse: a failsafe is pending).
#[test]
#[ignore = "runs inside a network namespace; started by the other tests of this file"]
fn share_inner() {
    if common::inner_role().is_none() {
        return;
    }
    let backend = apply::Backend::from_name(&env_of("FW_SHARE_BACKEND"))
        .unwrap_or_else(|| panic!("FW_SHARE_BACKEND: not a backend"));
    let options = || Options {
        allow_session_lockout: true,
        backup_parent: Some(PathBuf::from(env_of("FW_SHARE_BACKUP_PARENT"))),
        backend: Some(backend),
        failsafe: env_of("FW_SHARE_FAILSAFE")
            .parse()
            .ok()
            .map(Duration::from_secs),
        ..Options::default()
    };
    let policy = parse(&env_of("FW_SHARE_POLICY"));
    match env_of("FW_SHARE_DO").as_str() {
        "apply" => {
            let applied = policy
                .apply_with(options())
                .unwrap_or_else(|e| panic!("{e}"));
            if let Some(g) = &applied.failsafe {
                println!("WATCHDOG {}", g.watchdog_pid().unwrap_or(0));
                let _ = std::io::stdout().flush();
                // Left unconfirmed: dropping the value leaves the watchdog on.
                std::mem::forget(applied);
            }
        }
        "fail" => {
            let texts = policy.texts();
            let v6 = texts
                .ipv6
                .text()
                .replacen("--ctstate INVALID", "--ctstate NO-SUCH-STATE", 1);
            let nft = texts.nft.text().replacen(
                "ct state invalid drop",
                "ct state invalid masquerade",
                1,
            );
            let broken = texts
                .__edited(texts.ipv4.text(), &v6, &nft)
                .unwrap_or_else(|e| panic!("{e}"));
            match apply::apply(policy.model(), &broken, options()) {
                Err(ApplyError::Failed { rollback, .. }) => {
                    assert_eq!(rollback, Rollback::Restored)
                }
                other => panic!("expected a rolled back failure, got {other:?}"),
            }
        }
        "remove" => {
            policy
                .remove_with(options())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        "remove-pending" => match policy.remove_with(options()) {
            Err(e @ ApplyError::FailsafePending { .. }) => println!("REFUSED {e}"),
            other => panic!("expected FailsafePending, got {other:?}"),
        },
        other => panic!("FW_SHARE_DO={other}"),
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

thread_local! {
    /// This test's iptables variant for the other tools' rules: Docker and
    /// fail2ban use the host's `iptables`, so with the legacy backend theirs
    /// are legacy rules too.
    static LEGACY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `t.sh` in the firewall namespace with the iptables tools of this test's
/// variant (`iptables-nft` spelled in `cmd` becomes `iptables-legacy`).
fn tools_sh(t: &Topology, cmd: &str) -> String {
    if LEGACY.with(|l| l.get()) {
        t.sh(Ns::Firewall, &cmd.replace("tables-nft", "tables-legacy"))
    } else {
        t.sh(Ns::Firewall, cmd)
    }
}

/// The host as Docker and fail2ban leave it, before the firewall: the inside
/// link renamed `docker0` (the "container" bridge), ip_forward on, the first
/// ban, Docker's chains and NAT (iptables-nft, as both tools use it).
fn install_foreign(t: &Topology) {
    t.sh(
        Ns::Firewall,
        "ip link set eth1 down && ip link set eth1 name docker0 && ip link set docker0 up && \
         ip -6 addr replace 2001:db8:2::1/64 dev docker0 nodad && \
         echo 1 >/proc/sys/net/ipv4/ip_forward",
    );
    let (v4, v6) = BANNED[0];
    tools_sh(
        t,
        &format!(
            "set -e
             for f in iptables-nft ip6tables-nft; do $f -w -N f2b-sshd; $f -w -I INPUT -j f2b-sshd; done
             iptables-nft -w -A f2b-sshd -s {v4} -p tcp -j REJECT
             ip6tables-nft -w -A f2b-sshd -s {v6} -p tcp -j REJECT
             iptables-nft -w -t nat -N DOCKER
             iptables-nft -w -t nat -A DOCKER -i eth0 -p tcp --dport {PUBLISHED} -j DNAT --to-destination 203.0.113.2:8000
             iptables-nft -w -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
             iptables-nft -w -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
             iptables-nft -w -N DOCKER
             iptables-nft -w -A DOCKER -d 203.0.113.2/32 ! -i docker0 -o docker0 -p tcp --dport 8000 -j ACCEPT
             iptables-nft -w -I FORWARD -o docker0 -j DOCKER"
        ),
    );
    for (v4, _) in BANNED {
        t.add_address(Ns::Outside, &format!("{v4}/24"));
    }
    for (_, v6) in BANNED {
        t.add_address(Ns::Outside, &format!("{v6}/64"));
    }
}

/// fail2ban bans one more source (inserted at the top of its chain). TCP
/// only, as fail2ban's banactions do: an IPv6 REJECT of everything would
/// also refuse the banned host's neighbour discovery, and no answer could
/// reach it.
fn ban(t: &Topology, (v4, v6): (&str, &str)) {
    tools_sh(
        t,
        &format!(
            "iptables-nft -w -I f2b-sshd -s {v4} -p tcp -j REJECT && ip6tables-nft -w -I f2b-sshd -s {v6} -p tcp -j REJECT"
        ),
    );
}

/// The iptables-nft rulesets (both families) with counters blanked.
fn iptables_nft(t: &Topology) -> String {
    let out = tools_sh(
        t,
        "iptables-nft-save -w 2>/dev/null || iptables-nft-save; echo ---; ip6tables-nft-save",
    );
    out.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let l = match l.rfind(" [") {
                Some(i) if l.starts_with(':') => &l[..i],
                _ => l,
            };
            format!("{l}\n")
        })
        .collect()
}

/// Other tools' part: every line but the firewall's (its chains, hooks, and
/// the built-in chains' policies, which it owns).
fn foreign(t: &Topology) -> String {
    iptables_nft(t)
        .lines()
        .filter(|l| !l.contains("fw-"))
        .filter(|l| !(l.starts_with(':') && l.split(' ').nth(1).is_some_and(|p| p != "-")))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The nat tables only (a policy without NAT leaves them byte-identical).
fn nat(t: &Topology) -> String {
    // Counters blanked: the legacy tools count packets on the chain policies.
    tools_sh(
        t,
        "iptables-nft-save -t nat | grep -v '^#'; ip6tables-nft-save -t nat | grep -v '^#'",
    )
    .lines()
    .map(|l| match l.rfind(" [") {
        Some(i) if l.starts_with(':') => format!("{}\n", &l[..i]),
        _ => format!("{l}\n"),
    })
    .collect()
}

/// What the firewall holds: own chains/hooks (iptables-nft) or own tables (nftables).
fn own(t: &Topology, backend: &str) -> String {
    match backend {
        "nftables" => common::script_backend::own_tables(&common::script_backend::nft_ruleset(t)),
        _ => iptables_nft(t)
            .lines()
            .filter(|l| l.contains("fw-"))
            .map(|l| format!("{l}\n"))
            .collect(),
    }
}

/// Every rule line of the firewall namespace (both families, and nftables).
fn rule_count(t: &Topology, backend: &str) -> usize {
    let ipt = iptables_nft(t)
        .lines()
        .filter(|l| l.starts_with("-A "))
        .count();
    let nft = if backend == "nftables" {
        common::script_backend::nft_ruleset(t)
            .lines()
            .filter(|l| l.contains(" comment \""))
            .count()
    } else {
        0
    };
    ipt + nft
}

/// Whether a TCP connection from `src` (an address of the outside host) to
/// `addr`:`port` is refused (the ban's REJECT).
fn refused_from(t: &Topology, src: &str, addr: &str, port: u16) -> bool {
    let p = port.to_string();
    let out = t.exec(
        Ns::Outside,
        &["nc", "-z", "-v", "-n", "-w", "2", "-s", src, addr, &p],
    );
    !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("refused")
}

/// The outcomes as traffic sees them: every banned source refused on the
/// opened port 80 (IPv4 and IPv6), the unbanned one connects, the published
/// port reaches the container; `policy`: 8080 is closed (the policy holds).
fn assert_traffic(t: &Topology, bans: usize, policy: bool, what: &str) {
    let fw = [(common::addr::FW_EXT_V4, 0), (common::addr::FW_EXT_V6, 1)];
    for (banned_v4, banned_v6) in &BANNED[..bans] {
        for (addr, fam) in fw {
            let src = if fam == 0 { banned_v4 } else { banned_v6 };
            assert!(
                refused_from(t, src, addr, 80),
                "{what}: {src} is banned but not refused on {addr}:80"
            );
        }
    }
    for (addr, src) in [
        (common::addr::FW_EXT_V4, common::addr::OUTSIDE_V4),
        (common::addr::FW_EXT_V6, common::addr::OUTSIDE_V6),
    ] {
        assert!(
            common::eventually(3, || t.tcp_connects_from(Ns::Outside, src, addr, 80)),
            "{what}: {src} cannot reach the opened port {addr}:80"
        );
        if policy {
            assert!(
                !t.tcp_connects_from(Ns::Outside, src, addr, 8080),
                "{what}: {addr}:8080 is open: the policy does not hold"
            );
        }
    }
    assert_eq!(
        t.tcp_banner(Ns::Outside, common::addr::FW_EXT_V4, PUBLISHED)
            .as_deref(),
        Some("inside:8000"),
        "{what}: the published port does not reach the container"
    );
}

/// Runs [`share_inner`] with `what` and `env`; panics unless it passed.
fn inner(
    t: &Topology,
    scratch: &Scratch,
    backend: &str,
    what: &str,
    env: &[(&str, &str)],
) -> Output {
    let mut all = vec![
        ("FW_SHARE_DO", what),
        ("FW_SHARE_BACKEND", backend),
        ("FW_SHARE_BACKUP_PARENT", scratch.path()),
    ];
    all.extend_from_slice(env);
    if !env.iter().any(|(k, _)| *k == "FW_SHARE_POLICY") {
        all.push(("FW_SHARE_POLICY", POLICY));
    }
    t.run_test_in_ok(Ns::Firewall, INNER, &all, what)
}

/// The bash script of `policy` for `backend`, with `args` (`--remove`).
fn script(t: &Topology, scratch: &Scratch, backend: &str, policy: &str, args: &str) -> Output {
    let text = parse(policy).bash().to_string();
    let path = scratch.dir().join("firewall.sh");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    t.run_script_in_firewall(&format!(
        "export TMPDIR={} FIREWALL_BACKEND={backend} FIREWALL_ALLOW_SESSION_LOCKOUT=1\nbash {} {args} </dev/null",
        scratch.path(),
        path.display()
    ))
}

#[track_caller]
fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{}", common::describe(what, &out));
    out
}

/// The watchdog pid of the one backup directory under `scratch`.
fn watchdog_in(scratch: &Scratch) -> u32 {
    let mut pid = 0;
    wait_until(Duration::from_secs(3), || {
        for e in std::fs::read_dir(scratch.dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Some(p) = std::fs::read_to_string(e.path().join("watchdog.pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                pid = p;
                return true;
            }
        }
        false
    });
    pid
}

/// The whole sequence, by `apply()` (`script` false) or by the bash script.
fn share(backend: &'static str, test: &str, by_script: bool) {
    let scratch = Scratch::new("fw-share", test);
    let t = Topology::new(test);
    let _web = t.listen_tcp(Ns::Firewall, 80);
    let _alt = t.listen_tcp(Ns::Firewall, 8080);
    let _container = t.listen_tcp(Ns::Inside, 8000);
    install_foreign(&t);
    let nat_before = nat(&t);
    let apply = |policy: &str, failsafe: &str| {
        if by_script {
            let p = if failsafe.is_empty() {
                policy.to_string()
            } else {
                format!("{policy} failsafe {failsafe}s;")
            };
            ok(script(&t, &scratch, backend, &p, ""), "the script");
        } else {
            inner(
                &t,
                &scratch,
                backend,
                "apply",
                &[("FW_SHARE_POLICY", policy), ("FW_SHARE_FAILSAFE", failsafe)],
            );
        }
    };

    // Apply, then fail2ban bans another host.
    apply(POLICY, "");
    ban(&t, BANNED[1]);
    let foreign_rules = foreign(&t);
    assert!(foreign_rules.contains("-A INPUT -j f2b-sshd") && foreign_rules.contains("DNAT"));
    assert_traffic(&t, 2, true, "after the apply");
    assert_eq!(
        nat(&t),
        nat_before,
        "a policy without NAT changed the nat table"
    );

    // Re-applying twice changes nothing: the same rules, one hook each.
    let (count, own_rules) = (rule_count(&t, backend), own(&t, backend));
    for _ in 0..2 {
        apply(POLICY, "");
        assert_eq!(
            rule_count(&t, backend),
            count,
            "{backend}: a re-apply changed the rule count"
        );
        assert_eq!(own(&t, backend), own_rules);
        assert_eq!(
            foreign(&t),
            foreign_rules,
            "{backend}: a re-apply changed other tools' rules"
        );
    }
    if backend != "nftables" {
        let all = iptables_nft(&t);
        for hook in [
            "-A INPUT -j fw-input",
            "-A FORWARD -j fw-forward",
            "-A OUTPUT -j fw-output",
        ] {
            assert_eq!(
                all.matches(&format!("{hook}\n")).count(),
                2,
                "{hook} (one per family):\n{all}"
            );
        }
        // Appended: fail2ban's and Docker's jumps come first.
        let input: Vec<&str> = all.lines().filter(|l| l.starts_with("-A INPUT ")).collect();
        assert_eq!(input.first(), Some(&"-A INPUT -j f2b-sshd"), "{input:?}");
    }
    assert_traffic(&t, 2, true, "after re-applying");

    // A failing apply is rolled back: ours as before, theirs untouched.
    if by_script {
        let text = parse(OTHER)
            .bash()
            .replacen("--ctstate INVALID", "--ctstate NO-SUCH-STATE", 2)
            .replacen("ct state invalid drop", "ct state invalid masquerade", 1);
        let path = scratch.dir().join("broken.sh");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let out = t.run_script_in_firewall(&format!(
            "export TMPDIR={} FIREWALL_BACKEND={backend} FIREWALL_ALLOW_SESSION_LOCKOUT=1\nbash {} </dev/null",
            scratch.path(),
            path.display()
        ));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            common::describe("broken script", &out)
        );
    } else {
        inner(&t, &scratch, backend, "fail", &[("FW_SHARE_POLICY", OTHER)]);
    }
    assert_eq!(
        own(&t, backend),
        own_rules,
        "{backend}: the rollback did not restore the firewall's rules"
    );
    assert_eq!(
        foreign(&t),
        foreign_rules,
        "{backend}: the rollback changed other tools' rules"
    );
    assert_traffic(&t, 2, true, "after a rollback");

    // A failsafe left unconfirmed while fail2ban bans a third host: the
    // revert restores ours, the new ban holds.
    apply(OTHER, "6");
    let wd = PidGuard(watchdog_in(&scratch));
    assert_ne!(
        own(&t, backend),
        own_rules,
        "the failsafe apply changed nothing"
    );
    ban(&t, BANNED[2]);
    let foreign_rules = foreign(&t);
    // remove() refuses while it is pending.
    if by_script {
        let out = script(&t, &scratch, backend, POLICY, "--remove");
        assert_eq!(
            out.status.code(),
            Some(5),
            "{}",
            common::describe("--remove while pending", &out)
        );
    } else {
        inner(&t, &scratch, backend, "remove-pending", &[]);
    }
    assert!(
        wait_until(Duration::from_secs(20), || own(&t, backend) == own_rules),
        "{backend}: the failsafe did not revert"
    );
    assert!(wd.exits_within(Duration::from_secs(5)));
    assert_eq!(
        foreign(&t),
        foreign_rules,
        "{backend}: the revert lost a ban made meanwhile"
    );
    assert_traffic(&t, 3, true, "after the failsafe revert");

    // Remove: nothing of ours left, theirs exactly as it was.
    if by_script {
        ok(
            script(&t, &scratch, backend, POLICY, "--remove"),
            "--remove",
        );
    } else {
        inner(&t, &scratch, backend, "remove", &[]);
    }
    assert_eq!(
        own(&t, backend),
        "",
        "{backend}: remove left the firewall's rules"
    );
    assert_eq!(
        foreign(&t),
        foreign_rules,
        "{backend}: remove changed other tools' rules"
    );
    assert!(
        !iptables_nft(&t).contains(":INPUT DROP"),
        "the built-in policies are back to ACCEPT"
    );
    assert_eq!(nat(&t), nat_before);
    assert_traffic(&t, 3, false, "after remove");
    // 8080, closed by the policy, is reachable again.
    assert!(t.tcp_connects(Ns::Outside, common::addr::FW_EXT_V4, 8080));
}

both_backends! {
    /// `exclusive;`: a failing exclusive apply (`apply()`) is rolled back with
    /// every other tool's rule; the script then replaces everything: the
    /// other tools' chains and rules are gone (a banned host gets in), the
    /// policy holds.
    fn exclusive_replaces_everything(backend, test) {
        let scratch = Scratch::new("fw-share", test);
        let t = Topology::new(test);
        let _web = t.listen_tcp(Ns::Firewall, 80);
        let _alt = t.listen_tcp(Ns::Firewall, 8080);
        install_foreign(&t);
        let before = foreign(&t);
        let exclusive = format!("{POLICY} exclusive;");
        inner(&t, &scratch, backend, "fail", &[("FW_SHARE_POLICY", &exclusive)]);
        assert_eq!(foreign(&t), before, "{backend}: the exclusive rollback lost other tools' rules");
        assert!(refused_from(&t, BANNED[0].0, common::addr::FW_EXT_V4, 80));
        let out = ok(script(&t, &scratch, backend, &exclusive, ""), "exclusive script");
        let _ = out;
        let now = iptables_nft(&t);
        assert!(!now.contains("f2b-sshd") && !now.contains("DOCKER"), "{backend}: exclusive left other tools' rules:\n{now}");
        assert!(
            common::eventually(3, || t.tcp_connects_from(Ns::Outside, BANNED[0].0, common::addr::FW_EXT_V4, 80)),
            "{backend}: the ban should be gone with fail2ban's chain"
        );
        assert!(!t.tcp_connects(Ns::Outside, common::addr::FW_EXT_V4, 8080));
    }

    /// The whole sequence by `apply()` and `remove()`.
    fn other_tools_rules_survive_apply(backend, test) {
        share(backend, test, false);
    }

    /// The whole sequence by the bash script and its `--remove`.
    fn other_tools_rules_survive_the_script(backend, test) {
        share(backend, test, true);
    }
}

/// The sequences with iptables-legacy: the backend, the other tools' rules
/// and every reading of them legacy.
mod legacy {
    use super::common::gate::{self, Need};

    fn run(name: &str, by_script: bool) {
        let test = format!("{name}::iptables_legacy");
        let ok = gate::require(&test, &[Need::Kernel])
            && ["iptables-legacy", "ip6tables-legacy"].iter().all(|tool| {
                gate::find_in_path(tool).is_some()
                    || gate::skip(
                        &test,
                        &format!("{tool} is missing (Debian package iptables)"),
                    )
            });
        if ok {
            super::LEGACY.with(|l| l.set(true));
            super::share("iptables-legacy", &test, by_script);
        }
    }

    #[test]
    fn other_tools_rules_survive_apply() {
        run("other_tools_rules_survive_apply", false);
    }

    #[test]
    fn other_tools_rules_survive_the_script() {
        run("other_tools_rules_survive_the_script", true);
    }
}
