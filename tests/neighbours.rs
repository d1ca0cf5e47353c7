//! Sharing the host (issue 8, DSL.md section 6): a real `dockerd` and a real
//! `fail2ban-server` run in the firewall namespace (tests/recipes/, through
//! [`common::daemons`]), and the firewall is applied, re-applied, reverted by
//! its failsafe and removed beside them, with each backend, by `apply()` and
//! by the bash script. What must hold is what traffic sees: a container's
//! published port answers from outside, containers reach the outside, `docker
//! run -p` still works, a banned host stays banned while an unbanned one gets
//! in; and the other tools' rules are exactly as they were.
//!
//! The topology is the harness's, with the inside link narrowed to
//! 203.0.113.0/25 so that Docker's bridge gets the upper half
//! ([`daemons::DOCKER_BIP`]); the outside host has extra addresses to be
//! banned (198.51.100.3, .4; 2001:db8:1::3, ::4). Every test reads the root
//! namespace's rulesets at its start and asserts they are unchanged at its end.
//!
//! `apply()` and `remove()` run inside the firewall namespace as the ignored
//! test [`neighbours_inner`] (`Topology::run_test_in`, as in tests/apply.rs).

mod common;

use common::daemons::{self, Dockerd, Fail2ban, WEB_BANNER};
use common::gate::{self, Need};
use common::policy::parse;
use common::save::Family;
use common::scratch::{wait_until, PidGuard, Scratch};
use common::{addr, describe, env_of, script_backend, Ns, Topology};
use firewall_core::apply::{Backend, Options};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

const INNER: &str = "neighbours_inner";

/// A host policy: SSH open, everything else closed from outside.
const HOST_POLICY: &str = "extif eth0;\nopen tcp 22;\n";

/// A router policy: the host policy, masquerading what leaves by eth0.
const ROUTER_POLICY: &str = "extif eth0;\nopen tcp 22;\nmasquerade;\n";

/// The comment every rule of both policies' `open tcp 22` carries: present
/// exactly while the firewall's rules are in the kernel.
const OWN_MARK: &str = "\"open tcp 22\"";

/// The outside port containers and the inside host connect to.
const OUTSIDE_PORT: u16 = 8000;

/// A port with a listener on the firewall that every policy keeps closed.
const CLOSED_PORT: u16 = 2222;

/// Banned by fail2ban before the apply, and during a failsafe window.
const BANNED: [&str; 2] = ["198.51.100.3", "2001:db8:1::3"];
const BANNED_LATER: [&str; 2] = ["198.51.100.4", "2001:db8:1::4"];

/// The tables iptables-nft keeps (counted through iptables-save).
const IPTABLES_TABLES: [&str; 8] = [
    "ip filter",
    "ip nat",
    "ip mangle",
    "ip raw",
    "ip6 filter",
    "ip6 nat",
    "ip6 mangle",
    "ip6 raw",
];

/// The nftables tables the firewall owns (DSL.md section 6: documented names).
const OWN_NFT_TABLES: [&str; 2] = ["table inet firewall {", "table ip firewall_nat {"];

// ---------------------------------------------------------------------------
// The inner half: apply() / remove() inside the firewall namespace
// ---------------------------------------------------------------------------

/// `FW_N_ACTION` (`apply`, `remove`) of `FW_N_POLICY` with backend
/// `FW_N_BACKEND`, backups under `FW_N_BACKUP`, failsafe `FW_N_FAILSAFE`
/// seconds if set (left unconfirmed). Prints `APPLIED <watchdog-pid>` or
/// `REMOVED`; panics (exit 101) with the error otherwise.
#[test]
#[ignore = "runs inside a network namespace; started by the other tests of this file"]
fn neighbours_inner() {
    if common::inner_role().is_none() {
        return;
    }
    let policy = parse(&env_of("FW_N_POLICY"));
    let backend = Backend::from_name(&env_of("FW_N_BACKEND"));
    assert!(backend.is_some(), "FW_N_BACKEND: not a backend");
    let options = Options {
        failsafe: env_of("FW_N_FAILSAFE")
            .parse()
            .ok()
            .map(Duration::from_secs),
        allow_session_lockout: true,
        backup_parent: Some(PathBuf::from(env_of("FW_N_BACKUP"))),
        backend,
        ..Options::default()
    };
    match env_of("FW_N_ACTION").as_str() {
        "apply" => match policy.apply_with(options) {
            Ok(applied) => {
                let pid = applied
                    .failsafe
                    .as_ref()
                    .and_then(|g| g.watchdog_pid())
                    .unwrap_or(0);
                println!("APPLIED {pid}");
            }
            Err(e) => panic!("apply() failed: {e}"),
        },
        "remove" => match policy.remove_with(options) {
            Ok(_) => println!("REMOVED"),
            Err(e) => panic!("remove() failed: {e}"),
        },
        other => panic!("FW_N_ACTION={other}"),
    }
}

// ---------------------------------------------------------------------------
// The root namespace: read only
// ---------------------------------------------------------------------------

/// The root namespace's rulesets (iptables-save, ip6tables-save, nft list
/// ruleset), read without changing anything.
struct RootRulesets(String);

impl RootRulesets {
    fn read() -> RootRulesets {
        let mut s = String::new();
        for args in [
            &["iptables-save"][..],
            &["ip6tables-save"][..],
            &["nft", "-s", "list", "ruleset"][..],
        ] {
            let out = common::command::run(args, None, 20);
            s.push_str(&format!("--- {} ({}) ---\n", args.join(" "), out.status));
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if !line.starts_with('#') {
                    s.push_str(line);
                    s.push('\n');
                }
            }
        }
        RootRulesets(s)
    }

    #[track_caller]
    fn assert_unchanged(&self, test: &str) {
        let now = RootRulesets::read();
        assert_eq!(
            now.0, self.0,
            "{test}: the ROOT namespace's rulesets changed during the test"
        );
    }
}

// ---------------------------------------------------------------------------
// One case: a topology, a backend, a way to apply
// ---------------------------------------------------------------------------

/// How the firewall is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `Policy::apply_with()` / `remove_with()` ([`neighbours_inner`]).
    Apply,
    /// The bash script (`--remove` to remove).
    Script,
}

struct Case {
    test: String,
    backend: &'static str,
    via: Via,
    t: Topology,
    scratch: Scratch,
    root: RootRulesets,
}

impl Case {
    /// The gate for the daemons, the root rulesets, and the topology with
    /// the inside link narrowed to /25 and the extra outside addresses.
    fn new(backend: &'static str, via: Via, test: &str) -> Option<Case> {
        let needs = [
            Need::Tool("dockerd", "docker.io"),
            Need::Tool("containerd", "containerd"),
            Need::Tool("runc", "runc"),
            Need::Tool("fail2ban-server", "fail2ban"),
            Need::Tool("busybox", "busybox-static"),
            Need::Tool("tar", "tar"),
        ];
        if !gate::require(test, &needs) {
            return None;
        }
        if !std::path::Path::new(daemons::DOCKER).exists() {
            gate::skip(test, "/usr/bin/docker (Debian package docker.io)");
            return None;
        }
        let root = RootRulesets::read();
        let t = Topology::new(test);
        t.sh(
            Ns::Firewall,
            "ip addr del 203.0.113.1/24 dev eth1 && ip addr add 203.0.113.1/25 dev eth1",
        );
        t.sh(
            Ns::Inside,
            "ip addr del 203.0.113.2/24 dev eth0 && ip addr add 203.0.113.2/25 dev eth0 \
             && ip route replace default via 203.0.113.1",
        );
        for a in [
            "198.51.100.3/24",
            "198.51.100.4/24",
            "2001:db8:1::3/64",
            "2001:db8:1::4/64",
        ] {
            t.add_address(Ns::Outside, a);
        }
        let scratch = Scratch::new("fwn", test);
        Some(Case {
            test: test.to_string(),
            backend,
            via,
            t,
            scratch,
            root,
        })
    }

    fn what(&self) -> String {
        format!("{} by {:?}", self.backend, self.via)
    }

    fn fw(&self) -> &common::netns::Netns {
        self.t.netns(Ns::Firewall)
    }

    fn inner(&self, action: &str, policy: &str, failsafe: Option<u32>) -> Output {
        let secs = failsafe.map(|s| s.to_string()).unwrap_or_default();
        self.t.run_test_in(
            Ns::Firewall,
            INNER,
            &[
                ("FW_N_ACTION", action),
                ("FW_N_POLICY", policy),
                ("FW_N_BACKEND", self.backend),
                ("FW_N_BACKUP", self.scratch.path()),
                ("FW_N_FAILSAFE", &secs),
            ],
        )
    }

    fn script(&self, policy: &str, args: &[&str]) -> Output {
        let script = format!(
            "export FIREWALL_ALLOW_SESSION_LOCKOUT=1 FIREWALL_BACKEND={} TMPDIR={}\n{}",
            self.backend,
            self.scratch.path(),
            parse(policy).bash()
        );
        let mut full = vec!["bash", "-s", "--"];
        full.extend_from_slice(args);
        self.t.exec_with_stdin(Ns::Firewall, &full, &script)
    }

    fn ok_or_err(what: &str, out: Output) -> Result<Output, String> {
        if out.status.success() {
            Ok(out)
        } else {
            Err(describe(what, &out))
        }
    }

    /// Applies `policy` (no failsafe).
    fn apply(&self, policy: &str) -> Result<(), String> {
        let out = match self.via {
            Via::Apply => self.inner("apply", policy, None),
            Via::Script => self.script(policy, &[]),
        };
        Case::ok_or_err(&format!("apply ({})", self.what()), out).map(|_| ())
    }

    /// Applies `policy` with a failsafe of `secs`, left unconfirmed; the
    /// watchdog's pid where `apply()` reports it (0 for the script).
    fn apply_unconfirmed(&self, policy: &str, secs: u32) -> Result<u32, String> {
        let out = match self.via {
            Via::Apply => self.inner("apply", policy, Some(secs)),
            Via::Script => self.script(&format!("{policy}failsafe {secs}s;\n"), &[]),
        };
        let out = Case::ok_or_err(&format!("failsafe apply ({})", self.what()), out)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        Ok(stdout
            .lines()
            .find_map(|l| l.split("APPLIED ").nth(1))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0))
    }

    /// Removes what the firewall owns (`remove()`, the script's `--remove`).
    fn remove(&self, policy: &str) -> Result<(), String> {
        let out = match self.via {
            Via::Apply => self.inner("remove", policy, None),
            Via::Script => self.script(policy, &["--remove"]),
        };
        Case::ok_or_err(&format!("remove ({})", self.what()), out).map(|_| ())
    }

    /// Both iptables families, normalised, without counters.
    fn iptables(&self) -> String {
        Family::BOTH.iter().map(|&f| self.fw().save(f)).collect()
    }

    /// Everything the firewall namespace holds: the iptables view and the
    /// whole nftables ruleset.
    fn state(&self) -> String {
        format!(
            "{}--- nft ---\n{}",
            self.iptables(),
            script_backend::nft_ruleset(&self.t)
        )
    }

    /// Whether the firewall's own rules are in the kernel.
    fn own_rules_present(&self) -> bool {
        self.state().contains(OWN_MARK)
    }

    /// The other tools' rules, as the firewall must leave them: iptables
    /// backends: the iptables view without the firewall's `fw-` chains, the
    /// jumps to them and the built-in chains' policies; nftables: the whole
    /// nftables ruleset (the iptables-nft tables included) without the
    /// firewall's own tables.
    fn others(&self) -> String {
        if self.backend == "nftables" {
            let mut out = String::new();
            let mut own = false;
            for line in script_backend::nft_ruleset(&self.t).lines() {
                if line.starts_with("table ") {
                    own = OWN_NFT_TABLES.contains(&line);
                }
                if !own {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            out
        } else {
            self.iptables()
                .lines()
                .filter(|l| {
                    !(l.starts_with(":fw-")
                        || l.starts_with("-A fw-")
                        || l.contains(" -j fw-")
                        || l.contains(" -g fw-"))
                })
                .map(|l| match l.strip_prefix(':') {
                    Some(chain) if !chain.ends_with(" -") => {
                        format!(":{} <policy>\n", chain.split(' ').next().unwrap_or(""))
                    }
                    _ => format!("{l}\n"),
                })
                .collect()
        }
    }

    /// The number of rules in the namespace: `-A` lines of both iptables
    /// families plus the rules of every nftables table that iptables does
    /// not show.
    fn rule_count(&self) -> usize {
        let ipt = self
            .iptables()
            .lines()
            .filter(|l| l.starts_with("-A "))
            .count();
        let mut nft = 0;
        let mut iptables_table = false;
        for line in script_backend::nft_ruleset(&self.t).lines() {
            if let Some(table) = line.strip_prefix("table ") {
                iptables_table = IPTABLES_TABLES.contains(&table.trim_end_matches(" {"));
            }
            let rule = line.starts_with("\t\t")
                && !line.starts_with("\t\t\t")
                && !["type ", "flags ", "elements "]
                    .iter()
                    .any(|p| line[2..].starts_with(p));
            if rule && !iptables_table {
                nft += 1;
            }
        }
        ipt + nft
    }

    fn dump(&self) -> String {
        self.t.dump(Ns::Firewall)
    }

    /// Waits (bounded) until a failsafe apply has been reverted: the own
    /// rules gone and no backup left.
    fn wait_for_revert(&self, watchdog: u32) -> bool {
        let wd = PidGuard(watchdog);
        let back = wait_until(Duration::from_secs(40), || {
            !self.own_rules_present()
                && std::fs::read_dir(self.scratch.dir()).map_or(0, |d| d.count()) == 0
        });
        back && wd.exits_within(Duration::from_secs(5))
    }
}

// ---------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------

/// Failed outcomes, collected so that one run reports all of them, each
/// phase's with the rulesets (and logs) at the time.
struct Checks {
    failures: Vec<String>,
    reported: usize,
}

impl Checks {
    fn new() -> Checks {
        Checks {
            failures: Vec::new(),
            reported: 0,
        }
    }

    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(what());
        }
    }

    /// Ends a phase: if it failed, the evidence follows its failures.
    fn evidence(&mut self, phase: &str, evidence: impl FnOnce() -> String) {
        if self.failures.len() > self.reported {
            self.failures
                .push(format!("=== evidence {phase} ===\n{}", evidence()));
        }
        self.reported = self.failures.len();
    }

    fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    #[track_caller]
    fn finish(self, c: &Case) {
        c.root.assert_unchanged(&c.test);
        assert!(
            self.failures.is_empty(),
            "{} ({}): {} outcome(s) failed:\n{}",
            c.test,
            c.what(),
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// `GET /` from `ns` to `a`:`port`: whether the container's page came back
/// (retried: for outcomes that must hold).
fn web_answers(t: &Topology, ns: Ns, a: &str, port: u16) -> bool {
    common::eventually(4, || {
        let out = t.netns(ns).exec_bounded(
            &["nc", "-n", "-w", "3", a, &port.to_string()],
            Some("GET / HTTP/1.0\r\n\r\n"),
            10,
        );
        String::from_utf8_lossy(&out.stdout).contains(WEB_BANNER)
    })
}

/// Whether container `name` reaches the outside listener at `a` (its banner
/// came back; retried).
fn container_reaches(d: &Dockerd, name: &str, a: &str) -> bool {
    let want = format!("outside:{OUTSIDE_PORT}");
    common::eventually(4, || {
        let out = d.exec(name, &["nc", "-w", "3", a, &OUTSIDE_PORT.to_string()]);
        String::from_utf8_lossy(&out.stdout).contains(&want)
    })
}

/// Docker works: the published port 8080 of the container `web` answers
/// from outside (IPv4, IPv6), `web` reaches the outside (IPv4, IPv6), and a
/// new container published on `port` starts and answers (then removed).
/// Needs a listener on the outside port [`OUTSIDE_PORT`].
fn docker_works(c: &Case, d: &Dockerd, k: &mut Checks, phase: &str, port: u16) {
    for a in [addr::FW_EXT_V4, addr::FW_EXT_V6] {
        k.check(web_answers(&c.t, Ns::Outside, a, 8080), || {
            format!("{phase}: the published port {a}:8080 does not answer from outside")
        });
    }
    for a in [addr::OUTSIDE_V4, addr::OUTSIDE_V6] {
        k.check(container_reaches(d, "web", a), || {
            format!("{phase}: the container does not reach the outside listener {a}:{OUTSIDE_PORT}")
        });
    }
    let name = format!("web{port}");
    match d.run_web(&name, port) {
        Ok(_) => k.check(
            web_answers(&c.t, Ns::Outside, addr::FW_EXT_V4, port),
            || format!("{phase}: the new container's published port {port} does not answer"),
        ),
        Err(e) => k.check(false, || {
            format!("{phase}: `docker run -p {port}:80` failed: {e}")
        }),
    }
    d.remove_container(&name);
}

/// The policy holds: SSH answers from the unbanned outside address, the
/// closed port does not (IPv4, IPv6).
fn policy_holds(c: &Case, k: &mut Checks, phase: &str) {
    for (src, a) in [
        (addr::OUTSIDE_V4, addr::FW_EXT_V4),
        (addr::OUTSIDE_V6, addr::FW_EXT_V6),
    ] {
        k.check(
            common::eventually(3, || c.t.tcp_connects_from(Ns::Outside, src, a, 22)),
            || format!("{phase}: the unbanned {src} cannot connect to the opened port {a}:22"),
        );
        k.check(!c.t.tcp_connects(Ns::Outside, a, CLOSED_PORT), || {
            format!("{phase}: {a}:{CLOSED_PORT} answers: the policy is not in force")
        });
    }
}

/// The addresses in `banned` cannot connect to port 22 (one attempt each).
fn still_banned(c: &Case, k: &mut Checks, phase: &str, banned: &[&str]) {
    for src in banned {
        let a = if src.contains(':') {
            addr::FW_EXT_V6
        } else {
            addr::FW_EXT_V4
        };
        k.check(!c.t.tcp_connects_from(Ns::Outside, src, a, 22), || {
            format!("{phase}: the banned {src} connects to {a}:22 again")
        });
    }
}

/// Bans `addrs` and waits until fail2ban's rules for them are in the kernel.
fn ban(c: &Case, f: &Fail2ban, addrs: &[&str]) {
    for a in addrs {
        f.ban(a);
        let rule = if a.contains(':') {
            format!("-s {a}/128")
        } else {
            format!("-s {a}/32")
        };
        assert!(
            wait_until(Duration::from_secs(30), || c.iptables().contains(&rule)),
            "fail2ban did not ban {a}:\n{}\n{}",
            f.logs(),
            c.dump()
        );
    }
}

/// `before` and `after` as a failure message, if they differ.
fn same(k: &mut Checks, what: &str, before: &str, after: &str) {
    k.check(before == after, || {
        format!("{what}:\n--- before ---\n{before}--- after ---\n{after}")
    });
}

/// dockerd with the busybox image and the container `web` (-p 8080:80).
fn docker_with_web(c: &Case) -> Dockerd {
    let d = Dockerd::start(c.fw());
    d.import_busybox();
    if let Err(e) = d.run_web("web", 8080) {
        panic!("{e}\n{}\n{}", d.logs(), c.dump());
    }
    d
}

/// The harness itself works: Docker's outcomes hold before any firewall.
#[track_caller]
fn baseline(c: &Case, d: &Dockerd) {
    let mut k = Checks::new();
    docker_works(c, d, &mut k, "before the apply", 8081);
    assert!(
        k.ok(),
        "{}: the harness is broken (no firewall yet):\n{}\n{}\n{}",
        c.test,
        k.failures.join("\n"),
        d.logs(),
        c.dump()
    );
}

// ---------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------

/// dockerd and a container publishing 8080 first, then `policy`.
fn docker_before_apply(backend: &'static str, via: Via, test: &str, policy: &str) {
    let Some(c) = Case::new(backend, via, test) else {
        return;
    };
    let _ssh = c.t.listen_tcp(Ns::Firewall, 22);
    let _closed = c.t.listen_tcp(Ns::Firewall, CLOSED_PORT);
    let _out = c.t.listen_tcp(Ns::Outside, OUTSIDE_PORT);
    if policy == ROUTER_POLICY && c.backend == "nftables" {
        // A router has forwarding on from boot (sysctl), before dockerd
        // starts. A dockerd that turns forwarding on itself also sets
        // iptables' FORWARD policy to DROP; with the nftables backend that
        // drop is in another base chain, which the firewall's accepts cannot
        // override (README: Running beside Docker, fail2ban, libvirt). The
        // iptables backends route either way: their accepts are in that chain.
        c.t.set_ip_forward(true);
    }
    let d = docker_with_web(&c);
    baseline(&c, &d);
    let others = c.others();
    let mut k = Checks::new();
    if let Err(e) = c.apply(policy) {
        k.check(false, || e);
    }
    same(
        &mut k,
        "Docker's rules changed by the apply",
        &others,
        &c.others(),
    );
    policy_holds(&c, &mut k, "after the apply");
    docker_works(&c, &d, &mut k, "after the apply", 8081);
    if policy == ROUTER_POLICY {
        k.check(
            common::eventually(3, || {
                c.t.tcp_banner(Ns::Inside, addr::OUTSIDE_V4, OUTSIDE_PORT)
                    .is_some()
            }),
            || "after the apply: the inside host does not reach the outside (masquerade)".into(),
        );
    }
    k.evidence("after the apply", || format!("{}\n{}", c.dump(), d.logs()));
    k.finish(&c);
}

/// `policy` first, then dockerd and a container; then a re-apply.
fn docker_after_apply(backend: &'static str, via: Via, test: &str) {
    let Some(c) = Case::new(backend, via, test) else {
        return;
    };
    let _ssh = c.t.listen_tcp(Ns::Firewall, 22);
    let _closed = c.t.listen_tcp(Ns::Firewall, CLOSED_PORT);
    let _out = c.t.listen_tcp(Ns::Outside, OUTSIDE_PORT);
    let mut k = Checks::new();
    if let Err(e) = c.apply(HOST_POLICY) {
        panic!("{e}");
    }
    let d = docker_with_web(&c);
    policy_holds(&c, &mut k, "dockerd started after the apply");
    docker_works(&c, &d, &mut k, "dockerd started after the apply", 8081);
    k.evidence("dockerd started after the apply", || {
        format!("{}\n{}", c.dump(), d.logs())
    });
    let others = c.others();
    if let Err(e) = c.apply(HOST_POLICY) {
        k.check(false, || e);
    }
    same(
        &mut k,
        "Docker's rules changed by the re-apply",
        &others,
        &c.others(),
    );
    policy_holds(&c, &mut k, "after the re-apply");
    docker_works(&c, &d, &mut k, "after the re-apply", 8082);
    k.evidence("after the re-apply", || {
        format!("{}\n{}", c.dump(), d.logs())
    });
    k.finish(&c);
}

/// dockerd, a container and fail2ban with a ban, then apply, re-apply
/// twice and remove.
fn apply_reapply_remove(backend: &'static str, via: Via, test: &str) {
    let Some(c) = Case::new(backend, via, test) else {
        return;
    };
    let _ssh = c.t.listen_tcp(Ns::Firewall, 22);
    let _closed = c.t.listen_tcp(Ns::Firewall, CLOSED_PORT);
    let _out = c.t.listen_tcp(Ns::Outside, OUTSIDE_PORT);
    let d = docker_with_web(&c);
    let f = Fail2ban::start(c.fw());
    ban(&c, &f, &BANNED);
    baseline(&c, &d);
    let mut b = Checks::new();
    still_banned(&c, &mut b, "before the apply (the harness)", &BANNED);
    assert!(
        b.ok(),
        "{}\n{}\n{}",
        b.failures.join("\n"),
        f.logs(),
        c.dump()
    );
    let before = c.state();
    let others = c.others();
    let mut k = Checks::new();
    let logs = || format!("{}\n{}\n{}", c.dump(), d.logs(), f.logs());

    if let Err(e) = c.apply(HOST_POLICY) {
        k.check(false, || e);
    }
    same(
        &mut k,
        "the other tools' rules changed by the apply",
        &others,
        &c.others(),
    );
    still_banned(&c, &mut k, "after the apply", &BANNED);
    policy_holds(&c, &mut k, "after the apply");
    docker_works(&c, &d, &mut k, "after the apply", 8081);
    k.evidence("after the apply", logs);

    let (state1, count1) = (c.state(), c.rule_count());
    for round in ["first", "second"] {
        let phase = format!("after the {round} re-apply");
        if let Err(e) = c.apply(HOST_POLICY) {
            k.check(false, || e);
        }
        let count = c.rule_count();
        k.check(count == count1, || {
            format!("{phase}: {count} rules, {count1} after the apply")
        });
        same(
            &mut k,
            &format!("{phase}: the ruleset changed"),
            &state1,
            &c.state(),
        );
        still_banned(&c, &mut k, &phase, &BANNED);
        k.evidence(&phase, logs);
    }

    if let Err(e) = c.remove(HOST_POLICY) {
        k.check(false, || e);
    }
    same(
        &mut k,
        "remove() left more or less than the other tools' rules",
        &others,
        &c.others(),
    );
    k.check(!c.own_rules_present(), || {
        "after remove(): the firewall's rules are still there".into()
    });
    if backend == "nftables" {
        same(
            &mut k,
            "remove() did not restore the host's rulesets",
            &before,
            &c.state(),
        );
    }
    still_banned(&c, &mut k, "after remove()", &BANNED);
    for (src, a) in [
        (addr::OUTSIDE_V4, addr::FW_EXT_V4),
        (addr::OUTSIDE_V6, addr::FW_EXT_V6),
    ] {
        k.check(
            common::eventually(3, || c.t.tcp_connects_from(Ns::Outside, src, a, 22)),
            || format!("after remove(): the unbanned {src} cannot connect to {a}:22"),
        );
    }
    docker_works(&c, &d, &mut k, "after remove()", 8083);
    k.evidence("after remove()", logs);
    k.finish(&c);
}

/// dockerd, a container, fail2ban with a ban; a failsafe apply left
/// unconfirmed; meanwhile fail2ban bans another address and Docker starts a
/// container; after the revert both bans hold and both containers answer.
fn failsafe_revert(backend: &'static str, via: Via, test: &str) {
    let Some(c) = Case::new(backend, via, test) else {
        return;
    };
    let _ssh = c.t.listen_tcp(Ns::Firewall, 22);
    let _out = c.t.listen_tcp(Ns::Outside, OUTSIDE_PORT);
    let d = docker_with_web(&c);
    let f = Fail2ban::start(c.fw());
    ban(&c, &f, &BANNED);
    let mut k = Checks::new();
    let logs = || format!("{}\n{}\n{}", c.dump(), d.logs(), f.logs());
    // A window long enough for the bans and a container on a loaded machine.
    let watchdog = match c.apply_unconfirmed(HOST_POLICY, 25) {
        Ok(pid) => pid,
        Err(e) => panic!("{e}"),
    };
    assert!(c.own_rules_present(), "the failsafe apply applied nothing");
    ban(&c, &f, &BANNED_LATER);
    let late = d.run_web("late", 8084);
    k.check(late.is_ok(), || {
        format!("during the failsafe window: docker run -p 8084 failed: {late:?}")
    });
    // The applied policy beside them, while the window is open.
    still_banned(&c, &mut k, "during the failsafe window", &BANNED);
    still_banned(&c, &mut k, "during the failsafe window", &BANNED_LATER);
    k.check(
        web_answers(&c.t, Ns::Outside, addr::FW_EXT_V4, 8080),
        || "during the failsafe window: the published port 8080 does not answer".into(),
    );
    k.check(c.own_rules_present(), || {
        "the window ended before the ban and the container: the test proves nothing".into()
    });
    k.evidence("during the failsafe window", logs);
    k.check(c.wait_for_revert(watchdog), || {
        format!("the failsafe did not revert:\n{}", c.state())
    });
    still_banned(&c, &mut k, "after the revert", &BANNED);
    still_banned(
        &c,
        &mut k,
        "after the revert (banned during the window)",
        &BANNED_LATER,
    );
    k.check(f.banned().contains(BANNED_LATER[0]), || {
        "fail2ban itself forgot the later ban".into()
    });
    k.check(
        web_answers(&c.t, Ns::Outside, addr::FW_EXT_V4, 8084),
        || "after the revert: the container started during the window does not answer".into(),
    );
    docker_works(&c, &d, &mut k, "after the revert", 8085);
    k.evidence("after the revert", logs);
    k.finish(&c);
}

// ---------------------------------------------------------------------------
// The tests: each scenario with both backends, by apply() and by the script
// ---------------------------------------------------------------------------

both_backends! {
    /// dockerd first (container -p 8080:80), then a host policy by apply().
    fn docker_before_apply_by_apply(backend, test) {
        docker_before_apply(backend, Via::Apply, test, HOST_POLICY);
    }
    /// dockerd first, then a host policy by the script.
    fn docker_before_apply_by_script(backend, test) {
        docker_before_apply(backend, Via::Script, test, HOST_POLICY);
    }
    /// dockerd first, then a router policy (masquerade) by apply().
    fn docker_beside_router_by_apply(backend, test) {
        docker_before_apply(backend, Via::Apply, test, ROUTER_POLICY);
    }
    /// dockerd first, then a router policy (masquerade) by the script.
    fn docker_beside_router_by_script(backend, test) {
        docker_before_apply(backend, Via::Script, test, ROUTER_POLICY);
    }
    /// A host policy by apply(), then dockerd; then a re-apply.
    fn docker_after_apply_by_apply(backend, test) {
        docker_after_apply(backend, Via::Apply, test);
    }
    /// A host policy by the script, then dockerd; then a re-apply.
    fn docker_after_apply_by_script(backend, test) {
        docker_after_apply(backend, Via::Script, test);
    }
    /// Docker and fail2ban through apply(), two re-applies and remove().
    fn fail2ban_docker_reapply_remove_by_apply(backend, test) {
        apply_reapply_remove(backend, Via::Apply, test);
    }
    /// Docker and fail2ban through the script, two re-applies and --remove.
    fn fail2ban_docker_reapply_remove_by_script(backend, test) {
        apply_reapply_remove(backend, Via::Script, test);
    }
    /// An unconfirmed failsafe of apply() beside Docker and fail2ban.
    fn failsafe_revert_keeps_new_ban_by_apply(backend, test) {
        failsafe_revert(backend, Via::Apply, test);
    }
    /// An unconfirmed failsafe of the script beside Docker and fail2ban.
    fn failsafe_revert_keeps_new_ban_by_script(backend, test) {
        failsafe_revert(backend, Via::Script, test);
    }
}
