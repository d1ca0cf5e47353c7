//! `apply()` and the generated bash script on the real kernel, in network
//! namespaces (issue 3): the DSL.md section 5 traffic matrix, identical rulesets,
//! idempotence, rollback (no table left behind), the failsafe (unconfirmed,
//! confirmed, applying process SIGKILLed), an established connection surviving,
//! and the apply-time SSH-session check.
//!
//! How `apply()` runs inside a namespace: this test binary is re-executed under
//! `ip netns exec FW` running the ignored test [`apply_inner`]
//! (`common::Topology::run_test_in`), which reads what to do from `FW_APPLY_*`
//! environment variables. The root namespace's firewall is never touched.
//!
//! Needs root, `ip netns`, iptables, nc, bash, setsid; under `CI=true` a missing
//! piece is a failure, not a skip (`common::kernel_tests_available`).

mod common;

use common::env_of;
use common::policy::parse;
use common::save::{Counters, Tools};
use common::scratch::{wait_until, PidGuard, Scratch};
use common::script_backend;
use common::{Ns, Topology, SECTION5_POLICY};
use firewall_core::apply::{self, ApplyError, Cause, Options, Rollback, Step};
use firewall_core::model::Iface;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const INNER: &str = "apply_inner";

/// Both families' rulesets as saved with counters, minus the timestamp
/// comment lines. The packet counters of the built-in chains' policies are
/// blanked (`[*]`): the kernel's own IPv6 chatter after the links came up
/// (router solicitations, MLD reports) passes OUTPUT at any moment and counts
/// there, which on a loaded machine made the comparison flaky. Rule counters
/// are kept (`common::save::Counters::Rules`).
fn raw_save(t: &Topology, tools: Tools) -> String {
    t.iptables_rulesets(Ns::Firewall, tools, Counters::Rules)
}

// ---------------------------------------------------------------------------
// The inner half: runs inside the firewall namespace
// ---------------------------------------------------------------------------

/// Breaks a rendered ruleset on purpose, editing one rule in place (so every
/// line keeps its origin): `nat` makes the second IPv4 table fail (the filter
/// table is committed by then), `v6` makes the IPv6 step fail (all of IPv4 is
/// committed by then).
fn break_rules(v4: &mut String, v6: &mut String, how: &str) {
    match how {
        "nat" => {
            assert!(v4.contains("-j MASQUERADE"), "the policy must masquerade");
            *v4 = v4.replace("-j MASQUERADE", "-j MASQUERADE --to-ports 1-99999");
        }
        "v6" => {
            assert!(v6.contains("--ctstate INVALID"), "{v6}");
            *v6 = v6.replacen("--ctstate INVALID", "--ctstate NO-SUCH-STATE", 1);
        }
        "" => {}
        other => panic!("unknown FW_APPLY_BREAK {other}"),
    }
}

/// The nftables file broken the same way, in place, with an error the
/// kernel (not nft's parser) reports, late in the one transaction: `nat`
/// puts a `dnat` into the NAT table's postrouting chain (after the whole
/// filter table), `v6` a `masquerade` into an IPv6 rule of the filter table.
fn break_nft(nft: &mut String, how: &str) {
    match how {
        "nat" => {
            assert!(nft.contains(" masquerade comment"), "{nft}");
            *nft = nft.replacen(" masquerade comment", " dnat to 203.0.113.2 comment", 1);
        }
        "v6" => {
            // In a base chain: in a user chain the kernel reports the rule
            // that jumps to it (then the statement named is that rule's).
            let line = nft
                .lines()
                .skip_while(|l| l.trim() != "chain input {")
                .find(|l| l.contains("meta nfproto ipv6") && l.contains(" accept comment"))
                .expect("an IPv6 accept rule in the input chain")
                .to_string();
            *nft = nft.replacen(
                &line,
                &line.replace(" accept comment", " masquerade comment"),
                1,
            );
        }
        "" => {}
        other => panic!("unknown FW_APPLY_BREAK {other}"),
    }
}

/// The first line (1-based) where `a` and `b` differ.
fn first_difference(a: &str, b: &str) -> Option<usize> {
    a.lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .map(|i| i + 1)
}

/// The policy's texts broken as `how` says, and the step and statement the
/// failure must name (the origin of the edited rule, from the printer's map).
fn broken_texts(
    texts: &apply::Texts,
    how: &str,
    backend: Option<apply::Backend>,
) -> (apply::Texts, Option<(Step, String)>) {
    let mut v4 = texts.ipv4.text().to_string();
    let mut v6 = texts.ipv6.text().to_string();
    let mut nft = texts.nft.text().to_string();
    break_rules(&mut v4, &mut v6, how);
    break_nft(&mut nft, how);
    let edited = texts
        .__edited(&v4, &v6, &nft)
        .unwrap_or_else(|e| panic!("{e}"));
    if how.is_empty() {
        return (edited, None);
    }
    let (step, printed, text) = match (backend, how) {
        (Some(apply::Backend::Nftables), _) => (Step::LoadNft, &texts.nft, &nft),
        (_, "nat") => (Step::LoadIpv4, &texts.ipv4, &v4),
        _ => (Step::LoadIpv6, &texts.ipv6, &v6),
    };
    let line = first_difference(printed.text(), text).expect("an edited line");
    let statement = printed
        .origin_at(line)
        .expect("the edited line holds a rule")
        .to_string();
    (edited, Some((step, statement)))
}

/// Applies `FW_APPLY_POLICY` to "this host" (the namespace it runs in) and
/// checks the outcome against `FW_APPLY_EXPECT` (`ok`, `fail`: the load
/// broken by `FW_APPLY_BREAK` fails naming the edited rule's statement and is
/// rolled back, `lockout`, `mismatch`). Prints `APPLIED <backup-dir>
/// <watchdog-pid> ... backend=NAME`.
#[test]
#[ignore = "runs inside a network namespace; started by the other tests of this file"]
fn apply_inner() {
    if common::inner_role().is_none() {
        return;
    }
    let policy = parse(&env_of("FW_APPLY_POLICY"));
    let backend = match env_of("FW_APPLY_BACKEND").as_str() {
        "" => None,
        name => Some(
            apply::Backend::from_name(name)
                .unwrap_or_else(|| panic!("FW_APPLY_BACKEND={name}: not a backend")),
        ),
    };
    let (texts, broken) = broken_texts(policy.texts(), &env_of("FW_APPLY_BREAK"), backend);
    let options = Options {
        failsafe: env_of("FW_APPLY_FAILSAFE")
            .parse()
            .ok()
            .map(Duration::from_secs),
        // Only the SSH test looks at SSH_CONNECTION; the others must not depend on
        // whether the test runner itself runs over SSH.
        allow_session_lockout: env_of("FW_APPLY_CHECK_SSH") != "1",
        ssh_session: None,
        backup_parent: Some(PathBuf::from(env_of("FW_APPLY_BACKUP_PARENT"))),
        backend,
        allow_missing: env_of("FW_APPLY_ALLOW_MISSING")
            .split_whitespace()
            .map(|i| Iface::new(i).unwrap_or_else(|e| panic!("FW_APPLY_ALLOW_MISSING: {e}")))
            .collect(),
        lock_wait: env_of("FW_APPLY_LOCK_WAIT")
            .parse()
            .ok()
            .map(Duration::from_secs),
        skip_kernel_check: false,
    };
    let result = apply::apply(policy.model(), &texts, options);
    let expect = env_of("FW_APPLY_EXPECT");
    match (expect.as_str(), result) {
        ("ok", Ok(mut applied)) => {
            let (dir, pid) = match &applied.failsafe {
                Some(g) => (
                    g.backup_dir().display().to_string(),
                    g.watchdog_pid().map_or(0, |p| p),
                ),
                None => ("-".to_string(), 0),
            };
            println!(
                "APPLIED {dir} {pid} elapsed_us={} kernel_checked={} backend={} rules={},{}",
                applied.elapsed.as_micros(),
                applied.kernel_checked,
                applied.backend,
                applied.rules.0,
                applied.rules.1
            );
            let _ = std::io::stdout().flush();
            if env_of("FW_APPLY_CONFIRM") == "1" {
                if let Err(e) = applied.confirm() {
                    panic!("confirm failed: {e}");
                }
                println!("CONFIRMED");
            }
            if env_of("FW_APPLY_HOLD") == "1" {
                // Wait to be SIGKILLed by the outer test (bounded all the same).
                std::thread::sleep(Duration::from_secs(30));
            }
        }
        ("fail", Err(e)) => {
            let (step, statement) = broken.expect("FW_APPLY_BREAK for a failure");
            assert_eq!(e.step(), Some(step), "{e}");
            match &e {
                ApplyError::Failed {
                    cause, rollback, ..
                } => {
                    assert_eq!(rollback, &Rollback::Restored, "{e}");
                    assert!(matches!(**cause, Cause::Rule { .. }), "{e}");
                }
                other => panic!("{other}"),
            }
            assert_eq!(e.statement(), Some(statement.as_str()), "{e}");
            println!("FAILED AS EXPECTED: {e}");
        }
        ("mismatch", Err(e @ ApplyError::BackendMismatch { .. })) => {
            println!("REFUSED AS EXPECTED: {e}");
        }
        ("lockout", Err(e @ ApplyError::SessionLockout { .. })) => {
            let text = e.to_string();
            assert!(text.contains("198.51.100.2"), "{text}");
            assert!(text.contains("open tcp 2222"), "{text}");
            println!("REFUSED AS EXPECTED: {e}");
        }
        (want, Ok(_)) => panic!("expected {want}, but the apply succeeded"),
        (want, Err(e)) => panic!("expected {want}, got: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Helpers of the outer tests
// ---------------------------------------------------------------------------

/// Runs [`apply_inner`] in the firewall namespace and checks it passed.
fn apply_in(t: &Topology, scratch: &Scratch, policy: &str, extra: &[(&str, &str)]) -> Output {
    let mut env = vec![
        ("FW_APPLY_POLICY", policy),
        ("FW_APPLY_BACKUP_PARENT", scratch.path()),
    ];
    if !extra.iter().any(|(k, _)| *k == "FW_APPLY_EXPECT") {
        env.push(("FW_APPLY_EXPECT", "ok"));
    }
    env.extend_from_slice(extra);
    t.run_test_in_ok(
        Ns::Firewall,
        INNER,
        &env,
        "apply() inside the firewall namespace",
    )
}

/// The `APPLIED <dir> <pid>` line of the inner test.
fn applied_line(out: &str) -> (String, u32) {
    let line = out
        .lines()
        .find_map(|l| l.find("APPLIED ").map(|i| &l[i + 8..]))
        .unwrap_or_else(|| panic!("no APPLIED line in:\n{out}"));
    let mut w = line.split_whitespace();
    let dir = w.next().unwrap_or("-").to_string();
    let pid = w.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (dir, pid)
}

/// Runs a script in the firewall namespace. Like the apply() tests, hermetic
/// about SSH: the script's session guard would otherwise look at the session
/// the test runner itself may run in (tests/apply_host.rs tests the guard).
fn run_bash(t: &Topology, script: &str) -> Output {
    t.run_script_in_firewall(&format!(
        "export FIREWALL_ALLOW_SESSION_LOCKOUT=1\n{script}"
    ))
}

/// The starting state for `backend`: for the iptables backends a populated
/// ruleset (filter rules, a user chain, a mangle table which no policy uses,
/// and ip6 rules), for nftables the firewall's own tables of an earlier
/// ruleset beside a foreign table ([`script_backend::populate`]).
fn populate_for(t: &Topology, backend: &str) {
    script_backend::populate_with(
        t,
        backend,
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:old-chain - [0:0]\n-A INPUT -p tcp --dport 9 -j old-chain\n-A old-chain -j DROP\nCOMMIT\n*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -p udp --dport 9 -j MARK --set-mark 0x9\nCOMMIT\n",
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 9 -j DROP\nCOMMIT\n",
    );
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

both_backends! {
    /// Section 5 with apply(), then with the bash script: every row holds for
    /// both, over IPv4 and IPv6, both leave the identical ruleset, and applying
    /// twice changes nothing; the backend reported is the one asked for and
    /// the counted rules are the rules per family (nftables: nothing is
    /// loaded through iptables). A policy without NAT then removes the NAT
    /// rules of the earlier one.
    fn section5_matrix_apply_and_bash_leave_identical_rulesets(backend, test) {
        let scratch = Scratch::new("fw-apply", test);
        let policy = parse(SECTION5_POLICY);
        let use_backend = [("FW_APPLY_BACKEND", backend)];

        let t = Topology::new(test);
        assert!(!t.ip_forward());
        let iptables_before = t.ruleset(Ns::Firewall);
        let out = apply_in(&t, &scratch, SECTION5_POLICY, &use_backend);
        assert_eq!(applied_field(&out, "backend"), backend);
        let texts = policy.texts();
        let (v4, v6) = (firewall_core::plan::Family::V4, firewall_core::plan::Family::V6);
        let rules = match backend {
            "nftables" => format!("{},{}", texts.nft.rules_of(v4), texts.nft.rules_of(v6)),
            _ => format!("{},{}", texts.ipv4.rules_of(v4), texts.ipv6.rules_of(v6)),
        };
        assert_eq!(applied_field(&out, "rules"), rules, "{backend}");
        assert!(t.ip_forward(), "apply() of a router must set ip_forward");
        // Section 8: the kernel's options were checked (and all there) before
        // anything changed, wherever its configuration can be read.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        if std::path::Path::new("/proc/config.gz").exists()
            || std::path::Path::new(&format!("/boot/config-{}", release.trim())).exists()
        {
            assert_eq!(applied_field(&out, "kernel_checked"), "true");
        }
        common::assert_section5_matrix(&t);
        if backend == "nftables" {
            let nft = script_backend::nft_ruleset(&t);
            assert!(
                nft.contains("table inet firewall {") && nft.contains("table ip firewall_nat {"),
                "{nft}"
            );
            assert_eq!(
                t.ruleset(Ns::Firewall),
                iptables_before,
                "an nftables apply loaded iptables rules"
            );
        }
        let by_apply = script_backend::state(&t, backend);
        apply_in(&t, &scratch, SECTION5_POLICY, &use_backend);
        assert_eq!(
            script_backend::state(&t, backend),
            by_apply,
            "applying twice changed the ruleset"
        );
        // A policy without NAT removes the NAT rules of the earlier one.
        apply_in(&t, &scratch, NON_ROUTER, &use_backend);
        let host = script_backend::state(&t, backend);
        assert!(
            !host.contains("firewall_nat") && !host.contains("MASQUERADE"),
            "{host}"
        );

        let b = Topology::new(&format!("{test}_bash"));
        let out = run_bash(&b, &format!("export FIREWALL_BACKEND={backend}\n{}", policy.bash()));
        assert!(out.status.success(), "{}", common::describe("bash()", &out));
        assert!(b.ip_forward());
        common::assert_section5_matrix(&b);
        assert_eq!(
            script_backend::state(&b, backend),
            by_apply,
            "apply() and the bash script leave different rulesets"
        );
        // No backup directory is left after a successful apply without failsafe.
        assert_eq!(
            std::fs::read_dir(&scratch.0)
                .map(|d| d.count())
                .unwrap_or(0),
            0
        );
    }

    /// A load that fails late (iptables: in the second IPv4 table, or in the
    /// IPv6 step; nftables: in the NAT table or an IPv6 rule, errors the
    /// kernel reports when the one transaction commits) leaves the previous
    /// ruleset byte-identical and ip_forward unchanged, from an empty and from
    /// a populated ruleset (no table left behind; nftables: the foreign table
    /// and the earlier own tables stay, in the order listed: the rollback does
    /// not recreate tables that equal the backup). apply() names the
    /// statement of the broken rule; the script (broken the same way) exits 1,
    /// "previous rules and ip_forward restored". The traffic (IPv4 and IPv6)
    /// is what the previous rules decide; no backup is left.
    fn rollback_leaves_previous_ruleset_identical(backend, test) {
        let scratch = Scratch::new("fw-apply", test);
        let policy = parse(SECTION5_POLICY);
        let t = Topology::new(test);
        for populated in [false, true] {
            if populated {
                populate_for(&t, backend);
            }
            for how in ["nat", "v6"] {
                let what = format!("{how}, populated={populated}, {backend}");
                let before = script_backend::state(&t, backend);
                let raw_before = raw_save(&t, Tools::Default);
                let listed = script_backend::nft_ruleset_as_listed(&t);
                let unchanged = |by: &str| {
                    assert_eq!(raw_save(&t, Tools::Default), raw_before, "{by} ({what})");
                    assert_eq!(script_backend::state(&t, backend), before, "{by} ({what})");
                    if backend == "nftables" {
                        assert_eq!(
                            script_backend::nft_ruleset_as_listed(&t),
                            listed,
                            "{by} recreated tables ({what})"
                        );
                    }
                    assert!(!t.ip_forward(), "{by}: ip_forward changed ({what})");
                };
                apply_in(
                    &t,
                    &scratch,
                    SECTION5_POLICY,
                    &[
                        ("FW_APPLY_BACKEND", backend),
                        ("FW_APPLY_BREAK", how),
                        ("FW_APPLY_EXPECT", "fail"),
                    ],
                );
                unchanged("apply() rollback");
                // The bash script, broken the same way.
                let mut v4 = policy.iptables_restore().to_string();
                let mut v6 = policy.ip6tables_restore().to_string();
                let mut nft = policy.nft().to_string();
                break_rules(&mut v4, &mut v6, how);
                break_nft(&mut nft, how);
                let script = firewall_core::render::bash::script(policy.model(), &v4, &v6, &nft);
                let out = run_bash(
                    &t,
                    &format!(
                        "export TMPDIR={} FIREWALL_BACKEND={backend}\n{script}",
                        scratch.path()
                    ),
                );
                assert_eq!(
                    out.status.code(),
                    Some(1),
                    "{what}: {}",
                    common::describe("broken script", &out)
                );
                assert!(
                    String::from_utf8_lossy(&out.stderr)
                        .contains("previous rules and ip_forward restored"),
                    "{}",
                    common::describe("broken script", &out)
                );
                unchanged("script rollback");
            }
            // Ports 22, 80, 9 and 7 from the outside, IPv4 then IPv6: the
            // previous rules drop 9, the foreign table 7.
            let foreign = populated && backend == "nftables";
            let want = [true, true, !populated, !foreign].repeat(2);
            let got: Vec<bool> = reachable(&t, &[22, 80, 9, 7])
                .iter()
                .map(|(_, ok)| *ok)
                .collect();
            assert_eq!(got, want, "populated={populated}, {backend}");
        }
        assert_eq!(
            std::fs::read_dir(&scratch.0)
                .map(|d| d.count())
                .unwrap_or(0),
            0,
            "a backup directory was left behind"
        );
    }

    /// Failsafe, apply(): not confirmed -> the previous rules are back after
    /// the deadline (the applying process has exited by then), ip_forward
    /// off, the traffic as before (IPv4 and IPv6); nftables: only the own
    /// tables are restored, a table added meanwhile survives. Confirmed ->
    /// kept, section 5 holds.
    fn failsafe_apply_unconfirmed_reverts_confirmed_keeps(backend, test) {
        let scratch = Scratch::new("fw-apply", test);
        let t = Topology::new(test);
        populate_for(&t, backend);
        let before = script_backend::state(&t, backend);

        // Not confirmed.
        // A window of 6 s: long enough that a loaded 2-core CI machine still
        // sees the new rules before the deadline; the test waits for the revert.
        let out = apply_in(
            &t,
            &scratch,
            SECTION5_POLICY,
            &[("FW_APPLY_FAILSAFE", "6"), ("FW_APPLY_BACKEND", backend)],
        );
        let (_, pid) = applied_line(&String::from_utf8_lossy(&out.stdout));
        let wd = PidGuard(pid);
        assert_ne!(pid, 0, "no watchdog pid");
        assert_ne!(
            script_backend::state(&t, backend),
            before,
            "the policy was not applied"
        );
        assert!(t.ip_forward());
        let own_before = script_backend::own_tables(&before);
        if backend == "nftables" {
            // A table of the host's, added while the failsafe is pending.
            script_backend::nft_load(&t, LATER_TABLE);
        }
        let back = || match backend {
            "nftables" => script_backend::own_tables(&script_backend::nft_ruleset(&t)) == own_before,
            _ => script_backend::state(&t, backend) == before,
        };
        assert!(
            wait_until(Duration::from_secs(15), back),
            "the previous rules did not come back after the failsafe deadline; the watchdog's logs:\n{}\nwanted:\n{before}\nnow:\n{}",
            watchdog_logs(&scratch.0),
            script_backend::state(&t, backend)
        );
        assert!(wait_until(Duration::from_secs(2), || !t.ip_forward()));
        assert!(
            wd.exits_within(Duration::from_secs(3)),
            "watchdog still running"
        );
        if backend == "nftables" {
            let now = script_backend::nft_ruleset(&t);
            assert!(
                now.contains("table inet later {") && now.contains(script_backend::FOREIGN_TABLE),
                "the revert removed a table that is not the firewall's:\n{now}"
            );
        }
        // The rules' effect: the previous rules drop port 9 only.
        let got: Vec<bool> = reachable(&t, &[22, 80, 9]).iter().map(|(_, ok)| *ok).collect();
        assert_eq!(got, [true, true, false].repeat(2), "{backend}");

        // Confirmed: a long window (the confirmation must not race a deadline
        // on a loaded machine); once the watchdog has exited nothing can revert.
        let out = apply_in(
            &t,
            &scratch,
            SECTION5_POLICY,
            &[
                ("FW_APPLY_FAILSAFE", "60"),
                ("FW_APPLY_CONFIRM", "1"),
                ("FW_APPLY_BACKEND", backend),
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("CONFIRMED"), "{stdout}");
        let (_, pid) = applied_line(&stdout);
        let wd = PidGuard(pid);
        assert!(
            wd.exits_within(Duration::from_secs(3)),
            "watchdog did not exit after confirm"
        );
        assert_ne!(pid, 0, "no watchdog pid");
        assert_ne!(
            script_backend::state(&t, backend),
            before,
            "confirmed rules were reverted"
        );
        assert!(t.ip_forward());
        common::assert_section5_matrix(&t);
    }

    /// Failsafe, apply(): the applying process is SIGKILLed right after
    /// applying; the detached watchdog still brings the previous rules back.
    fn failsafe_survives_sigkill_of_the_applying_process(backend, test) {
        sigkill_after_apply(test, backend);
    }
}

/// A table of the host's own that appears while a failsafe is pending.
const LATER_TABLE: &str = "table inet later {\n\tchain input {\n\t\ttype filter hook input priority filter + 20; policy accept;\n\t}\n}\n";

/// Applies section 5 with a failsafe and `backend`, SIGKILLs the applying
/// process once it has applied, and waits for `state` to be the previous one.
fn sigkill_after_apply(test: &str, backend: &str) {
    let state = |t: &Topology| script_backend::state(t, backend);
    let scratch = Scratch::new("fw-apply", test);
    let t = Topology::new(test);
    let before = state(&t);
    let exe = std::env::current_exe().expect("test binary path");
    let mut child: Child = Command::new("ip")
        .args(["netns", "exec", t.name(Ns::Firewall), "env", "--"])
        .arg(format!("{}=firewall", common::INNER_ENV))
        .arg(format!("FW_APPLY_POLICY={SECTION5_POLICY}"))
        .arg(format!("FW_APPLY_BACKUP_PARENT={}", scratch.path()))
        .arg(format!("FW_APPLY_BACKEND={backend}"))
        .args([
            "FW_APPLY_EXPECT=ok",
            "FW_APPLY_FAILSAFE=6",
            "FW_APPLY_HOLD=1",
        ])
        .arg(&exe)
        .args([
            "--exact",
            INNER,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the applying process");
    // Read its output on a thread, so that the wait below is bounded.
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("APPLIED ") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    // SIGKILL (Child::kill) the applying process, whatever happened.
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("the applying process did not report APPLIED");
    assert!(line.contains(&format!("backend={backend}")), "{line}");
    let (_, pid) = applied_line(&line);
    let wd = PidGuard(pid);
    assert_ne!(state(&t), before, "the policy was not applied");
    assert!(
        wait_until(Duration::from_secs(15), || state(&t) == before),
        "after SIGKILL of the applying process the previous rules did not come back"
    );
    assert!(wait_until(Duration::from_secs(2), || !t.ip_forward()));
    assert!(wd.exits_within(Duration::from_secs(3)));
}

both_backends! {
    /// Failsafe, bash script: not confirmed -> reverted after the deadline (the
    /// script has long exited); confirmed with the printed command -> kept.
    fn failsafe_bash_script_unconfirmed_reverts_confirmed_keeps(backend, test) {
        let scratch = Scratch::new("fw-apply", test);
        // 6 s: a loaded machine still sees the new rules before the deadline.
        let policy = parse(&format!("{SECTION5_POLICY}failsafe 6s;\n"));
        let t = Topology::new(test);
        populate_for(&t, backend);
        let before = script_backend::state(&t, backend);
        let script = format!(
            "export TMPDIR={} FIREWALL_BACKEND={backend}\n{}",
            scratch.path(),
            policy.bash()
        );

        let out = run_bash(&t, &script);
        assert!(out.status.success(), "{}", common::describe("script", &out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("to keep the new rules, run:"), "{text}");
        assert_ne!(script_backend::state(&t, backend), before);
        let pid = watchdog_pid_in(&scratch.0);
        let wd = PidGuard(pid);
        assert!(
            wait_until(Duration::from_secs(15), || script_backend::state(
                &t, backend
            ) == before),
            "the script's failsafe did not restore the previous rules"
        );
        assert!(wait_until(Duration::from_secs(2), || !t.ip_forward()));
        assert!(wd.exits_within(Duration::from_secs(3)));
        let _ = std::fs::remove_dir_all(&scratch.0);
        let _ = std::fs::create_dir_all(&scratch.0);

        // Confirmed: a long window, so the confirmation cannot race the deadline.
        let policy = parse(&format!("{SECTION5_POLICY}failsafe 60s;\n"));
        let script = format!(
            "export TMPDIR={} FIREWALL_BACKEND={backend}\n{}",
            scratch.path(),
            policy.bash()
        );
        let out = run_bash(&t, &script);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let confirm = text
            .lines()
            .find_map(|l| {
                l.split_once("to keep the new rules, run:  ")
                    .map(|(_, c)| c.to_string())
            })
            .expect("the script prints the confirm command");
        let pid = watchdog_pid_in(&scratch.0);
        let wd = PidGuard(pid);
        let out = t.exec(Ns::Firewall, &["bash", "-c", &confirm]);
        assert!(
            out.status.success(),
            "{}",
            common::describe("confirm", &out)
        );
        // The watchdog has exited: no deadline can revert any more.
        assert_ne!(pid, 0, "no watchdog");
        assert!(wd.exits_within(Duration::from_secs(3)));
        let applied = script_backend::state(&t, backend);
        assert_ne!(applied, before, "confirmed rules were reverted");
    }
}

/// The watchdog pid written into the (single) backup directory under `parent`.
fn watchdog_pid_in(parent: &Path) -> u32 {
    let mut pid = 0;
    wait_until(Duration::from_secs(3), || {
        let Ok(entries) = std::fs::read_dir(parent) else {
            return false;
        };
        for e in entries.flatten() {
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

both_backends! {
    /// An established TCP connection to the SSH port survives apply()
    /// (nftables: the own tables are replaced, deleted and declared anew, in one
    /// transaction; the connection's conntrack entry and `ct state established`
    /// carry it).
    fn established_ssh_connection_survives_apply(backend, test) {
        let scratch = Scratch::new("fw-apply", test);
        let t = Topology::new(test);
        let log = scratch.0.join("server.log");
        let log_s = log.to_str().expect("UTF-8 path").to_string();
        // Server: one connection on port 22, everything received goes to the log.
        let mut server = Command::new("ip")
            .args([
                "netns",
                "exec",
                t.name(Ns::Firewall),
                "timeout",
                "20",
                "bash",
                "-c",
            ])
            .arg(format!("nc -l -n 22 > {log_s}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the server");
        std::thread::sleep(Duration::from_millis(500));
        // Client: connect, send, wait while the policy is applied, send again on the same connection.
        let mut client = Command::new("ip")
            .args(["netns", "exec", t.name(Ns::Outside), "timeout", "20", "bash", "-c"])
            .arg(format!(
                "exec 3<>/dev/tcp/{}/22; echo before >&3; sleep 3; echo after >&3; sleep 0.5; exec 3>&-",
                common::addr::FW_EXT_V4
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the client");
        std::thread::sleep(Duration::from_secs(1));
        apply_in(
            &t,
            &scratch,
            SECTION5_POLICY,
            &[("FW_APPLY_BACKEND", backend)],
        );
        let client_ok = client.wait().map(|s| s.success()).unwrap_or(false);
        let _ = wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&log).is_ok_and(|s| s.contains("after"))
        });
        let _ = server.kill();
        let _ = server.wait();
        let got = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(client_ok, "the client's connection broke during apply()");
        assert_eq!(
            got, "before\nafter\n",
            "the established connection did not survive"
        );
    }
}

both_backends! {
    /// Inside a (simulated) SSH session from the outside host to port 2222, a policy
    /// that does not accept 2222 is refused; nothing is changed. Opening it passes.
    fn ssh_session_check_refuses_a_policy_that_cuts_the_session(backend, test) {
        let scratch = Scratch::new("fw-apply", test);
        let t = Topology::new(test);
        let before = script_backend::state(&t, backend);
        let session = format!(
            "{} 50000 {} 2222",
            common::addr::OUTSIDE_V4,
            common::addr::FW_EXT_V4
        );
        let out = apply_in(
            &t,
            &scratch,
            SECTION5_POLICY,
            &[
                ("FW_APPLY_CHECK_SSH", "1"),
                ("SSH_CONNECTION", &session),
                ("FW_APPLY_EXPECT", "lockout"),
                ("FW_APPLY_BACKEND", backend),
            ],
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("REFUSED AS EXPECTED"));
        assert_eq!(
            script_backend::state(&t, backend),
            before,
            "a refused apply changed rules"
        );
        let fixed = format!("{SECTION5_POLICY}open tcp 2222 from 198.51.100.0/24;\n");
        apply_in(
            &t,
            &scratch,
            &fixed,
            &[
                ("FW_APPLY_CHECK_SSH", "1"),
                ("SSH_CONNECTION", &session),
                ("FW_APPLY_BACKEND", backend),
            ],
        );
        assert_ne!(script_backend::state(&t, backend), before);
        let _sshd = t.listen_tcp(Ns::Firewall, 2222);
        assert!(
            t.tcp_connects(Ns::Outside, common::addr::FW_EXT_V4, 2222),
            "{backend}: the session's port is not open after the fixed apply"
        );
    }
}

/// The children of process `pid` (from /proc).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

both_backends! {
    /// Failsafe, bash script: the script waits for "yes" on its terminal; it is
    /// SIGKILLed there (a cut SSH session that takes the shell with it). The
    /// detached watchdog still restores the previous rules at the deadline.
    fn failsafe_bash_script_survives_sigkill_at_the_prompt(backend, test) {
        if !common::wrappers::script_tool_available() {
            return;
        }
        let scratch = Scratch::new("fw-apply", test);
        // 6 s: a loaded machine still sees the new rules before the deadline.
        let policy = parse(&format!("{SECTION5_POLICY}failsafe 6s;\n"));
        let t = Topology::new(test);
        populate_for(&t, backend);
        let before = script_backend::state(&t, backend);
        let file = scratch.0.join("firewall.sh");
        std::fs::write(
            &file,
            format!(
                "export TMPDIR={} FIREWALL_BACKEND={backend}\n{}",
                scratch.path(),
                policy.bash()
            ),
        )
        .expect("writing the script");
        // `script` gives the bash script a terminal, so it stops at its prompt.
        let mut term: Child = Command::new("ip")
            .args([
                "netns",
                "exec",
                t.name(Ns::Firewall),
                "timeout",
                "30",
                "script",
                "-qfec",
            ])
            .arg(format!("bash {}", file.display()))
            .arg("/dev/null")
            .stdin(Stdio::piped()) // held open: no answer ever comes
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting script(1)");
        let changed = wait_until(Duration::from_secs(10), || {
            script_backend::state(&t, backend) != before
        });
        let pid = watchdog_pid_in(&scratch.0);
        let wd = PidGuard(pid);
        // timeout -> script -> bash: SIGKILL the bash script and its terminal.
        let mut victims = Vec::new();
        let mut queue = vec![term.id()];
        while let Some(p) = queue.pop() {
            queue.extend(children(p));
            victims.push(p);
        }
        for p in victims.iter().rev() {
            let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
        }
        let _ = term.kill();
        let _ = term.wait();
        assert!(changed, "the script did not apply the policy");
        assert_ne!(pid, 0, "no watchdog");
        assert!(
            victims.len() >= 3,
            "expected timeout, script and bash processes, got {victims:?}"
        );
        assert!(
            wait_until(Duration::from_secs(15), || script_backend::state(&t, backend)
                == before),
            "after SIGKILL of the bash script the previous rules did not come back; the watchdog's logs:\n{}",
            watchdog_logs(&scratch.0)
        );
        assert!(wait_until(Duration::from_secs(2), || !t.ip_forward()));
        assert!(wd.exits_within(Duration::from_secs(3)));
    }
}

/// Every backup directory's `log` under `parent` (what the watchdogs did), for
/// failure messages.
fn watchdog_logs(parent: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let log = entry.path().join("log");
        if let Ok(text) = std::fs::read_to_string(&log) {
            out.push_str(&format!("{}:\n{text}", log.display()));
        }
        let files: Vec<String> = std::fs::read_dir(entry.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        out.push_str(&format!("{}: {files:?}\n", entry.path().display()));
    }
    out
}

/// The legacy backend: apply() saves, loads and rolls back with the
/// iptables-legacy tools only (nothing appears in the nf_tables view), and a
/// load that fails in its second table leaves the previous legacy ruleset
/// byte-identical. (x_tables tables cannot be deleted, so this starts from a
/// ruleset that has every table the policy loads; on legacy, a table the
/// apply created is left empty with ACCEPT policies.)
#[test]
fn legacy_backend_apply_and_rollback() {
    if !common::kernel_tests_available("legacy_backend_apply_and_rollback") {
        return;
    }
    let have_legacy = common::wrappers::installed_in(
        &["/usr/sbin", "/sbin"],
        &["iptables-legacy-restore", "ip6tables-legacy-restore"],
    );
    if !have_legacy {
        // Debian's iptables package (which .ci/run installs) ships both
        // backends, so CI must run this; elsewhere a skip says why.
        common::gate::skip(
            "legacy_backend_apply_and_rollback",
            "the iptables-legacy tools (Debian package iptables)",
        );
        return;
    }
    let scratch = Scratch::new("fw-apply", "legacy");
    let t = Topology::new("apply_legacy");
    let tables = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 9 -j DROP\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n";
    for tool in ["iptables-legacy-restore", "ip6tables-legacy-restore"] {
        let out = t.exec_with_stdin(Ns::Firewall, &[tool], tables);
        assert!(out.status.success(), "{}", common::describe(tool, &out));
    }
    // Counters included, but not those of the built-in chains' policies: the
    // kernel's own IPv6 traffic (MLD reports, DAD) moves them at any moment.
    let before = raw_save(&t, Tools::Legacy);
    let nft_before = t.ruleset(Ns::Firewall);
    apply_in(
        &t,
        &scratch,
        SECTION5_POLICY,
        &[
            ("FW_APPLY_BACKEND", "iptables-legacy"),
            ("FW_APPLY_BREAK", "nat"),
            ("FW_APPLY_EXPECT", "fail"),
        ],
    );
    assert_eq!(raw_save(&t, Tools::Legacy), before, "legacy rollback");
    assert!(!t.ip_forward());
    apply_in(
        &t,
        &scratch,
        SECTION5_POLICY,
        &[("FW_APPLY_BACKEND", "iptables-legacy")],
    );
    let after = raw_save(&t, Tools::Legacy);
    assert!(after.contains("open tcp 22, 80"), "{after}");
    assert_eq!(
        t.ruleset(Ns::Firewall),
        nft_before,
        "a legacy apply touched the nf_tables ruleset"
    );
}

// ---------------------------------------------------------------------------
// The nftables backend (issue 7), and the backend detection
// ---------------------------------------------------------------------------

/// Which of `ports` of the firewall the outside host reaches, over IPv4
/// and then IPv6 (listeners on all of them): the rules' effect.
fn reachable(t: &Topology, ports: &[u16]) -> Vec<(String, bool)> {
    let _l: Vec<_> = ports
        .iter()
        .map(|&p| t.listen_tcp(Ns::Firewall, p))
        .collect();
    let mut out = Vec::new();
    for addr in [common::addr::FW_EXT_V4, common::addr::FW_EXT_V6] {
        for &port in ports {
            out.push((
                format!("{addr} port {port}"),
                t.tcp_connects(Ns::Outside, addr, port),
            ));
        }
    }
    out
}

/// The field `key=` of the APPLIED line.
fn applied_field(out: &Output, key: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find(|l| l.contains("APPLIED "))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{key}=")))
        })
        .unwrap_or_else(|| panic!("no {key}= in:\n{stdout}"))
        .to_string()
}

const NON_ROUTER: &str = common::NON_ROUTER_POLICY;

// Single-backend on purpose: the detection tests are about which backend
// apply() picks by itself, the legacy tests about the iptables-legacy tools.

/// Detection on a fresh host: iptables-nft (what `iptables -V` names here),
/// and the rules work (section 5, IPv4 and IPv6).
#[test]
fn detection_fresh_host_is_iptables_nft() {
    if !common::kernel_tests_available("detection_fresh_host_is_iptables_nft") {
        return;
    }
    let scratch = Scratch::new("fw-apply", "detect-fresh");
    let t = Topology::new("detect_fresh");
    let out = apply_in(&t, &scratch, SECTION5_POLICY, &[]);
    assert_eq!(applied_field(&out, "backend"), "iptables-nft");
    assert!(t.ruleset(Ns::Firewall).contains("open tcp 22, 80"));
    assert!(!script_backend::nft_ruleset(&t).contains("table inet firewall"));
    common::assert_section5_matrix(&t);
}

/// Detection: the firewall's own tables present (applied with nftables
/// before) -> nftables, although iptables is iptables-nft; a native
/// nftables table of the host -> nftables too. The foreign table survives,
/// and the new rules are in force.
#[test]
fn detection_own_tables_or_a_native_table_is_nftables() {
    if !common::kernel_tests_available("detection_own_tables_or_a_native_table_is_nftables") {
        return;
    }
    let scratch = Scratch::new("fw-apply", "detect-nft");
    let t = Topology::new("detect_own");
    apply_in(
        &t,
        &scratch,
        NON_ROUTER,
        &[("FW_APPLY_BACKEND", "nftables")],
    );
    let out = apply_in(&t, &scratch, SECTION5_POLICY, &[]);
    assert_eq!(applied_field(&out, "backend"), "nftables");
    assert!(!t.ruleset(Ns::Firewall).contains("open tcp"));
    common::assert_section5_matrix(&t);

    let t = Topology::new("detect_native");
    script_backend::nft_load(&t, script_backend::FOREIGN_TABLE);
    let out = apply_in(&t, &scratch, NON_ROUTER, &[]);
    assert_eq!(applied_field(&out, "backend"), "nftables");
    assert!(script_backend::nft_ruleset(&t).contains(script_backend::FOREIGN_TABLE));
    assert!(!t.ruleset(Ns::Firewall).contains("open tcp"));
    let got: Vec<bool> = reachable(&t, &[22, 80, 9])
        .iter()
        .map(|(_, ok)| *ok)
        .collect();
    assert_eq!(got, vec![true, false, false, true, false, false]);
}

/// Detection: legacy rules while `iptables` is iptables-nft -> refused
/// (BackendMismatch), nothing changed; chosen explicitly, it applies.
#[test]
fn detection_legacy_rules_with_nft_iptables_is_a_mismatch() {
    if !common::kernel_tests_available("detection_legacy_rules_with_nft_iptables_is_a_mismatch") {
        return;
    }
    if !common::wrappers::installed_in(
        &["/usr/sbin", "/sbin"],
        &["iptables-legacy-restore", "iptables-legacy-save"],
    ) {
        common::gate::skip(
            "detection_legacy_rules_with_nft_iptables_is_a_mismatch",
            "the iptables-legacy tools (Debian package iptables)",
        );
        return;
    }
    let scratch = Scratch::new("fw-apply", "detect-legacy");
    let t = Topology::new("detect_legacy");
    let legacy = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 9 -j DROP\nCOMMIT\n";
    let out = t.exec_with_stdin(Ns::Firewall, &["iptables-legacy-restore"], legacy);
    assert!(out.status.success(), "{}", common::describe("legacy", &out));
    let before = (t.ruleset(Ns::Firewall), script_backend::nft_ruleset(&t));
    let out = apply_in(
        &t,
        &scratch,
        SECTION5_POLICY,
        &[("FW_APPLY_EXPECT", "mismatch")],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("iptables-legacy-save") && text.contains("--dport 9"),
        "{text}"
    );
    assert_eq!(
        (t.ruleset(Ns::Firewall), script_backend::nft_ruleset(&t)),
        before
    );
    assert!(!t.ip_forward());
    // The legacy rule is in force (port 9 dropped, 22 open) and stays so.
    let got: Vec<bool> = reachable(&t, &[22, 80, 9])
        .iter()
        .map(|(_, ok)| *ok)
        .collect();
    assert_eq!(got, vec![true, true, false, true, true, true]);
}
