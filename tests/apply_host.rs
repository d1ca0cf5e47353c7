//! What `apply()` and the bash script check about the host before changing
//! anything (issue 6, items 7, 8 and 13), on the real kernel in network
//! namespaces: a missing `extif`, the SSH-session guard against real traffic
//! (IPv4 and IPv6), a rollback whose restore tool fails while the host is
//! unchanged, and unusable backup locations.
//!
//! `apply()` runs inside the firewall namespace by re-executing this test binary
//! (the ignored test [`host_inner`], driven by `FW_HOST_*` variables), as in
//! tests/apply.rs. The script runs there with `bash -s`.

mod common;

use common::env_of;
use common::policy::parse;
use common::scratch::Scratch;
use common::script_backend::{self, nft_ruleset, state};
use common::{Ns, Topology};
use firewall_core::apply::{self, ApplyError, Options, Rollback};
use firewall_core::model::Iface;
use std::path::PathBuf;
use std::process::Output;

const INNER: &str = "host_inner";

/// Applies `FW_HOST_POLICY` to the namespace it runs in; `FW_HOST_EXPECT` is
/// `ok`, `missing`, `lockout`, `unreadable`, `restored` (a failed load whose rollback reports
/// the host unchanged) or `backup` (an unusable backup location).
#[test]
#[ignore = "runs inside a network namespace; started by the other tests of this file"]
fn host_inner() {
    if common::inner_role().is_none() {
        return;
    }
    let policy = parse(&env_of("FW_HOST_POLICY"));
    let backup = env_of("FW_HOST_BACKUP_PARENT");
    if env_of("FW_HOST_RO_BACKUP") == "1" {
        // `ip netns exec` gave this process its own mount namespace (slave
        // propagation): this read-only mount is invisible everywhere else.
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=64k", "fw-ro", &backup])
            .output()
            .expect("mount");
        assert!(out.status.success(), "{}", common::describe("mount", &out));
    }
    let options = Options {
        allow_session_lockout: env_of("FW_HOST_ALLOW_LOCKOUT") == "1",
        backup_parent: Some(PathBuf::from(&backup)),
        allow_missing: env_of("FW_HOST_ALLOW_MISSING")
            .split_whitespace()
            .map(|i| Iface::new(i).unwrap_or_else(|e| panic!("{i}: {e}")))
            .collect(),
        backend: apply::Backend::from_name(&env_of("FW_HOST_BACKEND")),
        ..Options::default()
    };
    let result = apply::apply(policy.model(), policy.texts(), options);
    match (env_of("FW_HOST_EXPECT").as_str(), result) {
        ("ok", Ok(_)) => println!("APPLIED"),
        ("missing", Err(e @ ApplyError::MissingInterface { .. })) => {
            println!("REFUSED AS EXPECTED: {e}")
        }
        ("lockout", Err(e @ ApplyError::SessionLockout { .. })) => {
            println!("REFUSED AS EXPECTED: {e}")
        }
        ("unreadable", Err(e @ ApplyError::SessionUnreadable { .. })) => {
            println!("REFUSED AS EXPECTED: {e}")
        }
        ("restored", Err(e @ ApplyError::Failed { .. })) => {
            assert!(e.host_unchanged(), "{e}");
            assert!(
                matches!(
                    &e,
                    ApplyError::Failed {
                        rollback: Rollback::Restored,
                        ..
                    }
                ),
                "{e}"
            );
            let text = e.to_string();
            assert!(!text.contains("FAILED"), "{text}");
            println!("FAILED AND RESTORED AS EXPECTED: {e}");
        }
        ("backend", Err(e @ ApplyError::BackendMismatch { .. })) => {
            println!("REFUSED AS EXPECTED: {e}")
        }
        ("backup", Err(e @ ApplyError::BackupLocation { .. })) => {
            let text = e.to_string();
            assert!(text.contains(&backup), "{text}");
            assert!(
                text.contains("backup_parent") && text.contains("TMPDIR"),
                "{text}"
            );
            println!("REFUSED AS EXPECTED: {e}");
        }
        (want, Ok(_)) => panic!("expected {want}, but the apply succeeded"),
        (want, Err(e)) => panic!("expected {want}, got: {e}"),
    }
}

/// Runs [`host_inner`] in the firewall namespace; panics unless it passed.
fn apply_in(t: &Topology, scratch: &Scratch, policy: &str, env: &[(&str, &str)]) -> String {
    let mut all = vec![
        ("FW_HOST_POLICY", policy),
        ("FW_HOST_BACKUP_PARENT", scratch.path()),
    ];
    all.extend_from_slice(env);
    let out = t.run_test_in_ok(
        Ns::Firewall,
        INNER,
        &all,
        "apply() in the firewall namespace",
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the policy's bash script in the firewall namespace with `exports`
/// (`NAME=value` lines) set first.
fn script_in(t: &Topology, scratch: &Scratch, policy: &str, exports: &[(&str, &str)]) -> Output {
    let mut text = format!("export TMPDIR={}\n", scratch.path());
    for (k, v) in exports {
        text.push_str(&format!("export {k}='{v}'\n"));
    }
    text.push_str(parse(policy).bash());
    t.run_script_in_firewall(&text)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

both_backends! {
    /// Item 7: `extif eht0` (a typo) on a host with eth0: apply() and the script
    /// refuse before changing anything and name the host's interfaces; with the
    /// override they apply (the same rules); a wildcard passes.
    fn missing_extif_is_refused_by_apply_and_script(backend, test) {
        let scratch = Scratch::new("fw-host", test);
        let t = Topology::new(test);
        let before = state(&t, backend);
        let typo = "extif eht0;\nopen tcp 22;\n";
        let use_backend = ("FW_HOST_BACKEND", backend);
        let script_backend = ("FIREWALL_BACKEND", backend);

        let out = apply_in(&t, &scratch, typo, &[("FW_HOST_EXPECT", "missing"), use_backend]);
        assert!(out.contains("eht0") && out.contains("eth0, eth1"), "{out}");
        assert_eq!(state(&t, backend), before, "a refused apply changed rules");

        let out = script_in(&t, &scratch, typo, &[script_backend]);
        assert!(!out.status.success(), "the script applied a missing extif");
        let err = stderr(&out);
        assert!(
            err.contains("eht0") && err.contains("eth0") && err.contains("eth1"),
            "{err}"
        );
        assert!(err.contains("FIREWALL_ALLOW_MISSING"), "{err}");
        assert_eq!(state(&t, backend), before, "a refused script changed rules");

        // The override (an interface that appears later).
        apply_in(
            &t,
            &scratch,
            typo,
            &[
                ("FW_HOST_EXPECT", "ok"),
                ("FW_HOST_ALLOW_MISSING", "eht0"),
                use_backend,
            ],
        );
        let applied = state(&t, backend);
        let matched = match backend {
            "nftables" => "iifname \"eht0\" goto ext-in",
            _ => "-i eht0 ",
        };
        assert!(applied.contains(matched), "{applied}");
        reset(&t, backend);
        let out = script_in(
            &t,
            &scratch,
            typo,
            &[("FIREWALL_ALLOW_MISSING", "ppp0,eht0"), script_backend],
        );
        assert!(out.status.success(), "{}", common::describe("script", &out));
        assert_eq!(state(&t, backend), applied);

        // A wildcard need not match anything.
        let wild = "extif \"ppp+\";\nopen tcp 22;\n";
        apply_in(&t, &scratch, wild, &[("FW_HOST_EXPECT", "ok"), use_backend]);
        let out = script_in(&t, &scratch, wild, &[script_backend]);
        assert!(out.status.success(), "{}", common::describe("script", &out));
    }
}

const EMPTY: &str =
    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";

/// Empties what `backend` loads into the firewall namespace (iptables:
/// empty filter tables accepting everything; nftables: no table at all).
fn reset(t: &Topology, backend: &str) {
    if backend == "nftables" {
        t.sh(Ns::Firewall, "timeout 10 nft flush ruleset");
    } else {
        t.load_rules(EMPTY, EMPTY);
    }
}

/// One session-guard case: a session from the outside host (`client`, to
/// `server` port `port`) and a policy; `accepted` is what the guard must say.
struct Case {
    name: &'static str,
    policy: &'static str,
    client: &'static str,
    server: &'static str,
    /// The port sshd sees (after a redirect).
    port: u16,
    /// The port a new connection from the client goes to.
    connect: u16,
    accepted: bool,
}

both_backends! {
    /// Item 8: apply() and the script, run in a (simulated) SSH session from the
    /// outside host, refuse exactly the policies under which a new connection like
    /// the session's is not accepted; and real traffic agrees: after an accepted
    /// apply a new connection from the client to that port is established, and
    /// after an overridden refusal it is not; apply() and the script leave the
    /// same rules.
    fn session_guard_agrees_with_real_traffic(backend, test) {
        use common::addr::{FW_EXT_V4, FW_EXT_V6, OUTSIDE_V4, OUTSIDE_V6};
        let cases = [
            Case {
                name: "opened to the client's network, IPv4",
                policy:
                    "extif eth0; open tcp 2222 from 198.51.100.0/24, \"2001:db8:1::/64\"; ssh none;",
                client: OUTSIDE_V4,
                server: FW_EXT_V4,
                port: 2222,
                connect: 2222,
                accepted: true,
            },
            Case {
                name: "opened to the client's network, IPv6",
                policy:
                    "extif eth0; open tcp 2222 from 198.51.100.0/24, \"2001:db8:1::/64\"; ssh none;",
                client: OUTSIDE_V6,
                server: FW_EXT_V6,
                port: 2222,
                connect: 2222,
                accepted: true,
            },
            Case {
                name: "opened to other networks only, IPv4",
                policy: "extif eth0; open tcp 2222 from 192.0.2.0/24, \"2001:db8:9::/64\"; ssh none;",
                client: OUTSIDE_V4,
                server: FW_EXT_V4,
                port: 2222,
                connect: 2222,
                accepted: false,
            },
            Case {
                name: "opened to other networks only, IPv6",
                policy: "extif eth0; open tcp 2222 from 192.0.2.0/24, \"2001:db8:9::/64\"; ssh none;",
                client: OUTSIDE_V6,
                server: FW_EXT_V6,
                port: 2222,
                connect: 2222,
                accepted: false,
            },
            // The session arrives on eth0, which is neither external nor trusted:
            // the open (external interfaces only) does not apply. The old guard
            // let this through.
            Case {
                name: "over an untrusted interface, IPv4",
                policy: "extif eth1; trust wg0; open tcp 2222; ssh none;",
                client: OUTSIDE_V4,
                server: FW_EXT_V4,
                port: 2222,
                connect: 2222,
                accepted: false,
            },
            Case {
                name: "over an untrusted interface, IPv6",
                policy: "extif eth1; trust wg0; open tcp 2222; ssh none;",
                client: OUTSIDE_V6,
                server: FW_EXT_V6,
                port: 2222,
                connect: 2222,
                accepted: false,
            },
            // sshd on 2222 reached through `redirect 22 -> 2222`: the session shows 2222.
            Case {
                name: "through a redirect, IPv4",
                policy: "extif eth0; redirect 22 -> 2222; ssh none;",
                client: OUTSIDE_V4,
                server: FW_EXT_V4,
                port: 2222,
                connect: 22,
                accepted: true,
            },
        ];
        let scratch = Scratch::new("fw-host", test);
        let t = Topology::new(test);
        let listener = t.listen_tcp(Ns::Firewall, 2222);
        for c in &cases {
            let session = format!("{} 50000 {} {}", c.client, c.server, c.port);
            let conn: &[(&str, &str)] = &[("SSH_CONNECTION", &session)];
            // apply()
            reset(&t, backend);
            let before = state(&t, backend);
            let expect = if c.accepted { "ok" } else { "lockout" };
            let mut env = vec![("FW_HOST_EXPECT", expect), ("FW_HOST_BACKEND", backend)];
            env.extend_from_slice(conn);
            let out = apply_in(&t, &scratch, c.policy, &env);
            if !c.accepted {
                assert!(out.contains(c.client), "{}: {out}", c.name);
                assert_eq!(state(&t, backend), before, "{}: refused but changed", c.name);
                let mut env = vec![
                    ("FW_HOST_EXPECT", "ok"),
                    ("FW_HOST_ALLOW_LOCKOUT", "1"),
                    ("FW_HOST_BACKEND", backend),
                ];
                env.extend_from_slice(conn);
                apply_in(&t, &scratch, c.policy, &env);
            }
            let by_apply = state(&t, backend);
            assert_eq!(
                t.tcp_connects(Ns::Outside, c.server, c.connect),
                c.accepted,
                "{}: after apply(), the guard's verdict ({}) is not what the rules do",
                c.name,
                c.accepted
            );
            // The script.
            reset(&t, backend);
            let mut exports = conn.to_vec();
            exports.push(("FIREWALL_BACKEND", backend));
            let out = script_in(&t, &scratch, c.policy, &exports);
            assert_eq!(
                out.status.success(),
                c.accepted,
                "{}: {}",
                c.name,
                common::describe("script", &out)
            );
            if !c.accepted {
                let err = stderr(&out);
                assert!(
                    err.contains("refusing to apply") && err.contains(c.client),
                    "{}: {err}",
                    c.name
                );
                assert!(err.contains("FIREWALL_ALLOW_SESSION_LOCKOUT=1"), "{err}");
                assert_eq!(
                    state(&t, backend),
                    before,
                    "{}: script refused but changed",
                    c.name
                );
                exports.push(("FIREWALL_ALLOW_SESSION_LOCKOUT", "1"));
                let out = script_in(&t, &scratch, c.policy, &exports);
                assert!(
                    out.status.success(),
                    "{}: {}",
                    c.name,
                    common::describe("script", &out)
                );
            }
            assert_eq!(
                state(&t, backend),
                by_apply,
                "{}: script and apply() differ",
                c.name
            );
            assert_eq!(
                t.tcp_connects(Ns::Outside, c.server, c.connect),
                c.accepted,
                "{}: after the script, the guard's verdict ({}) is not what the rules do",
                c.name,
                c.accepted
            );
        }
        drop(listener);
    }
}

/// The link-local IPv6 address of `dev` in `ns`, once it is usable (not
/// tentative; bounded wait).
fn link_local(t: &Topology, ns: Ns, dev: &str) -> String {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = t.exec(
            ns,
            &[
                "ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link",
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !text.contains("tentative") {
            if let Some(addr) = text
                .split_whitespace()
                .skip_while(|w| *w != "inet6")
                .nth(1)
                .and_then(|a| a.split('/').next())
            {
                return addr.to_string();
            }
        }
        assert!(
            std::time::Instant::now() < until,
            "no usable link-local address on {dev}: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

both_backends! {
    /// An SSH session from the outside host's IPv6 link-local address over the
    /// firewall's eth0 (`SSH_CONNECTION=fe80::a%eth0 50000 fe80::b%eth0 2222`):
    /// apply() and the script refuse a policy that does not open the port and
    /// accept one that does, and real traffic from that link-local address
    /// agrees. Before, the `%eth0` made the session unparsable and the guard was
    /// skipped in both. A variable that is set but unreadable is refused by both,
    /// naming it and the override.
    fn link_local_session_is_guarded(backend, test) {
        let scratch = Scratch::new("fw-host", test);
        let t = Topology::new(test);
        let client = link_local(&t, Ns::Outside, "eth0");
        let server = link_local(&t, Ns::Firewall, "eth0");
        let listener = t.listen_tcp(Ns::Firewall, 2222);
        let session = format!("{client}%eth0 50000 {server}%eth0 2222");
        let conn: &[(&str, &str)] = &[("SSH_CONNECTION", &session)];
        let target = format!("{server}%eth0");
        for (policy, accepted) in [
            ("extif eth0; open tcp 80; ssh none;", false),
            ("extif eth0; open tcp 2222; ssh none;", true),
        ] {
            // apply()
            reset(&t, backend);
            let before = state(&t, backend);
            let mut env = vec![
                ("FW_HOST_EXPECT", if accepted { "ok" } else { "lockout" }),
                ("FW_HOST_BACKEND", backend),
            ];
            env.extend_from_slice(conn);
            let out = apply_in(&t, &scratch, policy, &env);
            if !accepted {
                assert!(out.contains(&format!("{client}%eth0")), "{policy}: {out}");
                assert!(out.contains("arriving on eth0"), "{policy}: {out}");
                assert_eq!(
                    state(&t, backend),
                    before,
                    "{policy}: refused but changed"
                );
                let mut env = vec![
                    ("FW_HOST_EXPECT", "ok"),
                    ("FW_HOST_ALLOW_LOCKOUT", "1"),
                    ("FW_HOST_BACKEND", backend),
                ];
                env.extend_from_slice(conn);
                apply_in(&t, &scratch, policy, &env);
            }
            let by_apply = state(&t, backend);
            assert_eq!(
                t.tcp_connects(Ns::Outside, &target, 2222),
                accepted,
                "{policy}: after apply(), the guard's verdict ({accepted}) is not what the rules do"
            );
            // The script.
            reset(&t, backend);
            let before = state(&t, backend);
            let mut exports = conn.to_vec();
            exports.push(("FIREWALL_BACKEND", backend));
            let out = script_in(&t, &scratch, policy, &exports);
            assert_eq!(
                out.status.success(),
                accepted,
                "{policy}: {}",
                common::describe("script", &out)
            );
            if !accepted {
                let err = stderr(&out);
                assert!(
                    err.contains("refusing to apply") && err.contains(&format!("{client}%eth0")),
                    "{policy}: {err}"
                );
                assert!(err.contains("arriving on eth0"), "{err}");
                assert_eq!(
                    state(&t, backend),
                    before,
                    "{policy}: script refused but changed"
                );
                exports.push(("FIREWALL_ALLOW_SESSION_LOCKOUT", "1"));
                let out = script_in(&t, &scratch, policy, &exports);
                assert!(out.status.success(), "{}", common::describe("script", &out));
            }
            assert_eq!(
                state(&t, backend),
                by_apply,
                "{policy}: script and apply() differ"
            );
            assert_eq!(
                t.tcp_connects(Ns::Outside, &target, 2222),
                accepted,
                "{policy}: after the script, the guard's verdict ({accepted}) is not what the rules do"
            );
        }
        drop(listener);

        // Set but unreadable (a zone naming no interface, a mangled value): refused.
        let policy = "extif eth0; open tcp 2222; ssh none;";
        for bad in [
            format!("{client}%nosuchif0 50000 {server}%eth0 2222"),
            "garbage 50000".to_string(),
        ] {
            reset(&t, backend);
            let before = state(&t, backend);
            let conn: &[(&str, &str)] = &[("SSH_CONNECTION", &bad)];
            let mut env = vec![("FW_HOST_EXPECT", "unreadable"), ("FW_HOST_BACKEND", backend)];
            env.extend_from_slice(conn);
            let out = apply_in(&t, &scratch, policy, &env);
            assert!(
                out.contains("SSH_CONNECTION") && out.contains("allow_session_lockout"),
                "{bad}: {out}"
            );
            let out = script_in(&t, &scratch, policy, &[conn[0], ("FIREWALL_BACKEND", backend)]);
            assert!(!out.status.success(), "{bad}: the script applied");
            let err = stderr(&out);
            assert!(
                err.contains("SSH_CONNECTION") && err.contains("cannot be read"),
                "{bad}: {err}"
            );
            assert!(err.contains("FIREWALL_ALLOW_SESSION_LOCKOUT=1"), "{err}");
            assert_eq!(
                state(&t, backend),
                before,
                "{bad}: refused but changed"
            );
        }
    }
}

/// A `PATH` whose load tool of `backend` always fails, in a load and in a
/// rollback's restore alike: iptables: `ip6tables(-nft)-restore` (IPv4
/// loads, IPv6 fails); nftables: any `nft -f` (the one transaction;
/// apply() runs `nft -e -j -f FILE`).
fn failing_restore_tool(scratch: &Scratch, backend: &str) -> String {
    let dir = scratch.0.join("fakebin");
    match backend {
        "nftables" => common::wrappers::wrap_tool(
            &dir,
            &["nft"],
            "case \" $* \" in\n*\" -f \"*) cat >/dev/null; echo 'fake nft: failing on purpose' >&2; exit 1 ;;\nesac\nexec REAL \"$@\"\n",
        ),
        _ => common::wrappers::wrap_tool(
            &dir,
            &["ip6tables-nft-restore", "ip6tables-restore"],
            "echo 'fake ip6tables-restore: failing on purpose' >&2\nexit 1\n",
        ),
    }
}

both_backends! {
    /// Item 13: the load fails (iptables: the IPv6 step; nftables: the one
    /// `nft -f`) and so does the same tool during the rollback, but those rules
    /// never changed: apply() and the script report the host unchanged (it is,
    /// byte for byte), not "RESTORING ... FAILED"; no backup is left.
    fn failing_restore_tool_in_rollback_reports_unchanged_host(backend, test) {
        let scratch = Scratch::new("fw-host", test);
        let path = failing_restore_tool(&scratch, backend);
        let t = Topology::new(test);
        script_backend::populate(&t, backend);
        // Compared without counters: the IPv6 restore (which would put the saved
        // counters back) is the step that fails, and packets keep counting.
        let before = state(&t, backend);
        let policy = common::SECTION5_POLICY;
        let out = apply_in(
            &t,
            &scratch,
            policy,
            &[
                ("FW_HOST_EXPECT", "restored"),
                ("PATH", &path),
                ("FW_HOST_BACKEND", backend),
            ],
        );
        assert!(out.contains("FAILED AND RESTORED AS EXPECTED"), "{out}");
        assert_eq!(state(&t, backend), before, "apply() rollback");
        assert!(!t.ip_forward());

        let out = script_in(
            &t,
            &scratch,
            policy,
            &[("PATH", &path), ("FIREWALL_BACKEND", backend)],
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            common::describe("the script with a failing load tool", &out)
        );
        let err = stderr(&out);
        assert!(err.contains("failing on purpose"), "{err}");
        assert!(
            err.contains("previous rules and ip_forward restored"),
            "{err}"
        );
        // IPv4 was loaded and restored; IPv6 (what the firewall owns of it)
        // equals the backup, so the rollback does not even run the failing
        // tool for it (DSL.md section 6: only what the firewall owns is
        // restored, and only where it changed).
        assert!(!err.contains("RESTORING") && !err.contains("FAILED"), "{err}");
        assert!(!err.contains("ROLLBACK FAILED"), "{err}");
        assert_eq!(state(&t, backend), before, "script rollback");
        assert!(!t.ip_forward());
        // Nothing left behind.
        let left: Vec<_> = std::fs::read_dir(&scratch.0)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("fakebin")],
            "backup dirs left"
        );
    }
}

both_backends! {
    /// Item 13: a read-only or full backup location: apply() and the script refuse
    /// before changing anything, naming the directory and how to choose another.
    fn unusable_backup_location_names_the_directory(backend, test) {
        let scratch = Scratch::new("fw-host", test);
        let t = Topology::new(test);
        script_backend::populate(&t, backend);
        let before = script_backend::state(&t, "nftables");
        let policy = common::SECTION5_POLICY;
        // Read-only (a tmpfs mounted in the inner process's own mount namespace).
        let out = apply_in(
            &t,
            &scratch,
            policy,
            &[
                ("FW_HOST_EXPECT", "backup"),
                ("FW_HOST_RO_BACKUP", "1"),
                ("FW_HOST_BACKEND", backend),
            ],
        );
        assert!(out.contains("read-only"), "{backend}: {out}");
        assert_eq!(script_backend::state(&t, "nftables"), before, "apply()");
        for (mount, what) in [
            ("mount -t tmpfs -o ro,size=64k fw-ro \"$TMPDIR\"", "read-only"),
            (
                "mount -t tmpfs -o size=4k fw-full \"$TMPDIR\" && mkdir \"$TMPDIR/x\" && { head -c 1M /dev/zero >\"$TMPDIR/x/fill\" || true; }",
                "full",
            ),
        ] {
            // `ip netns exec` runs the script in its own mount namespace: the mount stays there.
            let text = format!(
                "export TMPDIR={}\n{mount}\nexport FIREWALL_ALLOW_SESSION_LOCKOUT=1 FIREWALL_BACKEND={backend}\n{}",
                scratch.path(),
                parse(policy).bash()
            );
            let out = t.run_script_in_firewall(&text);
            assert!(!out.status.success(), "{what}: the script succeeded");
            let err = stderr(&out);
            assert!(
                err.contains(scratch.path()) && err.contains("TMPDIR="),
                "{what}: {err}"
            );
            assert!(err.contains("nothing was changed"), "{what}: {err}");
            // Both views (iptables and nftables): nothing changed anywhere.
            assert_eq!(script_backend::state(&t, "nftables"), before, "{what}");
        }
    }
}

// Single-backend on purpose: this test and the next are about the iptables
// tools (legacy rules under iptables-nft) and the script's own detection.

/// Item 13: rules loaded through iptables-legacy while `iptables` is nft: an
/// apply through nft would leave them in force. apply() and the script refuse;
/// choosing the backend explicitly applies.
#[test]
fn rules_in_the_other_backend_are_refused() {
    if !common::kernel_tests_available("rules_in_the_other_backend_are_refused") {
        return;
    }
    let legacy_tools = common::wrappers::installed_in(
        &["/usr/sbin", "/sbin", "/usr/bin"],
        &["iptables-legacy-restore", "iptables-legacy-save"],
    );
    // Which binary `iptables` is, without running it in this namespace
    // (Debian: a link to xtables-nft-multi or xtables-legacy-multi).
    let nft_is_default = common::gate::find_in_path("iptables")
        .and_then(|p| std::fs::canonicalize(p).ok())
        .is_some_and(|p| p.to_string_lossy().contains("nft"));
    if !legacy_tools || !nft_is_default {
        common::gate::skip(
            "rules_in_the_other_backend_are_refused",
            "iptables-nft as `iptables` and the iptables-legacy tools",
        );
        return;
    }
    let scratch = Scratch::new("fw-host", "backend");
    let t = Topology::new("host_backend");
    let legacy = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 80 -j DROP\nCOMMIT\n";
    let out = t.exec_with_stdin(Ns::Firewall, &["iptables-legacy-restore"], legacy);
    assert!(
        out.status.success(),
        "{}",
        common::describe("iptables-legacy-restore", &out)
    );
    let before = t.ruleset(Ns::Firewall);
    let policy = common::SECTION5_POLICY;
    let out = apply_in(&t, &scratch, policy, &[("FW_HOST_EXPECT", "backend")]);
    assert!(
        out.contains("iptables-legacy-save") && out.contains("--dport 80"),
        "{out}"
    );
    assert_eq!(t.ruleset(Ns::Firewall), before);
    let out = script_in(
        &t,
        &scratch,
        policy,
        &[("FIREWALL_ALLOW_SESSION_LOCKOUT", "1")],
    );
    assert!(
        !out.status.success(),
        "the script applied beside legacy rules"
    );
    let err = stderr(&out);
    assert!(
        err.contains("legacy backend holds rules")
            && err.contains("FIREWALL_BACKEND=iptables-legacy"),
        "{err}"
    );
    assert_eq!(t.ruleset(Ns::Firewall), before);
    // Chosen explicitly: applies (beside them, as asked).
    let out = script_in(
        &t,
        &scratch,
        policy,
        &[
            ("FIREWALL_ALLOW_SESSION_LOCKOUT", "1"),
            ("FIREWALL_BACKEND", "iptables-nft"),
        ],
    );
    assert!(out.status.success(), "{}", common::describe("script", &out));
    assert_ne!(t.ruleset(Ns::Firewall), before);
}

both_backends! {
    /// Item 8, the `sudo` case: the script's own environment has no
    /// `SSH_CONNECTION` (sudo drops it), its parent's has; the guard still finds
    /// the session and refuses.
    fn script_guard_finds_the_session_in_an_ancestor(backend, test) {
        let scratch = Scratch::new("fw-host", test);
        let t = Topology::new(test);
        let before = state(&t, backend);
        let policy = "extif eth0; open tcp 2222 from 192.0.2.0/24; ssh none;";
        let file = scratch.0.join("firewall.sh");
        std::fs::write(&file, parse(policy).bash()).expect("writing the script");
        let session = format!(
            "{} 50000 {} 2222",
            common::addr::OUTSIDE_V4,
            common::addr::FW_EXT_V4
        );
        // `; true` keeps the middle bash (whose environment has the session) as
        // the script's parent instead of exec'ing into it.
        let text = format!(
            "export TMPDIR={} FIREWALL_BACKEND={backend}\nSSH_CONNECTION='{session}' bash -c 'env -u SSH_CONNECTION -u SSH_CLIENT bash {}; exit $?'\n",
            scratch.path(),
            file.display()
        );
        let out = t.run_script_in_firewall(&text);
        assert!(
            !out.status.success(),
            "the script cut an ancestor's session"
        );
        let err = stderr(&out);
        assert!(
            err.contains("refusing to apply") && err.contains(common::addr::OUTSIDE_V4),
            "{err}"
        );
        assert_eq!(state(&t, backend), before);
    }
}

/// The script's backend detection (`fw_detect_backend`, the one apply()
/// uses): without FIREWALL_BACKEND, a host with nothing yet gets the backend
/// of `iptables -V`; a host where the firewall's own nftables tables exist
/// gets nftables (and only nftables tables change; the traffic follows the
/// policy, IPv4 and IPv6); a host with only other nftables tables (a
/// distribution's nftables.conf) gets nftables too.
#[test]
fn the_script_detects_the_backend_this_host_uses() {
    if !common::kernel_tests_available("the_script_detects_the_backend_this_host_uses")
        || !script_backend::available("the_script_detects_the_backend", "nftables")
    {
        return;
    }
    let nft_is_default = std::process::Command::new("iptables")
        .arg("-V")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("nf_tables"));
    let scratch = Scratch::new("fw-host", "detect");
    let policy = "extif eth0;\nopen tcp 22;\n";
    let said = |out: &Output| {
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("firewall: backend "))
            .map(str::to_string)
            .unwrap_or_default()
    };

    // Nothing yet: what `iptables -V` is.
    let t = Topology::new("host_detect_none");
    let out = script_in(&t, &scratch, policy, &[]);
    assert!(out.status.success(), "{}", common::describe("script", &out));
    let want = if nft_is_default {
        "iptables-nft"
    } else {
        "iptables-legacy"
    };
    assert_eq!(said(&out), want, "{}", common::describe("script", &out));
    assert!(t.ruleset(Ns::Firewall).contains("open tcp 22"));
    drop(t);

    // The firewall's own tables exist: nftables.
    {
        let t = Topology::new("host_detect_own");
        script_backend::nft_load(&t, script_backend::PREVIOUS_OWN_TABLES);
        let out = script_in(&t, &scratch, policy, &[]);
        assert!(out.status.success(), "{}", common::describe("script", &out));
        assert_eq!(
            said(&out),
            "nftables",
            "{}",
            common::describe("script", &out)
        );
        assert_eq!(t.ruleset(Ns::Firewall), "", "iptables rules were loaded");
        let ruleset = nft_ruleset(&t);
        assert!(ruleset.contains("comment \"open tcp 22\""), "{ruleset}");
        assert!(
            !ruleset.contains("\"before\""),
            "the old own table stayed: {ruleset}"
        );
        let _ssh = t.listen_tcp(Ns::Firewall, 22);
        let _smtp = t.listen_tcp(Ns::Firewall, 25);
        for a in [common::addr::FW_EXT_V4, common::addr::FW_EXT_V6] {
            assert!(
                common::eventually(3, || t.tcp_connects(Ns::Outside, a, 22)),
                "{a}:22 must be open"
            );
            assert!(!t.tcp_connects(Ns::Outside, a, 25), "{a}:25 must be closed");
        }
    }

    // Only a foreign table: nftables, and the foreign table stays.
    let t = Topology::new("host_detect_foreign");
    script_backend::nft_load(&t, script_backend::FOREIGN_TABLE);
    let out = script_in(&t, &scratch, policy, &[]);
    assert!(out.status.success(), "{}", common::describe("script", &out));
    assert_eq!(
        said(&out),
        "nftables",
        "{}",
        common::describe("script", &out)
    );
    assert!(nft_ruleset(&t).contains(script_backend::FOREIGN_TABLE));
    assert_eq!(t.ruleset(Ns::Firewall), "");
}
