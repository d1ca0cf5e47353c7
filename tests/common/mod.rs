//! Reusable network-namespace test topology for the firewall's traffic tests.
//!
//! Use it from an integration test with `mod common;` and:
//!
//! ```ignore
//! use common::{addr, Ns, Topology};
//!
//! #[test]
//! fn something() {
//!     if !common::kernel_tests_available("something") {
//!         return; // printed why; under CI=true it panics instead
//!     }
//!     let t = Topology::new("something");
//!     let _ssh = t.listen_tcp(Ns::Firewall, 22);
//!     t.load_rules(v4_rules, v6_rules);
//!     assert!(t.tcp_connects(Ns::Outside, addr::FW_EXT_V4, 22));
//! }
//! ```
//!
//! A test of a policy's rules runs once per rule loader ([`Loader`]:
//! `iptables-restore` of the two texts, `nft -f` of the nftables file),
//! written once with [`both_loaders!`](crate::both_loaders) and loaded with
//! [`Topology::load_policy`]; with nft the namespace must then hold the
//! firewall's own tables and nothing else. Failure messages show
//! [`Topology::dump`] (the iptables view and `nft list ruleset`).
//!
//! # The pieces
//!
//! * [`gate`]: the one skip gate (`CI=true`: a missing piece panics).
//! * [`netns::Netns`]: the one namespace guard (created, deleted on drop).
//! * [`command`]: the one bounded command runner (everything under `timeout`).
//! * [`save`]: the one reader of `iptables-save` output.
//!
//! # The topology
//!
//! ```text
//!  outside (OUT)                  firewall (FW)                    inside (IN)
//!  eth0 198.51.100.2/24 ----- eth0 198.51.100.1/24
//!       2001:db8:1::2/64           2001:db8:1::1/64
//!                                 eth1 203.0.113.1/24 ------ eth0 203.0.113.2/24
//!                                      2001:db8:2::1/64           2001:db8:2::2/64
//!                                                                 default via FW
//! ```
//!
//! The outside host has no route to 203.0.113.0/24 or 2001:db8:2::/64: only
//! DNAT and masquerading make traffic cross. Forwarding is off in every
//! namespace when the topology is created. Every namespace, veth, address,
//! route and rule lives inside the three namespaces, which are deleted when
//! the [`Topology`] is dropped (also when the test panics). Nothing is ever
//! changed in the root namespace.
//!
//! # Listeners
//!
//! [`Topology::listen_tcp`] starts a small TCP server inside a namespace. It is
//! this very test binary, re-executed under `ip netns exec` and running the
//! ignored test [`netns_harness_helper_process`] (which does nothing unless the
//! harness started it). Each accepted connection is answered with the banner
//! `"<role>:<port>\n"` (e.g. `firewall:25`, `inside:22`) and its source address
//! is recorded, so a test can tell WHICH host and port a connection reached
//! and with which source address it arrived. It listens on IPv4 and IPv6. The
//! server exits when its [`Listener`] is dropped (its stdin pipe closes; it
//! is killed by its pid if it has not exited 2 s later), when the test
//! process dies (the pipe closes too), or after [`LISTENER_LIFETIME`]; the
//! bounded runner's `timeout` kills it 30 s after that at the latest.
//!
//! Clients are `nc` and `ping` run inside a namespace, each bounded by
//! `timeout`.
#![allow(dead_code)]

pub mod command;
pub mod daemons;
pub mod gate;
pub mod netns;
pub mod policy;
pub mod save;
pub mod scratch;
pub mod script_backend;
pub mod wrappers;

// Used by some of the test binaries that include this module, not all.
#[allow(unused_imports)]
pub use command::{describe, COMMAND_TIMEOUT_SECS};
#[allow(unused_imports)]
pub use gate::kernel_tests_available;
#[allow(unused_imports)]
pub use policy::Loader;

use netns::Netns;
use save::{Counters, Family, Tools};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The addresses of the topology.
pub mod addr {
    /// The outside host.
    pub const OUTSIDE_V4: &str = "198.51.100.2";
    /// The firewall's external address (eth0).
    pub const FW_EXT_V4: &str = "198.51.100.1";
    /// The firewall's internal address (eth1).
    pub const FW_INT_V4: &str = "203.0.113.1";
    /// The inside host.
    pub const INSIDE_V4: &str = "203.0.113.2";
    /// The outside host, IPv6.
    pub const OUTSIDE_V6: &str = "2001:db8:1::2";
    /// The firewall's external address, IPv6.
    pub const FW_EXT_V6: &str = "2001:db8:1::1";
    /// The firewall's internal address, IPv6.
    pub const FW_INT_V6: &str = "2001:db8:2::1";
    /// The inside host, IPv6.
    pub const INSIDE_V6: &str = "2001:db8:2::2";
    /// The outside network.
    pub const OUTSIDE_NET_V4: &str = "198.51.100.0/24";
    /// The inside network.
    pub const INSIDE_NET_V4: &str = "203.0.113.0/24";
    /// The outside network, IPv6.
    pub const OUTSIDE_NET_V6: &str = "2001:db8:1::/64";
    /// The inside network, IPv6.
    pub const INSIDE_NET_V6: &str = "2001:db8:2::/64";
}

/// Set (to the namespace's role) in a test run by [`Topology::run_test_in`].
pub const INNER_ENV: &str = "FW_NETNS_HARNESS_INNER";

/// `Some(role)` (`"firewall"`, `"outside"`, `"inside"`) when this process is
/// the inner half started by [`Topology::run_test_in`]; `None` otherwise, in
/// which case an inner `#[ignore]`d test should return at once.
pub fn inner_role() -> Option<String> {
    std::env::var(INNER_ENV).ok()
}

/// The environment variable `name` of an inner half as text (`""` when unset).
pub fn env_of(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// How long a listener lives at most, even if nobody stops it.
pub const LISTENER_LIFETIME: Duration = Duration::from_secs(300);

/// Seconds `nc` waits for a TCP connection before calling a port closed.
pub const CONNECT_TIMEOUT_SECS: u32 = 2;

/// The environment variable that turns the ignored helper test into a listener.
const HELPER_ENV: &str = "FW_NETNS_HARNESS_HELPER";

/// The name of the helper test (a substring filter for libtest).
const HELPER_TEST: &str = "netns_harness_helper_process";

/// One of the three hosts of the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ns {
    /// The untrusted outside host, on the firewall's eth0.
    Outside,
    /// The firewall: the namespace whose rules are under test.
    Firewall,
    /// The trusted inside host, on the firewall's eth1.
    Inside,
}

impl Ns {
    /// `outside`, `firewall` or `inside`: also the first part of listener banners.
    pub fn role(self) -> &'static str {
        match self {
            Ns::Outside => "outside",
            Ns::Firewall => "firewall",
            Ns::Inside => "inside",
        }
    }

    fn letter(self) -> &'static str {
        match self {
            Ns::Outside => "o",
            Ns::Firewall => "f",
            Ns::Inside => "i",
        }
    }
}

// ---------------------------------------------------------------------------
// Running commands, always bounded
// ---------------------------------------------------------------------------

/// Runs `args` (program first) with the harness's bound, `stdin` fed if given.
fn run(args: &[&str], stdin: Option<&str>) -> Output {
    command::run(args, stdin, COMMAND_TIMEOUT_SECS)
}

/// This test binary, as a path that stays valid even if cargo replaces the
/// file while the tests run (a rebuild in a shared target dir): the magic
/// link of this process, which `ip netns exec` can exec (same pid namespace).
fn self_exe() -> String {
    format!("/proc/{}/exe", std::process::id())
}

/// The bound of one namespace's address and route set-up.
const TOPOLOGY_TIMEOUT_SECS: u32 = 180;

fn must(what: &str, out: Output) -> Output {
    assert!(out.status.success(), "{}", describe(what, &out));
    out
}

/// Retries `f` up to `attempts` times (pausing briefly), true as soon as it is.
/// For positive checks only: a closed port must be checked exactly once.
pub fn eventually(attempts: u32, mut f: impl FnMut() -> bool) -> bool {
    for i in 0..attempts {
        if f() {
            return true;
        }
        if i + 1 < attempts {
            thread::sleep(Duration::from_millis(300));
        }
    }
    false
}

// ---------------------------------------------------------------------------
// The topology
// ---------------------------------------------------------------------------

/// Three network namespaces (outside, firewall, inside) joined by veth pairs.
/// Deleted on drop (each is a [`Netns`] guard).
pub struct Topology {
    test: String,
    outside: Netns,
    firewall: Netns,
    inside: Netns,
}

impl Topology {
    /// Creates the topology for `test` (any text; a short, sanitised part of it
    /// goes into the namespace names together with the process id and a
    /// counter). Panics with the failing command's output if anything fails;
    /// what was created so far is deleted again.
    pub fn new(test: &str) -> Topology {
        let ns = |ns: Ns| Netns::new(&format!("{}-{test}", ns.letter()));
        let t = Topology {
            test: test.to_owned(),
            outside: ns(Ns::Outside),
            firewall: ns(Ns::Firewall),
            inside: ns(Ns::Inside),
        };
        t.build();
        t
    }

    fn build(&self) {
        // veth ends are created directly inside the namespaces: nothing is
        // ever named or moved in the root namespace.
        must(
            "veth firewall:eth0 <-> outside:eth0",
            run(
                &[
                    "ip",
                    "link",
                    "add",
                    "eth0",
                    "netns",
                    self.name(Ns::Firewall),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    self.name(Ns::Outside),
                ],
                None,
            ),
        );
        must(
            "veth firewall:eth1 <-> inside:eth0",
            run(
                &[
                    "ip",
                    "link",
                    "add",
                    "eth1",
                    "netns",
                    self.name(Ns::Firewall),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    self.name(Ns::Inside),
                ],
                None,
            ),
        );
        let common = "set -euo pipefail
sysctl -qw net.ipv4.ip_forward=0
sysctl -qw net.ipv6.conf.all.forwarding=0
sysctl -qw net.ipv6.conf.default.accept_dad=0
ip link set lo up
";
        let outside = format!(
            "{common}
sysctl -qw net.ipv6.conf.eth0.accept_dad=0
ip addr add 198.51.100.2/24 dev eth0
ip -6 addr add 2001:db8:1::2/64 dev eth0 nodad
ip link set eth0 up
"
        );
        let firewall = format!(
            "{common}
sysctl -qw net.ipv6.conf.eth0.accept_dad=0
sysctl -qw net.ipv6.conf.eth1.accept_dad=0
ip addr add 198.51.100.1/24 dev eth0
ip -6 addr add 2001:db8:1::1/64 dev eth0 nodad
ip addr add 203.0.113.1/24 dev eth1
ip -6 addr add 2001:db8:2::1/64 dev eth1 nodad
ip link set eth0 up
ip link set eth1 up
"
        );
        let inside = format!(
            "{common}
sysctl -qw net.ipv6.conf.eth0.accept_dad=0
ip addr add 203.0.113.2/24 dev eth0
ip -6 addr add 2001:db8:2::2/64 dev eth0 nodad
ip link set eth0 up
ip route add default via 203.0.113.1
ip -6 route add default via 2001:db8:2::1
"
        );
        // A longer bound than other commands: while other tests' namespaces
        // and dockerds are torn down, the kernel's netlink lock can hold these
        // few `ip` calls past COMMAND_TIMEOUT_SECS (seen in CI).
        let configure = |ns: Ns, what: &str, script: &str| {
            let out =
                self.netns(ns)
                    .exec_bounded(&["bash", "-s"], Some(script), TOPOLOGY_TIMEOUT_SECS);
            must(what, out);
        };
        configure(Ns::Outside, "configure outside", &outside);
        configure(Ns::Firewall, "configure firewall", &firewall);
        configure(Ns::Inside, "configure inside", &inside);
        // veth carrier comes up asynchronously: wait (bounded) until the
        // direct neighbours answer, so the first test packet is not lost.
        for (ns, peer) in [
            (Ns::Outside, addr::FW_EXT_V4),
            (Ns::Inside, addr::FW_INT_V4),
            (Ns::Outside, addr::FW_EXT_V6),
            (Ns::Inside, addr::FW_INT_V6),
        ] {
            assert!(
                eventually(20, || self.ping(ns, peer)),
                "{}: {} cannot ping {peer} on a fresh topology",
                self.test,
                ns.role()
            );
        }
    }

    /// The name of a namespace (for `ip netns exec NAME`).
    pub fn name(&self, ns: Ns) -> &str {
        self.netns(ns).name()
    }

    /// The namespace guard of `ns`.
    pub fn netns(&self, ns: Ns) -> &Netns {
        match ns {
            Ns::Outside => &self.outside,
            Ns::Firewall => &self.firewall,
            Ns::Inside => &self.inside,
        }
    }

    /// Runs `args` (program first) inside `ns`, bounded by [`COMMAND_TIMEOUT_SECS`].
    pub fn exec(&self, ns: Ns, args: &[&str]) -> Output {
        self.netns(ns).exec(args, None)
    }

    /// Like [`Topology::exec`], feeding `stdin` to the command.
    pub fn exec_with_stdin(&self, ns: Ns, args: &[&str], stdin: &str) -> Output {
        self.netns(ns).exec(args, Some(stdin))
    }

    /// Runs a bash script (`bash -s`, script on stdin) inside `ns`.
    pub fn run_script(&self, ns: Ns, script: &str) -> Output {
        self.exec_with_stdin(ns, &["bash", "-s"], script)
    }

    /// Runs a one-line shell command inside `ns` (`bash -c`); panics if it fails
    /// and returns its stdout.
    pub fn sh(&self, ns: Ns, script: &str) -> String {
        let out = must(
            &format!("{} in {}: {script}", self.test, ns.role()),
            self.exec(ns, &["bash", "-c", script]),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a bash script inside the firewall namespace (`bash -s`, script on
    /// stdin), e.g. the one `Policy::bash()` renders.
    pub fn run_script_in_firewall(&self, script: &str) -> Output {
        self.run_script(Ns::Firewall, script)
    }

    /// Loads `v4` with `iptables-restore -w` and `v6` with `ip6tables-restore
    /// -w` inside the firewall namespace; `Err` with the tool's output if one
    /// refuses.
    pub fn try_load_rules(&self, v4: &str, v6: &str) -> Result<(), String> {
        let out = self.exec_with_stdin(Ns::Firewall, &["iptables-restore", "-w"], v4);
        if !out.status.success() {
            return Err(describe("iptables-restore", &out) + "--- input ---\n" + v4);
        }
        let out = self.exec_with_stdin(Ns::Firewall, &["ip6tables-restore", "-w"], v6);
        if !out.status.success() {
            return Err(describe("ip6tables-restore", &out) + "--- input ---\n" + v6);
        }
        Ok(())
    }

    /// [`Topology::try_load_rules`], panicking on failure.
    pub fn load_rules(&self, v4: &str, v6: &str) {
        if let Err(e) = self.try_load_rules(v4, v6) {
            panic!("{}: loading rules failed: {e}", self.test);
        }
    }

    /// Loads the nftables file `text` inside the firewall namespace
    /// ([`Netns::try_load_nft`]: `nft -c -f`, `nft -f`, then exactly the
    /// tables in `tables` must be there).
    pub fn try_load_nft(&self, text: &str, tables: &[&str]) -> Result<(), String> {
        self.firewall.try_load_nft(text, tables)
    }

    /// The IPv4 and IPv6 rulesets of `ns` (`iptables-save` then
    /// `ip6tables-save`) without comment lines and without counters, for
    /// comparing before/after ([`save::normalize`]).
    pub fn ruleset(&self, ns: Ns) -> String {
        self.iptables_rulesets(ns, Tools::Default, Counters::Strip)
    }

    /// Both families' rulesets of `ns` read with `tools`, with the counters
    /// `counters` keeps; panics if a dump fails (after retries).
    pub fn iptables_rulesets(&self, ns: Ns, tools: Tools, counters: Counters) -> String {
        Family::BOTH
            .iter()
            .map(|&f| {
                self.netns(ns)
                    .iptables_save(f, tools, counters)
                    .unwrap_or_else(|e| panic!("{}: {e}", self.test))
            })
            .collect()
    }

    /// Everything netfilter holds in `ns`, for failure messages: the
    /// iptables view of both families and `nft list ruleset` (which also
    /// shows the nftables tables iptables-save does not).
    pub fn dump(&self, ns: Ns) -> String {
        let iptables: String = Family::BOTH
            .iter()
            .map(|&f| {
                self.netns(ns)
                    .iptables_save(f, Tools::Default, Counters::Rules)
                    .unwrap_or_else(|e| e)
            })
            .collect();
        let nft = if gate::missing(gate::NFT).is_none() {
            let out = self.exec(ns, &["nft", "list", "ruleset"]);
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr)
        } else {
            "(no nft here)\n".to_string()
        };
        format!("--- iptables-save -c ---\n{iptables}--- nft list ruleset ---\n{nft}")
    }

    /// Starts a TCP listener on `port` (IPv4 and IPv6) inside `ns`, answering
    /// every connection with `"<role>:<port>\n"`. Returns once it accepts.
    pub fn listen_tcp(&self, ns: Ns, port: u16) -> Listener<'_> {
        let banner = format!("{}:{port}", ns.role());
        self.listen_tcp_with_banner(ns, port, &banner)
    }

    /// [`Topology::listen_tcp`] with a banner of your own (one line, no spaces).
    pub fn listen_tcp_with_banner(&self, ns: Ns, port: u16, banner: &str) -> Listener<'_> {
        Listener::start(self, ns, port, banner)
    }

    /// Whether a TCP connection from `ns` to `addr`:`port` is established
    /// within [`CONNECT_TIMEOUT_SECS`] (`nc -z`). One attempt.
    pub fn tcp_connects(&self, ns: Ns, addr: &str, port: u16) -> bool {
        let w = CONNECT_TIMEOUT_SECS.to_string();
        let p = port.to_string();
        let out = self.exec_bounded(ns, &["nc", "-z", "-n", "-w", &w, addr, &p]);
        out.status.success()
    }

    /// [`Topology::tcp_connects`] from the source address `src` (one of
    /// `ns`'s own addresses, e.g. one added with [`Topology::add_address`]).
    pub fn tcp_connects_from(&self, ns: Ns, src: &str, addr: &str, port: u16) -> bool {
        let w = CONNECT_TIMEOUT_SECS.to_string();
        let p = port.to_string();
        let out = self.exec_bounded(ns, &["nc", "-z", "-n", "-w", &w, "-s", src, addr, &p]);
        out.status.success()
    }

    /// Adds `cidr` (an IPv4 or IPv6 address with its prefix length, in the
    /// documentation ranges) to `eth0` of `ns`, without duplicate address
    /// detection.
    pub fn add_address(&self, ns: Ns, cidr: &str) {
        let script = if cidr.contains(':') {
            format!("ip -6 addr add {cidr} dev eth0 nodad")
        } else {
            format!("ip addr add {cidr} dev eth0")
        };
        self.sh(ns, &script);
    }

    /// Whether a TCP connection from `ns` to `addr`:`port` is refused (a
    /// reset arrives) rather than dropped or accepted. One attempt.
    pub fn tcp_refused(&self, ns: Ns, addr: &str, port: u16) -> bool {
        let w = CONNECT_TIMEOUT_SECS.to_string();
        let p = port.to_string();
        let out = self.exec(ns, &["nc", "-z", "-v", "-n", "-w", &w, addr, &p]);
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("refused")
    }

    /// Connects from `ns` to `addr`:`port` and returns what the server sent
    /// (trimmed) if the connection was established and something arrived;
    /// `None` if not. The harness's listeners send `"<role>:<port>"`.
    pub fn tcp_banner(&self, ns: Ns, addr: &str, port: u16) -> Option<String> {
        let w = CONNECT_TIMEOUT_SECS.to_string();
        let p = port.to_string();
        // -d: send nothing; the listener sends its banner and closes.
        let out = self.exec_bounded(ns, &["nc", "-d", "-n", "-w", &w, addr, &p]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if text.is_empty() {
            None
        } else {
            Some(text)
        }
    }

    /// [`Topology::tcp_banner`] from a fixed local source port (`nc -p`): for
    /// rules that look at the client's port, e.g. `block out` of the range a
    /// client picked its port from.
    pub fn tcp_banner_from_port(
        &self,
        ns: Ns,
        addr: &str,
        port: u16,
        src_port: u16,
    ) -> Option<String> {
        let w = CONNECT_TIMEOUT_SECS.to_string();
        let p = port.to_string();
        let sp = src_port.to_string();
        let out = self.exec_bounded(ns, &["nc", "-d", "-n", "-w", &w, "-p", &sp, addr, &p]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if text.is_empty() {
            None
        } else {
            Some(text)
        }
    }

    /// Whether `addr` answers one ping from `ns` within a second (IPv4 or IPv6).
    pub fn ping(&self, ns: Ns, addr: &str) -> bool {
        self.exec_bounded(ns, &["ping", "-n", "-q", "-c1", "-W1", addr])
            .status
            .success()
    }

    fn exec_bounded(&self, ns: Ns, args: &[&str]) -> Output {
        self.netns(ns)
            .exec_bounded(args, None, CONNECT_TIMEOUT_SECS + 3)
    }

    /// `/proc/sys/net/ipv4/ip_forward` inside the firewall namespace.
    pub fn ip_forward(&self) -> bool {
        self.sh(Ns::Firewall, "cat /proc/sys/net/ipv4/ip_forward")
            .trim()
            .starts_with('1')
    }

    /// Sets `net.ipv4.ip_forward` inside the firewall namespace (by hand, as
    /// the generated bash script would for a router).
    pub fn set_ip_forward(&self, on: bool) {
        let v = if on { 1 } else { 0 };
        self.sh(Ns::Firewall, &format!("sysctl -qw net.ipv4.ip_forward={v}"));
    }

    /// Sets `net.ipv6.conf.all.forwarding` inside the firewall namespace.
    pub fn set_ipv6_forwarding(&self, on: bool) {
        let v = if on { 1 } else { 0 };
        self.sh(
            Ns::Firewall,
            &format!("sysctl -qw net.ipv6.conf.all.forwarding={v}"),
        );
    }

    /// Runs ONE test of this test binary inside `ns`: the binary is
    /// re-executed under `ip netns exec` with `--exact test --ignored
    /// --nocapture`, and with [`INNER_ENV`] set to the namespace's role
    /// (`firewall`, ...) plus `env`. This is how code that acts on "this host"
    /// (e.g. `Policy::apply()`) runs on the firewall namespace: write the
    /// inner part as an `#[ignore]`d test that returns at once unless
    /// [`inner_role`] is `Some`, and call this from the outer test. `test` is
    /// the full test name as libtest prints it (e.g. `apply_inner` or
    /// `module::apply_inner`). Bounded by [`COMMAND_TIMEOUT_SECS`]. Check the
    /// result with `out.status.success()`; [`describe`] formats it.
    pub fn run_test_in(&self, ns: Ns, test: &str, env: &[(&str, &str)]) -> Output {
        let exe = self_exe();
        let exe = exe.as_str();
        let mut args = vec!["env", "--"];
        let pairs: Vec<String> = std::iter::once((INNER_ENV, ns.role()))
            .chain(env.iter().copied())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        args.extend(pairs.iter().map(String::as_str));
        args.extend([
            exe,
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ]);
        let out = self.exec(ns, &args);
        // libtest exits 0 when the filter matched nothing: refuse that.
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains("running 0 tests"),
            "run_test_in: no test named {test:?} in this binary (use the full path libtest prints)"
        );
        out
    }

    /// [`Topology::run_test_in`] for an inner test that must pass: panics
    /// unless it exited 0, showing its output ([`describe`]) under `what`.
    #[track_caller]
    pub fn run_test_in_ok(&self, ns: Ns, test: &str, env: &[(&str, &str)], what: &str) -> Output {
        let out = self.run_test_in(ns, test, env);
        assert!(out.status.success(), "{}", describe(what, &out));
        out
    }

    /// Gives the outside host routes to the inside networks via the firewall
    /// (inside the outside namespace only). Without this, nothing from inside
    /// can be answered unless it is masqueraded: use it to show that the
    /// firewall itself refuses to forward.
    pub fn route_outside_to_inside(&self) {
        self.sh(
            Ns::Outside,
            &format!(
                "ip route replace {} via {} && ip -6 route replace {} via {}",
                addr::INSIDE_NET_V4,
                addr::FW_EXT_V4,
                addr::INSIDE_NET_V6,
                addr::FW_EXT_V6
            ),
        );
    }
}

// ---------------------------------------------------------------------------
// Listeners
// ---------------------------------------------------------------------------

/// A TCP server running inside a namespace; killed (by its pid) on drop.
pub struct Listener<'t> {
    topology: &'t Topology,
    ns: Ns,
    port: u16,
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl<'t> Listener<'t> {
    fn start(topology: &'t Topology, ns: Ns, port: u16, banner: &str) -> Listener<'t> {
        assert!(
            !banner.is_empty() && !banner.contains(char::is_whitespace),
            "listener banner must be one word: {banner:?}"
        );
        let exe = self_exe();
        let exe = exe.as_str();
        let spec = format!("listen {port} {banner} {}", LISTENER_LIFETIME.as_secs());
        // Bounded twice: by the helper's own lifetime and, should it hang,
        // by the runner's `timeout` a little later.
        let bound = LISTENER_LIFETIME.as_secs() as u32 + 30;
        let args = [
            "ip",
            "netns",
            "exec",
            topology.name(ns),
            exe,
            HELPER_TEST,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ];
        let mut child = command::bounded(&args, bound)
            .env(HELPER_ENV, &spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the listener helper: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr was piped");
        let sink = Arc::clone(&lines);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("listener log").push(line);
            }
        });
        let mut listener = Listener {
            topology,
            ns,
            port,
            child: Some(child),
            lines,
        };
        listener.wait_ready();
        listener
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.log().iter().any(|l| l == "READY") {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    thread::sleep(Duration::from_millis(100));
                    panic!(
                        "listener {}:{} exited before it was ready ({status}):\n{}",
                        self.ns.role(),
                        self.port,
                        self.log().join("\n")
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "listener {}:{} not ready within 20s:\n{}",
                self.ns.role(),
                self.port,
                self.log().join("\n")
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> Vec<String> {
        self.lines.lock().expect("listener log").clone()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The namespace it runs in.
    pub fn ns(&self) -> Ns {
        self.ns
    }

    /// The source addresses of the connections accepted so far, in order
    /// (IPv4-mapped IPv6 addresses are given as IPv4).
    pub fn peers(&self) -> Vec<IpAddr> {
        self.log()
            .iter()
            .filter_map(|l| l.strip_prefix("CONN "))
            .filter_map(|a| a.parse().ok())
            .collect()
    }

    /// Waits (at most `timeout`) until at least `count` connections were
    /// accepted, and returns their source addresses.
    pub fn wait_for_peers(&self, count: usize, timeout: Duration) -> Vec<IpAddr> {
        let deadline = Instant::now() + timeout;
        loop {
            let peers = self.peers();
            if peers.len() >= count || Instant::now() >= deadline {
                return peers;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The distinct source addresses seen so far.
    pub fn distinct_peers(&self) -> HashSet<IpAddr> {
        self.peers().into_iter().collect()
    }

    /// The topology it belongs to.
    pub fn topology(&self) -> &'t Topology {
        self.topology
    }
}

impl Drop for Listener<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The helper exits when its stdin closes (and `timeout`, whose
            // pid this is, with it); killed if it has not within 2 s.
            drop(child.stdin.take());
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until && matches!(child.try_wait(), Ok(None)) {
                thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Not a test: the listener process the harness starts inside a namespace
/// (this binary re-executed under `ip netns exec`). Without the harness's
/// environment variable it returns at once.
#[test]
#[ignore = "helper process of the namespace harness; started by the harness itself"]
fn netns_harness_helper_process() {
    let Ok(spec) = std::env::var(HELPER_ENV) else {
        return;
    };
    helper_main(&spec);
}

fn helper_say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

fn helper_main(spec: &str) -> ! {
    let parts: Vec<&str> = spec.split_whitespace().collect();
    let [_listen, port, banner, lifetime] = parts[..] else {
        helper_say(&format!("ERROR bad spec {spec:?}"));
        std::process::exit(2);
    };
    let (Ok(port), Ok(lifetime)) = (port.parse::<u16>(), lifetime.parse::<u64>()) else {
        helper_say(&format!("ERROR bad spec {spec:?}"));
        std::process::exit(2);
    };
    // Exit when the test process goes away (our stdin closes) ...
    thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
        std::process::exit(0);
    });
    // ... or after the lifetime bound, whatever happens.
    thread::spawn(move || {
        thread::sleep(Duration::from_secs(lifetime));
        std::process::exit(0);
    });
    // [::] is dual-stack unless net.ipv6.bindv6only is set; then 0.0.0.0
    // binds separately. One of the two must work.
    let mut listeners = Vec::new();
    let mut errors = Vec::new();
    for bind in [format!("[::]:{port}"), format!("0.0.0.0:{port}")] {
        match TcpListener::bind(&bind) {
            Ok(l) => listeners.push(l),
            Err(e) => errors.push(format!("{bind}: {e}")),
        }
    }
    if listeners.is_empty() {
        helper_say(&format!("ERROR cannot listen: {}", errors.join("; ")));
        std::process::exit(1);
    }
    let banner = format!("{banner}\n");
    let mut handles = Vec::new();
    for l in listeners {
        let banner = banner.clone();
        handles.push(thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(stream) = conn else { continue };
                let banner = banner.clone();
                thread::spawn(move || serve(stream, &banner));
            }
        }));
    }
    helper_say("READY");
    for h in handles {
        let _ = h.join();
    }
    std::process::exit(0);
}

fn serve(mut stream: TcpStream, banner: &str) {
    let peer = match stream.peer_addr() {
        Ok(a) => match a.ip() {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        },
        Err(_) => return,
    };
    helper_say(&format!("CONN {peer}"));
    let _ = stream.write_all(banner.as_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Drain what the client sends (bounded), then close gracefully.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 256];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

// ---------------------------------------------------------------------------
// The DSL.md section 5 traffic matrix
// ---------------------------------------------------------------------------

/// The policy of DSL.md section 5: section 1 plus `redirect 26 -> 25;`, with
/// the DNAT target moved to this topology's inside host.
pub const SECTION5_POLICY: &str = "extif eth0;
open tcp 22, 80;
icmp accept;
masquerade;
dnat 221 -> 203.0.113.2:22;
redirect 26 -> 25;
";

/// A policy that is not a router: it must forward nothing.
pub const NON_ROUTER_POLICY: &str = "extif eth0;
open tcp 22;
";

/// Ports with a listener on the firewall that the section 5 policy must keep
/// closed from outside.
pub const SECTION5_CLOSED_PORTS: [u16; 3] = [25, 443, 8080];

/// Port the outside host listens on for connections from the firewall and
/// from inside.
pub const OUTSIDE_SERVICE_PORT: u16 = 8000;

/// Asserts the behaviour of DSL.md section 5 on `t`, whose firewall namespace
/// already runs the section 5 policy ([`SECTION5_POLICY`]) including
/// `ip_forward`. Starts (and stops) its own listeners: there must be none on
/// firewall ports 22, 25, 26, 80, 221, 443, 8080, inside port 22, outside
/// port 8000.
pub fn assert_section5_matrix(t: &Topology) {
    use addr::*;
    let _fw: Vec<Listener<'_>> = [22, 25, 26, 80, 221, 443, 8080]
        .iter()
        .map(|&p| t.listen_tcp(Ns::Firewall, p))
        .collect();
    let _inside_ssh = t.listen_tcp(Ns::Inside, 22);
    let out_service = t.listen_tcp(Ns::Outside, OUTSIDE_SERVICE_PORT);

    let mut failures: Vec<String> = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failures.push(what);
        }
    };

    // Open ports answer, and from the firewall itself (IPv4 and IPv6).
    for (a, fam) in [(FW_EXT_V4, "IPv4"), (FW_EXT_V6, "IPv6")] {
        for port in [22u16, 80] {
            let got = retry_banner(t, Ns::Outside, a, port);
            check(
                got.as_deref() == Some(&format!("firewall:{port}")),
                format!("{fam}: outside -> {a}:{port} should reach firewall:{port}, got {got:?}"),
            );
        }
    }
    // ping answers (icmp accept), both families.
    for a in [FW_EXT_V4, FW_EXT_V6] {
        check(
            eventually(3, || t.ping(Ns::Outside, a)),
            format!("outside -> ping {a} should answer (icmp accept)"),
        );
    }
    // DNAT 221 -> inside:22.
    let got = retry_banner(t, Ns::Outside, FW_EXT_V4, 221);
    check(
        got.as_deref() == Some("inside:22"),
        format!("outside -> {FW_EXT_V4}:221 should reach inside:22 (dnat), got {got:?}"),
    );
    // redirect 26 -> 25.
    let got = retry_banner(t, Ns::Outside, FW_EXT_V4, 26);
    check(
        got.as_deref() == Some("firewall:25"),
        format!("outside -> {FW_EXT_V4}:26 should reach firewall:25 (redirect), got {got:?}"),
    );
    // A connection the firewall opened itself gets its replies.
    let got = retry_banner(t, Ns::Firewall, OUTSIDE_V4, OUTSIDE_SERVICE_PORT);
    check(
        got.as_deref() == Some(&format!("outside:{OUTSIDE_SERVICE_PORT}")),
        format!(
            "firewall -> {OUTSIDE_V4}:{OUTSIDE_SERVICE_PORT} should get its replies, got {got:?}"
        ),
    );
    let got = retry_banner(t, Ns::Firewall, OUTSIDE_V6, OUTSIDE_SERVICE_PORT);
    check(
        got.as_deref() == Some(&format!("outside:{OUTSIDE_SERVICE_PORT}")),
        format!(
            "firewall -> [{OUTSIDE_V6}]:{OUTSIDE_SERVICE_PORT} should get its replies, got {got:?}"
        ),
    );
    // The listener records a peer after answering it: wait until the
    // firewall's own IPv6 connection is recorded, or a late record of it would
    // be counted as the inside host's connection below.
    let fw6: IpAddr = FW_EXT_V6.parse().expect("address constant");
    let recorded = Instant::now() + Duration::from_secs(3);
    while !out_service.peers().contains(&fw6) && Instant::now() < recorded {
        thread::sleep(Duration::from_millis(20));
    }
    let before = out_service.peers().len();
    // The inside host reaches the outside, seen there as the firewall.
    let got = retry_banner(t, Ns::Inside, OUTSIDE_V4, OUTSIDE_SERVICE_PORT);
    check(
        got.as_deref() == Some(&format!("outside:{OUTSIDE_SERVICE_PORT}")),
        format!("inside -> {OUTSIDE_V4}:{OUTSIDE_SERVICE_PORT} should connect (masquerade), got {got:?}"),
    );
    let peers = out_service.wait_for_peers(before + 1, Duration::from_secs(3));
    let fw: IpAddr = FW_EXT_V4.parse().expect("address constant");
    let from_inside = &peers[before.min(peers.len())..];
    check(
        !from_inside.is_empty() && from_inside.iter().all(|p| *p == fw),
        format!(
            "inside's connection should arrive outside from {FW_EXT_V4}, seen from {from_inside:?}"
        ),
    );

    // Closed ports: one attempt each, all at once (a DROP costs the full timeout).
    let mut closed: Vec<(&str, u16, &str)> = Vec::new();
    for &p in &SECTION5_CLOSED_PORTS {
        closed.push((FW_EXT_V4, p, "not opened"));
        closed.push((FW_EXT_V6, p, "not opened (IPv6)"));
    }
    closed.push((FW_EXT_V6, 26, "redirect is IPv4 only"));
    closed.push((FW_EXT_V6, 221, "dnat is IPv4 only"));
    let results: Vec<(String, bool)> = thread::scope(|s| {
        let handles: Vec<_> = closed
            .iter()
            .map(|&(a, p, why)| {
                s.spawn(move || {
                    let what = format!("outside -> {a} port {p} must be closed ({why})");
                    (what, t.tcp_connects(Ns::Outside, a, p))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("closed-port probe thread"))
            .collect()
    });
    for (what, connected) in results {
        check(!connected, what);
    }

    assert!(
        failures.is_empty(),
        "section 5 traffic matrix: {} failure(s):\n  {}\n--- firewall ruleset ---\n{}",
        failures.len(),
        failures.join("\n  "),
        t.dump(Ns::Firewall)
    );
}

/// A banner, retried a few times (for checks that must succeed).
fn retry_banner(t: &Topology, ns: Ns, a: &str, port: u16) -> Option<String> {
    let mut last = None;
    for _ in 0..3 {
        last = t.tcp_banner(ns, a, port);
        if last.is_some() {
            break;
        }
        thread::sleep(Duration::from_millis(300));
    }
    last
}

/// Asserts that a non-router policy ([`NON_ROUTER_POLICY`]) running in `t`'s
/// firewall forwards nothing, in either direction, IPv4 and IPv6, even with
/// forwarding switched on by hand and routes that would make it work.
/// Switches forwarding on in the firewall and gives the outside host a route
/// inward (both inside the namespaces).
pub fn assert_forwards_nothing(t: &Topology) {
    use addr::*;
    t.route_outside_to_inside();
    t.set_ip_forward(true);
    t.set_ipv6_forwarding(true);
    let _inside_ssh = t.listen_tcp(Ns::Inside, 22);
    let _out_service = t.listen_tcp(Ns::Outside, OUTSIDE_SERVICE_PORT);
    let probes = [
        (Ns::Inside, OUTSIDE_V4, OUTSIDE_SERVICE_PORT),
        (Ns::Inside, OUTSIDE_V6, OUTSIDE_SERVICE_PORT),
        (Ns::Outside, INSIDE_V4, 22),
        (Ns::Outside, INSIDE_V6, 22),
    ];
    let results: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = probes
            .iter()
            .map(|&(ns, a, p)| {
                s.spawn(move || {
                    if t.tcp_connects(ns, a, p) {
                        Some(format!(
                            "{} -> {a}:{p} was forwarded by a policy that is not a router",
                            ns.role()
                        ))
                    } else {
                        None
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().expect("forwarding probe thread"))
            .collect()
    });
    assert!(
        results.is_empty(),
        "{}\n--- firewall ruleset ---\n{}",
        results.join("\n"),
        t.dump(Ns::Firewall)
    );
}
