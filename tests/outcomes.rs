//! What compiles is safe to apply: policies that compile must do what they
//! say, as real traffic sees it. Each test runs the generated rules in
//! network namespaces (tests/common) over IPv4 and IPv6:
//!
//! * `block out` stops only new outgoing connections: a client whose source
//!   port lies in a blocked range still gets its answers.
//! * `policy forward accept` forwards nothing from outside inward that no
//!   `dnat` asks for.
//! * `icmp drop` means no answer at all to a ping, also under
//!   `policy input reject`.
//! * An IPv6 host keeps what RFC 4890 says it must accept: DHCPv6 replies from
//!   a link-local server, multicast listener queries; and neighbour
//!   discovery both ways, echo, and ICMPv6 errors (packet too big) about its
//!   own traffic.
//!
//! Each test runs once per rule loader (`<test>::iptables_restore`,
//! `<test>::nft`: `both_loaders!`). Needs root, `ip netns`, iptables, nft,
//! nc, ping (see `common::gate`; under `CI=true` a missing piece fails), and
//! python3 for the IPv6 datagrams the other tools cannot send.

mod common;

use common::addr::*;
use common::policy::{forwarding_topology, parse};
use common::save::{self, Counters, Family, Tools};
use common::{gate, Loader, Ns, Topology};
use std::thread;

/// Collects what went wrong, to report every failure of a test at once with
/// the firewall's ruleset.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, ok: bool, what: String) {
        if !ok {
            self.0.push(what);
        }
    }

    #[track_caller]
    fn assert_none(self, t: &Topology, test: &str) {
        assert!(
            self.0.is_empty(),
            "{test}: {} failure(s):\n  {}\n--- firewall ruleset ---\n{}",
            self.0.len(),
            self.0.join("\n  "),
            t.dump(Ns::Firewall)
        );
    }
}

/// Runs the negative probes `(from, addr, port, why)` in parallel (a dropped
/// SYN costs the full connect timeout) and records each one that connects.
fn assert_closed(t: &Topology, probes: &[(Ns, &str, u16, &str)], failures: &mut Failures) {
    let results: Vec<(String, bool)> = thread::scope(|s| {
        let handles: Vec<_> = probes
            .iter()
            .map(|&(ns, a, p, why)| {
                s.spawn(move || {
                    let what = format!("{} -> {a} port {p} must not connect ({why})", ns.role());
                    (what, t.tcp_connects(ns, a, p))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("probe thread"))
            .collect()
    });
    for (what, connected) in results {
        failures.check(!connected, what);
    }
}

/// The banner of `addr:port` from `ns`, retried (for checks that must succeed).
fn banner(t: &Topology, ns: Ns, a: &str, port: u16) -> Option<String> {
    let mut last = None;
    for _ in 0..3 {
        last = t.tcp_banner(ns, a, port);
        if last.is_some() {
            break;
        }
    }
    last
}

// ------------------------------------------------------------ 1. block out

/// `block out` of the whole Linux ephemeral port range (32768..=60999), on a
/// router, so that the forwarded path is covered too.
const BLOCK_EPHEMERAL: &str = "extif eth0;
open tcp 22;
masquerade;
dnat 2221 -> 203.0.113.2:22;
block out tcp 32768..=60999;
";

/// A port of the blocked range that the outside host listens on.
const BLOCKED_SERVICE: u16 = 40000;

both_loaders! {
    fn block_out_stops_new_connections_not_replies(loader, test) {
        if !loader.available(test) {
            return;
        }
        let policy = parse(BLOCK_EPHEMERAL);
        let t = forwarding_topology(test, &policy, loader);
        let _ssh = t.listen_tcp(Ns::Firewall, 22);
        let _inner_ssh = t.listen_tcp(Ns::Inside, 22);
        let _blocked = t.listen_tcp(Ns::Outside, BLOCKED_SERVICE);
        let _service = t.listen_tcp(Ns::Outside, common::OUTSIDE_SERVICE_PORT);
        let mut f = Failures::default();

        // An ssh client whose source port lies in the blocked range gets its
        // answer, over both families; a new port for every attempt.
        let mut src = 45000;
        for (a, port, expect) in [
            (FW_EXT_V4, 22, "firewall:22"),
            (FW_EXT_V6, 22, "firewall:22"),
            (FW_EXT_V4, 2221, "inside:22"),
        ] {
            let mut got = None;
            for _ in 0..3 {
                src += 1;
                got = t.tcp_banner_from_port(Ns::Outside, a, port, src);
                if got.is_some() {
                    break;
                }
            }
            f.check(
                got.as_deref() == Some(expect),
                format!(
                    "outside (source port {src}, blocked range) -> {a}:{port} should reach {expect}: \
                     `block out` must not drop the replies, got {got:?}"
                ),
            );
        }
        // New connections to an unblocked port still leave.
        for a in [OUTSIDE_V4, OUTSIDE_V6] {
            let port = common::OUTSIDE_SERVICE_PORT;
            let got = banner(&t, Ns::Firewall, a, port);
            f.check(
                got.as_deref() == Some(&format!("outside:{port}")),
                format!("firewall -> {a}:{port} (not blocked) should connect, got {got:?}"),
            );
        }
        // New connections to a blocked port do not, from the firewall or
        // forwarded from inside.
        assert_closed(
            &t,
            &[
                (Ns::Firewall, OUTSIDE_V4, BLOCKED_SERVICE, "block out"),
                (Ns::Firewall, OUTSIDE_V6, BLOCKED_SERVICE, "block out"),
                (
                    Ns::Inside,
                    OUTSIDE_V4,
                    BLOCKED_SERVICE,
                    "block out, forwarded",
                ),
            ],
            &mut f,
        );
        f.assert_none(&t, test);
    }
}

// ------------------------------------------------- 2. policy forward accept

/// Forwarding checks for a policy with `policy forward accept;`. The outside
/// host gets a route to the inside networks, so the only thing between it
/// and the inside host is the firewall's rules.
fn assert_forward_accept_guards_the_inside(t: &Topology, test: &str, dnat: bool) {
    t.route_outside_to_inside();
    let _inner_ssh = t.listen_tcp(Ns::Inside, 22);
    let _service = t.listen_tcp(Ns::Outside, common::OUTSIDE_SERVICE_PORT);
    let _blocked = t.listen_tcp(Ns::Outside, BLOCKED_SERVICE);
    let mut f = Failures::default();

    if dnat {
        let got = banner(t, Ns::Outside, FW_EXT_V4, 2221);
        f.check(
            got.as_deref() == Some("inside:22"),
            format!("outside -> {FW_EXT_V4}:2221 should reach inside:22 (dnat), got {got:?}"),
        );
    }
    // What the trusted side forwards outward is accepted, both families.
    for a in [OUTSIDE_V4, OUTSIDE_V6] {
        let port = common::OUTSIDE_SERVICE_PORT;
        let got = banner(t, Ns::Inside, a, port);
        f.check(
            got.as_deref() == Some(&format!("outside:{port}")),
            format!(
                "inside -> {a}:{port} should be forwarded (policy forward accept), got {got:?}"
            ),
        );
    }
    assert_closed(
        t,
        &[
            (Ns::Outside, INSIDE_V4, 22, "no dnat asks for it"),
            (Ns::Outside, INSIDE_V6, 22, "no dnat asks for it"),
            (
                Ns::Inside,
                OUTSIDE_V4,
                BLOCKED_SERVICE,
                "block out, forwarded",
            ),
            (
                Ns::Inside,
                OUTSIDE_V6,
                BLOCKED_SERVICE,
                "block out, forwarded",
            ),
        ],
        &mut f,
    );
    f.assert_none(t, test);
}

both_loaders! {
    fn forward_accept_router_forwards_only_dnat_inward(loader, test) {
        if !loader.available(test) {
            return;
        }
        let policy = parse(
            "extif eth0; open tcp 22; policy forward accept; masquerade;
             dnat 2221 -> 203.0.113.2:22; block out tcp 40000;",
        );
        let t = forwarding_topology(test, &policy, loader);
        assert_forward_accept_guards_the_inside(&t, test, true);
    }
}

both_loaders! {
    fn forward_accept_host_forwards_nothing_inward(loader, test) {
        if !loader.available(test) {
            return;
        }
        let policy = parse("extif eth0; open tcp 22; policy forward accept; block out tcp 40000;");
        let t = forwarding_topology(test, &policy, loader);
        assert_forward_accept_guards_the_inside(&t, test, false);
    }
}

// ------------------------------------------------ 3. icmp drop under reject

/// One ping (`-c1 -W1`), its output.
fn ping_output(t: &Topology, ns: Ns, a: &str) -> (bool, String) {
    let out = t.exec(ns, &["ping", "-n", "-c1", "-W1", a]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

both_loaders! {
    fn icmp_drop_under_reject_answers_no_ping(loader, test) {
        if !loader.available(test) {
            return;
        }
        // `trust eth9` leaves the inside link (eth1) neither trusted nor
        // external: INPUT's own tail decides for it.
        let policy = parse("extif eth0; trust eth9; open tcp 22; policy input reject;");
        let t = forwarding_topology(test, &policy, loader);
        let _ssh = t.listen_tcp(Ns::Firewall, 22);
        let _smtp = t.listen_tcp(Ns::Firewall, 25);
        let mut f = Failures::default();
        for (ns, a) in [
            (Ns::Outside, FW_EXT_V4),
            (Ns::Outside, FW_EXT_V6),
            (Ns::Inside, FW_INT_V4),
            (Ns::Inside, FW_INT_V6),
        ] {
            let (replied, text) = ping_output(&t, ns, a);
            let lower = text.to_lowercase();
            let error = lower.contains("unreachable") || lower.contains("error");
            f.check(
                !replied && !error,
                format!(
                    "{} -> ping {a} must get no answer at all under `icmp drop` \
                     (replied: {replied}, ICMP error: {error}):\n{text}",
                    ns.role()
                ),
            );
            // reject still rejects: port 25 (a listener that is not opened)
            // answers with a reset.
            f.check(
                t.tcp_refused(ns, a, 25),
                format!(
                    "{} -> {a}:25 should be refused (policy input reject)",
                    ns.role()
                ),
            );
        }
        for a in [FW_EXT_V4, FW_EXT_V6] {
            let got = banner(&t, Ns::Outside, a, 22);
            f.check(
                got.as_deref() == Some("firewall:22"),
                format!("outside -> {a}:22 should connect, got {got:?}"),
            );
        }
        f.assert_none(&t, test);
    }
}

// ------------------------------------------------ 4. RFC 4890 host services

/// What the UDP listener printed; fails the test unless it ran cleanly.
#[track_caller]
fn listener_output(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        common::describe("the UDP listener", &out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The link-local address of `eth0` in `ns`.
fn link_local(t: &Topology, ns: Ns) -> String {
    let out = t.sh(ns, "ip -6 -o addr show dev eth0 scope link");
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no link-local address on eth0 in {}: {out:?}", ns.role()))
        .to_string()
}

/// Receives UDP on `[::]:PORT` for SECONDS (having joined multicast GROUP on
/// IFACE, when given); prints `SOURCE PAYLOAD` per datagram.
const UDP_LISTENER: &str = r#"
import socket, struct, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", port))
if len(sys.argv) > 4:
    group, idx = sys.argv[3], socket.if_nametoindex(sys.argv[4])
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                 socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", idx))
end = time.time() + secs
while True:
    left = end - time.time()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        data, peer = s.recvfrom(512)
    except socket.timeout:
        break
    print(peer[0], data.decode(errors="replace"), flush=True)
"#;

/// Sends a few copies of PAYLOAD from SRC:SPORT to DST:DPORT over IFACE
/// (the scope of link-local and multicast addresses).
const UDP_SENDER: &str = r#"
import socket, sys, time
iface, src, sport, dst, dport, payload = sys.argv[1:7]
idx = socket.if_nametoindex(iface)
scope = lambda a: idx if a.startswith(("fe80", "ff02")) else 0
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
s.bind((src, int(sport), 0, scope(src)))
for _ in range(4):
    s.sendto(payload.encode(), (dst, int(dport), 0, scope(dst)))
    time.sleep(0.2)
"#;

/// Sends an MLDv2 general query (hop limit 1, router alert, from the
/// link-local address) to ff02::1 on IFACE, and prints `REPORT SOURCE` for
/// every MLD report arriving within 3 s after it (ff02::16 joined to hear
/// MLDv2 reports).
const MLD_QUERIER: &str = r#"
import socket, struct, sys, time
iface = sys.argv[1]
idx = socket.if_nametoindex(iface)
ear = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
ear.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
               socket.inet_pton(socket.AF_INET6, "ff02::16") + struct.pack("@I", idx))
def listen(secs, tag):
    end = time.time() + secs
    while True:
        left = end - time.time()
        if left <= 0:
            return
        ear.settimeout(left)
        try:
            data, peer = ear.recvfrom(2048)
        except socket.timeout:
            return
        if data and data[0] in (131, 143):
            print(tag, peer[0].split("%")[0], flush=True)
listen(1.0, "BEFORE")
q = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
q.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
q.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
q.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
# Hop-by-hop options: router alert (type 5, value 0: MLD), PadN.
q.setsockopt(socket.IPPROTO_IPV6, getattr(socket, "IPV6_HOPOPTS", 54), bytes([0, 0, 5, 2, 0, 0, 1, 0]))
# type 130, code 0, checksum (kernel), max response 100 ms, reserved,
# group :: (general), QRV 2, QQIC 125, no sources.
query = struct.pack("!BBHHH16sBBH", 130, 0, 0, 100, 0, bytes(16), 2, 125, 0)
q.sendto(query, ("ff02::1", 0, 0, idx))
print("SENT", flush=True)
listen(3.0, "REPORT")
"#;

/// The packet counter of the first rule of `ip6tables-save -c` in the
/// firewall whose text contains every one of `needles`.
fn v6_rule_packets(t: &Topology, needles: &[&str]) -> Option<u64> {
    let saved = t
        .netns(Ns::Firewall)
        .iptables_save(Family::V6, Tools::Default, Counters::Rules)
        .ok()?;
    save::rule_packets(&saved, needles)
}

/// The chain and handle of the first rule of `nft -a list table inet
/// firewall` whose text contains every one of `needles`.
fn nft_rule_handle(t: &Topology, needles: &[&str]) -> Option<(String, String)> {
    let listed = t.sh(Ns::Firewall, "nft -a list table inet firewall");
    let mut chain = None;
    for line in listed.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("chain ") {
            chain = rest.split_whitespace().next().map(str::to_string);
        } else if needles.iter().all(|n| line.contains(n)) {
            let handle = line.rsplit_once("# handle ")?.1.trim().to_string();
            return Some((chain?, handle));
        }
    }
    None
}

/// The query came in through the rule that accepts MLD queries from
/// link-local sources: with iptables, that rule counted it; with nft (whose
/// rules have no counters), the firewall stops answering once that one rule
/// is deleted.
fn check_mld_query_rule(t: &Topology, loader: Loader, fw_ll: &str, f: &mut Failures) {
    match loader {
        Loader::IptablesRestore => {
            let counted = v6_rule_packets(t, &["--icmpv6-type 130", "-s fe80::/10"]);
            f.check(
                counted.is_some_and(|n| n > 0),
                format!(
                    "{loader}: the rule accepting MLD queries must have counted the query, \
                     counter: {counted:?}"
                ),
            );
        }
        Loader::Nft => {
            let found = nft_rule_handle(t, &["ip6 saddr fe80::/10", "mld-listener-query"]);
            let Some((chain, handle)) = found else {
                f.check(
                    false,
                    format!("{loader}: no rule accepting MLD queries from fe80::/10"),
                );
                return;
            };
            t.sh(
                Ns::Firewall,
                &format!("nft delete rule inet firewall {chain} handle {handle}"),
            );
            let out = t.exec(Ns::Outside, &["python3", "-c", MLD_QUERIER, "eth0"]);
            let heard = String::from_utf8_lossy(&out.stdout).into_owned();
            f.check(
                out.status.success() && !heard.lines().any(|l| l == format!("REPORT {fw_ll}")),
                format!(
                    "{loader}: without the rule accepting MLD queries ({chain}, handle \
                     {handle}) the firewall must not answer a query; heard:\n{heard}"
                ),
            );
        }
    }
}

both_loaders! {
    fn ipv6_host_keeps_dhcpv6_replies_and_mld(loader, test) {
        if !loader.available(test) || !gate::require(test, &[gate::PYTHON3]) {
            return;
        }
        let policy = parse("extif eth0; open tcp 22;");
        let t = Topology::new(test);
        t.load_policy(&policy, loader);
        let fw_ll = link_local(&t, Ns::Firewall);
        let out_ll = link_local(&t, Ns::Outside);
        let mut f = Failures::default();

        // DHCPv6: a server's reply (udp 547 -> 546) from its link-local address
        // to the client's link-local address arrives; from a global address it
        // does not, to either address of the firewall.
        let received = thread::scope(|s| {
            let listener =
                s.spawn(|| t.exec(Ns::Firewall, &["python3", "-c", UDP_LISTENER, "546", "4"]));
            let bound = common::eventually(20, || {
                !t.sh(Ns::Firewall, "ss -H -u -l -n 'sport = :546'")
                    .trim()
                    .is_empty()
            });
            assert!(bound, "the UDP listener on the firewall did not start");
            for (src, dst, payload) in [
                (out_ll.as_str(), fw_ll.as_str(), "from-link-local"),
                (OUTSIDE_V6, fw_ll.as_str(), "from-global-to-link-local"),
                (OUTSIDE_V6, FW_EXT_V6, "from-global-to-global"),
            ] {
                let out = t.exec(
                    Ns::Outside,
                    &[
                        "python3", "-c", UDP_SENDER, "eth0", src, "547", dst, "546", payload,
                    ],
                );
                assert!(
                    out.status.success(),
                    "{}",
                    common::describe("sending a DHCPv6 datagram", &out)
                );
            }
            listener_output(listener.join().expect("listener thread"))
        });
        f.check(
            received.contains("from-link-local"),
            format!(
                "a DHCPv6 reply from the link-local server {out_ll} to {fw_ll} port 546 must \
                 arrive; received:\n{received}"
            ),
        );
        f.check(
            !received.contains("from-global"),
            format!("udp port 546 from a global address must not arrive; received:\n{received}"),
        );

        // MLD: a listener query from the link-local querier is accepted, and the
        // firewall answers it with its reports.
        check_mld_reports(&t, &fw_ll, &mut f);
        check_mld_query_rule(&t, loader, &fw_ll, &mut f);
        f.assert_none(&t, test);
    }
}

/// An MLD query from the outside host is answered with the firewall's
/// reports (the query must come in, the reports must go out).
fn check_mld_reports(t: &Topology, fw_ll: &str, f: &mut Failures) {
    let out = t.exec(Ns::Outside, &["python3", "-c", MLD_QUERIER, "eth0"]);
    assert!(
        out.status.success(),
        "{}",
        common::describe("the MLD querier", &out)
    );
    let heard = String::from_utf8_lossy(&out.stdout).into_owned();
    f.check(
        heard.lines().any(|l| l == format!("REPORT {fw_ll}")),
        format!("the firewall ({fw_ll}) must answer an MLD query with a report; heard:\n{heard}"),
    );
}

both_loaders! {
    fn ipv6_host_under_output_drop_keeps_mld_and_dhcpv6_requests(loader, test) {
        if !loader.available(test) || !gate::require(test, &[gate::PYTHON3]) {
            return;
        }
        let policy = parse("extif eth0; open tcp 22; policy output drop;");
        let t = Topology::new(test);
        t.load_policy(&policy, loader);
        let fw_ll = link_local(&t, Ns::Firewall);
        let mut f = Failures::default();

        // DHCPv6: the client's request (546 -> 547, to the link's servers and
        // relays at ff02::1:2) leaves from the link-local address; nothing else
        // does (the same datagram from the global address stays in).
        let received = thread::scope(|s| {
            let listener = s.spawn(|| {
                t.exec(
                    Ns::Outside,
                    &[
                        "python3",
                        "-c",
                        UDP_LISTENER,
                        "547",
                        "4",
                        "ff02::1:2",
                        "eth0",
                    ],
                )
            });
            let bound = common::eventually(20, || {
                !t.sh(Ns::Outside, "ss -H -u -l -n 'sport = :547'")
                    .trim()
                    .is_empty()
            });
            assert!(bound, "the UDP listener outside did not start");
            for (src, payload) in [
                (fw_ll.as_str(), "from-link-local"),
                (FW_EXT_V6, "from-global"),
            ] {
                let out = t.exec(
                    Ns::Firewall,
                    &[
                        "python3",
                        "-c",
                        UDP_SENDER,
                        "eth0",
                        src,
                        "546",
                        "ff02::1:2",
                        "547",
                        payload,
                    ],
                );
                // A send that the output policy drops fails (EPERM): expected for
                // the global source only.
                if payload == "from-link-local" {
                    f.check(
                        out.status.success(),
                        common::describe("sending a DHCPv6 request from the link-local address", &out),
                    );
                }
            }
            listener_output(listener.join().expect("listener thread"))
        });
        f.check(
            received.contains("from-link-local"),
            format!(
                "a DHCPv6 request from {fw_ll} to ff02::1:2 port 547 must leave; received:\n{received}"
            ),
        );
        f.check(
            !received.contains("from-global"),
            format!(
                "policy output drop: udp from the global address must not leave; received:\n{received}"
            ),
        );
        // MLD: the reports that answer a query leave.
        check_mld_reports(&t, &fw_ll, &mut f);
        f.assert_none(&t, test);
    }
}

// ------------------------------------------------ 5. ICMPv6 defaults

/// Receives one UDP datagram on `[::]:PORT` (8 s at most) and answers it
/// with an ICMPv6 packet too big (MTU `MTU`) from this host, quoting it as
/// RFC 4443 says (as much as fits in 1280 bytes): what a router on the path
/// sends. `LOCAL` is this host's address the datagram was sent to. Prints
/// `SENT SOURCE SPORT`.
const PTB_SENDER: &str = r#"
import socket, struct, sys
port, mtu, local = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.bind(("::", port))
u.settimeout(8)
data, peer = u.recvfrom(4096)
src, sport = peer[0], peer[1]
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
a, b = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, local)
length = 8 + len(data)
udp = struct.pack("!HHHH", sport, port, length, 0) + data
c = csum(a + b + struct.pack("!I3xB", length, 17) + udp) or 0xffff
udp = udp[:6] + struct.pack("!H", c) + udp[8:]
inner = struct.pack("!IHBB", 0x60000000, length, 17, 64) + a + b + udp
# type 2 (packet too big), code 0, checksum (the kernel's), MTU
msg = struct.pack("!BBHI", 2, 0, 0, mtu) + inner[: 1280 - 40 - 8]
r = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
r.sendto(msg, (src, 0))
print("SENT", src, sport, flush=True)
"#;

/// Sends one 1500-byte IPv6 datagram (the link's MTU, don't fragment) from a
/// socket connected to DST:PORT, then waits up to 5 s for the kernel's path
/// MTU to that destination to drop (an ICMPv6 packet too big that reached
/// the socket). Prints `BEFORE AFTER`.
const PMTU_PROBE: &str = r#"
import socket, sys, time
dst, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, getattr(socket, "IPV6_MTU_DISCOVER", 23),
             getattr(socket, "IPV6_PMTUDISC_DO", 2))
s.connect((dst, port))
mtu = lambda: s.getsockopt(socket.IPPROTO_IPV6, getattr(socket, "IPV6_MTU", 24))
before = mtu()
s.send(b"x" * (1500 - 48))
end = time.time() + 5
while mtu() == before and time.time() < end:
    time.sleep(0.05)
print(before, mtu(), flush=True)
"#;

/// The neighbour entry of `addr` on `eth0` in `ns`, as `ip -6 neigh` shows it.
fn neighbour(t: &Topology, ns: Ns, addr: &str) -> String {
    t.sh(ns, &format!("ip -6 neigh show {addr} dev eth0"))
        .trim()
        .to_string()
}

both_loaders! {
    /// What the ICMPv6 defaults and the ICMP rules let through, over the
    /// external link (which crosses every rule in front of `ext-in`): the
    /// neighbour discovery each side needs to reach the other (solicitation
    /// in, advertisement back; the firewall's own solicitation out, the
    /// advertisement in), echo requests (`icmp accept`: their path leaves the
    /// chain of the ICMPv6 defaults again, unanswered there, for `ext-in`),
    /// IPv4 echo alike, and an ICMPv6 error (packet too big) about the
    /// firewall's own datagram, which lowers its path MTU.
    fn ipv6_host_keeps_neighbour_discovery_echo_and_errors(loader, test) {
        if !loader.available(test) || !gate::require(test, &[gate::PYTHON3]) {
            return;
        }
        let policy = parse("extif eth0; open tcp 22; icmp accept;");
        let t = Topology::new(test);
        t.load_policy(&policy, loader);
        let _ssh = t.listen_tcp(Ns::Firewall, 22);
        let mut f = Failures::default();

        // Neighbour discovery: no entries on either side, then a connection
        // from outside needs both resolutions.
        for ns in [Ns::Outside, Ns::Firewall] {
            t.sh(ns, "ip -6 neigh flush dev eth0");
        }
        f.check(
            neighbour(&t, Ns::Outside, FW_EXT_V6).is_empty()
                || neighbour(&t, Ns::Outside, FW_EXT_V6).contains("FAILED"),
            format!(
                "the outside's neighbour entry of {FW_EXT_V6} must be gone after a flush: {}",
                neighbour(&t, Ns::Outside, FW_EXT_V6)
            ),
        );
        let got = banner(&t, Ns::Outside, FW_EXT_V6, 22);
        f.check(
            got.as_deref() == Some("firewall:22"),
            format!("outside -> [{FW_EXT_V6}]:22 must connect after the neighbour caches were flushed, got {got:?}"),
        );
        for (ns, addr) in [(Ns::Outside, FW_EXT_V6), (Ns::Firewall, OUTSIDE_V6)] {
            let entry = neighbour(&t, ns, addr);
            f.check(
                entry.contains("lladdr") && !entry.contains("FAILED"),
                format!(
                    "{} must have resolved {addr} by neighbour discovery: {entry:?}",
                    ns.role()
                ),
            );
        }

        // Echo, both families.
        for a in [FW_EXT_V6, FW_EXT_V4] {
            let (replied, text) = ping_output(&t, Ns::Outside, a);
            f.check(replied, format!("outside -> ping {a} must be answered (icmp accept):\n{text}"));
        }

        // Packet too big, about a datagram the firewall sent outside.
        let (probe, sender) = thread::scope(|s| {
            let sender = s.spawn(|| {
                t.exec(Ns::Outside, &["python3", "-c", PTB_SENDER, "9999", "1400", OUTSIDE_V6])
            });
            let bound = common::eventually(20, || {
                !t.sh(Ns::Outside, "ss -H -u -l -n 'sport = :9999'")
                    .trim()
                    .is_empty()
            });
            assert!(bound, "the packet-too-big sender outside did not start");
            let probe = t.exec(Ns::Firewall, &["python3", "-c", PMTU_PROBE, OUTSIDE_V6, "9999"]);
            (probe, sender.join().expect("sender thread"))
        });
        assert!(
            sender.status.success() && probe.status.success(),
            "{}\n{}",
            common::describe("the packet-too-big sender", &sender),
            common::describe("the path MTU probe", &probe)
        );
        let mtus = String::from_utf8_lossy(&probe.stdout).trim().to_string();
        f.check(
            mtus == "1500 1400",
            format!(
                "an ICMPv6 packet too big (MTU 1400) about the firewall's datagram must reach \
                 it: path MTU before and after {mtus:?} (want \"1500 1400\")"
            ),
        );
        f.assert_none(&t, test);
    }
}
