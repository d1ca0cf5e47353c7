//! One backend's half of the differential test: a [`Topology`] with the
//! agent's servers running in all three namespaces, forwarding on, the
//! outside host routed inward, and a way to load a policy and run probes.

use crate::agent::AGENT_ENV;
use crate::common::{addr, Ns, Topology};
use firewall::Policy;
use std::collections::BTreeSet;
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The name of the ignored test that is the agent (see `agent.rs`).
const AGENT_TEST: &str = "differential_agent";

/// Upper bound of one probe batch (the probes themselves take about a second).
const BATCH_TIMEOUT_SECS: &str = "30";

/// Upper bound of a server's life (its stdin closing or a kill ends it first).
const SERVER_LIFETIME_SECS: u64 = 3600;

/// Which renderer's output a lab loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `iptables_restore()` and `ip6tables_restore()` with `iptables-restore`.
    Iptables,
    /// `nft()` with `nft -f`.
    Nft,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Iptables => "iptables-restore",
            Backend::Nft => "nft -f",
        })
    }
}

/// What a probe does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A TCP connect, then the server's banner.
    Tcp,
    /// One UDP datagram, then the server's reply.
    Udp,
    /// One ICMP / ICMPv6 echo request.
    Ping,
}

/// One probe: from a namespace to an address (and port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Where it starts.
    pub from: Ns,
    /// What it sends.
    pub kind: Kind,
    /// The destination address.
    pub addr: &'static str,
    /// The destination port (ignored for ping).
    pub port: u16,
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.addr.contains(':') {
            format!("[{}]", self.addr)
        } else {
            self.addr.to_string()
        };
        match self.kind {
            Kind::Tcp => write!(f, "{} -> tcp {host}:{}", self.from.role(), self.port),
            Kind::Udp => write!(f, "{} -> udp {host}:{}", self.from.role(), self.port),
            Kind::Ping => write!(f, "{} -> ping {}", self.from.role(), self.addr),
        }
    }
}

/// A running agent server; killed by its pid when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        // `ip netns exec` execs the agent, so this pid is the agent itself.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A topology for one backend, with servers on `ports` in every namespace.
pub struct Lab {
    /// The backend it loads.
    pub backend: Backend,
    // Declared before `t`: the servers stop before the namespaces go.
    _servers: Vec<Server>,
    /// The namespaces.
    pub t: Topology,
}

/// This test binary, as a path that stays valid while the tests run.
fn self_exe() -> String {
    format!("/proc/{}/exe", std::process::id())
}

/// The agent as a command: this binary under `ip netns exec`, which execs
/// it (so the child's pid is the agent's). A server bounds its own life
/// ([`SERVER_LIFETIME_SECS`], and it exits when its stdin closes); a probe
/// batch is bounded by `timeout` ([`BATCH_TIMEOUT_SECS`]).
fn agent_command(t: &Topology, ns: Ns, spec: &str) -> Command {
    let mut cmd = if spec == "probe" {
        let mut c = Command::new("timeout");
        c.args(["-k", "5", BATCH_TIMEOUT_SECS, "ip"]);
        c
    } else {
        Command::new("ip")
    };
    cmd.args(["netns", "exec", t.name(ns)])
        .arg(self_exe())
        .args(["--exact", AGENT_TEST, "--ignored", "--nocapture"])
        .arg("--test-threads=1")
        .env(AGENT_ENV, spec);
    cmd
}

impl Lab {
    /// A fresh topology named after `test` and `backend`, forwarding on in
    /// the firewall (both families: the rules alone decide what crosses), the
    /// outside host routed to the inside networks (so a forwarded probe that
    /// is not masqueraded can be answered), and servers on `ports` (TCP and
    /// UDP) in all three namespaces; ICMP errors not rate limited
    /// ([`NO_ICMP_RATE_LIMIT`]).
    pub fn new(test: &str, backend: Backend, ports: &[u16]) -> Lab {
        let short = match backend {
            Backend::Iptables => "ipt",
            Backend::Nft => "nft",
        };
        let t = Topology::new(&format!("{test}_{short}"));
        t.set_ip_forward(true);
        t.set_ipv6_forwarding(true);
        t.route_outside_to_inside();
        for ns in [Ns::Outside, Ns::Firewall, Ns::Inside] {
            t.sh(ns, NO_ICMP_RATE_LIMIT);
        }
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        let servers = [Ns::Outside, Ns::Firewall, Ns::Inside]
            .into_iter()
            .map(|ns| {
                let spec = format!(
                    "serve {} {SERVER_LIFETIME_SECS} {}",
                    ns.role(),
                    list.join(",")
                );
                start_server(&t, ns, &spec)
            })
            .collect();
        Lab {
            backend,
            t,
            _servers: servers,
        }
    }

    /// Replaces whatever the firewall namespace ran before with `policy`,
    /// rendered for this lab's backend. `Err` with the tool's output if the
    /// tool refuses the text.
    pub fn load(&self, policy: &Policy) -> Result<(), String> {
        match self.backend {
            Backend::Iptables => {
                // iptables-restore replaces only the tables its input names,
                // and a policy without NAT names no nat table: empty both
                // first (works with iptables-nft and iptables-legacy alike).
                self.t.try_load_rules(EMPTY_IPTABLES, EMPTY_IPTABLES)?;
                self.t
                    .try_load_rules(policy.iptables_restore(), policy.ip6tables_restore())
            }
            Backend::Nft => {
                let flush = self.t.exec(Ns::Firewall, &["nft", "flush", "ruleset"]);
                if !flush.status.success() {
                    return Err(crate::common::describe("nft flush ruleset", &flush));
                }
                let out = self
                    .t
                    .exec_with_stdin(Ns::Firewall, &["nft", "-f", "-"], policy.nft());
                if out.status.success() {
                    Ok(())
                } else {
                    Err(crate::common::describe("nft -f", &out))
                }
            }
        }
    }

    /// Runs `probes` (all at once: one agent per source namespace, each
    /// running its probes in parallel) and returns their verdicts in order.
    pub fn run(&self, probes: &[Probe]) -> Vec<String> {
        let mut verdicts = vec![String::from("no verdict"); probes.len()];
        let results: Vec<Vec<(usize, String)>> = thread::scope(|s| {
            let handles: Vec<_> = [Ns::Outside, Ns::Firewall, Ns::Inside]
                .into_iter()
                .map(|ns| {
                    let mine: Vec<(usize, Probe)> = probes
                        .iter()
                        .copied()
                        .enumerate()
                        .filter(|(_, p)| p.from == ns)
                        .collect();
                    s.spawn(move || self.run_in(ns, &mine))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("probe batch thread"))
                .collect()
        });
        for (i, v) in results.into_iter().flatten() {
            verdicts[i] = v;
        }
        verdicts
    }

    fn run_in(&self, ns: Ns, probes: &[(usize, Probe)]) -> Vec<(usize, String)> {
        if probes.is_empty() {
            return Vec::new();
        }
        let input: String = probes
            .iter()
            .map(|(i, p)| {
                let kind = match p.kind {
                    Kind::Tcp => "tcp",
                    Kind::Udp => "udp",
                    Kind::Ping => "ping",
                };
                format!("{i} {kind} {} {}\n", p.addr, p.port)
            })
            .collect();
        let mut child = agent_command(&self.t, ns, "probe")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the probe agent: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
        let out = child
            .wait_with_output()
            .expect("waiting for the probe agent");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let got: Vec<(usize, String)> = stdout
            .lines()
            // libtest's `test differential_agent ... ` has no newline yet.
            .filter_map(|l| l.find("VERDICT ").map(|at| &l[at + "VERDICT ".len()..]))
            .filter_map(|l| {
                let (id, verdict) = l.split_once(' ')?;
                Some((id.parse().ok()?, verdict.to_string()))
            })
            .collect();
        assert_eq!(
            got.len(),
            probes.len(),
            "the probe agent in {} gave {} verdicts for {} probes: {}\n--- stderr ---\n{}",
            ns.role(),
            got.len(),
            probes.len(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        got
    }
}

/// ICMP errors (a closed UDP port's port-unreachable, a REJECT's) are rate
/// limited per destination (burst 6, then one a second) and per namespace
/// (burst 50): a probe batch sends more, and which probes then see `refused`
/// and which `timeout` would be chance. Off in the lab's namespaces (the
/// global limits are per namespace where the kernel shows them inside one;
/// elsewhere they stay untouched).
const NO_ICMP_RATE_LIMIT: &str = "set -e
echo 0 > /proc/sys/net/ipv4/icmp_ratelimit
echo 0 > /proc/sys/net/ipv6/icmp/ratelimit
for f in icmp_msgs_per_sec icmp_msgs_burst; do
  if [ -e /proc/sys/net/ipv4/$f ]; then echo 1000000 > /proc/sys/net/ipv4/$f; fi
done";

/// Empty `filter` and `nat` tables, everything accepted: the state of a
/// fresh namespace, as far as verdicts go.
const EMPTY_IPTABLES: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
";

fn start_server(t: &Topology, ns: Ns, spec: &str) -> Server {
    let mut child = agent_command(t, ns, spec)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the server agent: {e}"));
    let stderr = child.stderr.take().expect("stderr was piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let server = Server { child };
    let mut log = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line == "READY" => return server,
            Ok(line) => log.push(line),
            Err(_) => panic!(
                "the {} server agent did not get ready within 20 s:\n{}",
                ns.role(),
                log.join("\n")
            ),
        }
    }
}

/// Most ports a probe sample adds for one policy.
const MAX_POLICY_PORTS: usize = 48;

/// `base` and the ports `policy` names: first every port it names (single
/// ports, the ends of ranges, the incoming and target ports of `dnat` and
/// `redirect`), then the ports just outside each and a middle port of each
/// range, lowest first within each group, at most [`MAX_POLICY_PORTS`] more
/// than `base`.
pub fn ports_of(policy: &Policy, base: &[u16]) -> Vec<u16> {
    let m = policy.model();
    let mut named = BTreeSet::new();
    let mut near = BTreeSet::new();
    let mut range = |a: u16, b: u16| {
        named.insert(a);
        named.insert(b);
        near.insert(a + (b - a) / 2);
        near.insert(a.saturating_sub(1).max(1));
        near.insert(b.saturating_add(1));
    };
    let ranges = m
        .opens
        .iter()
        .flat_map(|o| o.ports.iter())
        .chain(m.block_out.iter().flat_map(|b| b.ports.iter()));
    for r in ranges {
        range(r.start().get(), r.end().get());
    }
    for d in &m.dnats {
        range(d.port.get(), d.port.get());
        range(d.to_port.get(), d.to_port.get());
    }
    for r in &m.redirects {
        range(r.port.get(), r.port.get());
        range(r.to_port.get(), r.to_port.get());
    }
    let mut ports: Vec<u16> = base.to_vec();
    for p in named.iter().chain(near.difference(&named)) {
        if ports.len() >= base.len() + MAX_POLICY_PORTS {
            break;
        }
        if !ports.contains(p) {
            ports.push(*p);
        }
    }
    ports
}

/// The probe sample of a policy, for `ports` (see [`ports_of`]), IPv4 and
/// IPv6 alike: from outside to the firewall's external address (TCP and UDP
/// on every port: `open`, `dnat`, `redirect`), to its internal address and
/// straight to the inside host (TCP on every port: forwarding); from inside
/// outward (TCP and UDP on every port: masquerading shows in the source the
/// outside server reports, `block out`), to the firewall's internal and
/// external addresses; from the firewall outward (TCP and UDP on every
/// port: `block out`, `policy output`); pings along the same paths.
pub fn sample(ports: &[u16]) -> Vec<Probe> {
    use addr::*;
    let mut v = Vec::new();
    let mut add = |from, kind, addr, port| {
        v.push(Probe {
            from,
            kind,
            addr,
            port,
        })
    };
    for a in [FW_EXT_V4, FW_EXT_V6] {
        for &p in ports {
            add(Ns::Outside, Kind::Tcp, a, p);
            add(Ns::Outside, Kind::Udp, a, p);
        }
        add(Ns::Outside, Kind::Ping, a, 0);
    }
    for a in [FW_INT_V4, FW_INT_V6] {
        for p in [22, 80] {
            add(Ns::Outside, Kind::Tcp, a, p);
        }
    }
    for a in [INSIDE_V4, INSIDE_V6] {
        // Forwarded without DNAT: a `dnat` accepts only its own connections.
        for &p in ports {
            add(Ns::Outside, Kind::Tcp, a, p);
        }
        add(Ns::Outside, Kind::Udp, a, 53);
        add(Ns::Outside, Kind::Ping, a, 0);
    }
    for a in [OUTSIDE_V4, OUTSIDE_V6] {
        // Masquerading shows in the source the outside server reports;
        // `block out` applies to forwarded connections too.
        for &p in ports {
            add(Ns::Inside, Kind::Tcp, a, p);
            add(Ns::Inside, Kind::Udp, a, p);
        }
        add(Ns::Inside, Kind::Ping, a, 0);
    }
    for a in [FW_INT_V4, FW_INT_V6] {
        for p in [22, 80, 3306] {
            add(Ns::Inside, Kind::Tcp, a, p);
        }
        add(Ns::Inside, Kind::Ping, a, 0);
    }
    for a in [FW_EXT_V4, FW_EXT_V6] {
        // The external address from inside: no DNAT or redirect there (they
        // match the external interfaces only), the trusted interface's rules.
        for &p in ports {
            add(Ns::Inside, Kind::Tcp, a, p);
        }
    }
    for a in [OUTSIDE_V4, OUTSIDE_V6] {
        for &p in ports {
            add(Ns::Firewall, Kind::Tcp, a, p);
            add(Ns::Firewall, Kind::Udp, a, p);
        }
        add(Ns::Firewall, Kind::Ping, a, 0);
    }
    v
}
