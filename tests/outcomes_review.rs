//! A second, independent check of the issue 6 rule outcomes (tests/outcomes.rs
//! is the first), on policies the first does not try: `block out` of UDP on a
//! router with a `trust` list, `policy forward accept` with `trust`, and
//! `policy input reject` with `icmp accept`. Real traffic in network
//! namespaces (tests/common), IPv4 and IPv6.
//!
//! Each test runs once per rule loader (`<test>::iptables_restore`,
//! `<test>::nft`: `both_loaders!`). Needs root, `ip netns`, iptables, nft,
//! nc, ping and python3 (for UDP with a fixed source port); see
//! `common::gate`.

mod common;

use common::addr::*;
use common::policy::{forwarding_topology, parse};
use common::{gate, Ns, Topology};
use std::thread;
use std::time::Duration;

/// Echoes every UDP datagram (both families) on each port given, for SECS
/// seconds, then exits by itself.
const UDP_ECHO: &str = r#"
import select, socket, sys, time
secs, ports = float(sys.argv[1]), [int(p) for p in sys.argv[2:]]
socks = []
for p in ports:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", p))
    socks.append(s)
print("READY", flush=True)
end = time.time() + secs
while time.time() < end:
    r, _, _ = select.select(socks, [], [], max(0.0, end - time.time()))
    for s in r:
        data, peer = s.recvfrom(512)
        s.sendto(data, peer)
"#;

/// Sends `ping` from SPORT to ADDR:PORT up to three times; prints the answer
/// or `NONE`.
const UDP_ASK: &str = r#"
import socket, sys
addr, port, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", sport))
s.settimeout(1.0)
for _ in range(3):
    try:
        s.sendto(b"ping", (addr, port))
        data, _ = s.recvfrom(512)
        print(data.decode(), flush=True)
        break
    except (socket.timeout, OSError):
        pass
else:
    print("NONE", flush=True)
"#;

/// Whether `ns` gets its datagram echoed by `addr:port`, sent from `sport`.
fn udp_echoed(t: &Topology, ns: Ns, addr: &str, port: u16, sport: u16) -> bool {
    let (p, sp) = (port.to_string(), sport.to_string());
    let out = t.exec(
        ns,
        &["timeout", "10", "python3", "-c", UDP_ASK, addr, &p, &sp],
    );
    String::from_utf8_lossy(&out.stdout).trim() == "ping"
}

/// Runs `f` while UDP echo servers run in each `(ns, ports)`.
fn with_udp_echo(t: &Topology, servers: &[(Ns, &[u16])], f: impl FnOnce()) {
    const SECS: &str = "25";
    thread::scope(|s| {
        for &(ns, ports) in servers {
            let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
            s.spawn(move || {
                let mut args = vec!["timeout", "30", "python3", "-c", UDP_ECHO, SECS];
                args.extend(ports.iter().map(String::as_str));
                t.exec(ns, &args)
            });
        }
        // the servers bind within a moment
        thread::sleep(Duration::from_millis(800));
        f();
    });
}

#[track_caller]
fn assert_all(t: &Topology, test: &str, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{test}:\n  {}\n--- firewall ruleset ---\n{}",
        failures.join("\n  "),
        t.dump(Ns::Firewall)
    );
}

both_loaders! {
    /// `block out udp` of the ephemeral range on a router with a `trust` list:
    /// answers to clients whose source port lies in the range still leave (from
    /// the firewall, IPv4 and IPv6), new datagrams to the range do not (from the
    /// firewall and forwarded from inside), other ports stay usable.
    fn block_out_udp_on_a_trusting_router_keeps_replies(loader, test) {
        if !loader.available(test) || !gate::require(test, &[gate::PYTHON3]) {
            return;
        }
        let policy = parse(
            "extif eth0; trust eth1; open tcp 22; open udp 53; masquerade;
             block out udp 32768..=60999;",
        );
        let t = forwarding_topology(test, &policy, loader);
        let mut f = Vec::new();
        with_udp_echo(
            &t,
            &[(Ns::Firewall, &[53]), (Ns::Outside, &[40000, 5000])],
            || {
                let mut sport = 40100;
                for a in [FW_EXT_V4, FW_EXT_V6] {
                    sport += 1;
                    if !udp_echoed(&t, Ns::Outside, a, 53, sport) {
                        f.push(format!(
                            "outside (udp source port {sport}) -> {a}:53 got no answer: \
                             block out must not drop replies"
                        ));
                    }
                }
                for a in [OUTSIDE_V4, OUTSIDE_V6] {
                    sport += 1;
                    if udp_echoed(&t, Ns::Firewall, a, 40000, sport) {
                        f.push(format!("firewall -> {a}:40000 (blocked) was answered"));
                    }
                    sport += 1;
                    if !udp_echoed(&t, Ns::Firewall, a, 5000, sport) {
                        f.push(format!("firewall -> {a}:5000 (not blocked) got no answer"));
                    }
                }
                sport += 1;
                if udp_echoed(&t, Ns::Inside, OUTSIDE_V4, 40000, sport) {
                    f.push("inside -> outside:40000 (blocked, forwarded) was answered".into());
                }
                sport += 1;
                if !udp_echoed(&t, Ns::Inside, OUTSIDE_V4, 5000, sport) {
                    f.push("inside -> outside:5000 (masqueraded) got no answer".into());
                }
            },
        );
        assert_all(&t, test, f);
    }
}

both_loaders! {
    /// `policy forward accept` with a `trust` list: the trusted inside reaches
    /// out (both families), the outside reaches no inner host (both families,
    /// with routes to the inside networks), and `block out` holds on the path.
    fn forward_accept_with_trust_keeps_the_outside_out(loader, test) {
        if !loader.available(test) {
            return;
        }
        let policy =
            parse("extif eth0; trust eth1; open tcp 22; policy forward accept; block out tcp 8025;");
        let t = forwarding_topology(test, &policy, loader);
        t.route_outside_to_inside();
        let _inner = t.listen_tcp(Ns::Inside, 22);
        let _svc = t.listen_tcp(Ns::Outside, common::OUTSIDE_SERVICE_PORT);
        let _blocked = t.listen_tcp(Ns::Outside, 8025);
        let mut f = Vec::new();
        for a in [INSIDE_V4, INSIDE_V6] {
            if t.tcp_connects(Ns::Outside, a, 22) {
                f.push(format!("outside -> {a}:22 connected through the firewall"));
            }
        }
        for a in [OUTSIDE_V4, OUTSIDE_V6] {
            let ok = (0..3).any(|_| t.tcp_connects(Ns::Inside, a, common::OUTSIDE_SERVICE_PORT));
            if !ok {
                f.push(format!(
                    "inside -> {a}:{} should be forwarded (policy forward accept)",
                    common::OUTSIDE_SERVICE_PORT
                ));
            }
            if t.tcp_connects(Ns::Inside, a, 8025) {
                f.push(format!("inside -> {a}:8025 (block out) connected"));
            }
        }
        assert_all(&t, test, f);
    }
}

both_loaders! {
    /// `policy input reject` with `icmp accept`: pings are answered from outside
    /// (both families), closed ports are still refused, opened ones connect.
    fn reject_with_icmp_accept_answers_pings_and_refuses_ports(loader, test) {
        if !loader.available(test) {
            return;
        }
        let policy = parse("extif eth0; open tcp 22; policy input reject; icmp accept;");
        let t = forwarding_topology(test, &policy, loader);
        let _ssh = t.listen_tcp(Ns::Firewall, 22);
        let _smtp = t.listen_tcp(Ns::Firewall, 25);
        let mut f = Vec::new();
        for a in [FW_EXT_V4, FW_EXT_V6] {
            if !(0..3).any(|_| t.ping(Ns::Outside, a)) {
                f.push(format!(
                    "outside -> ping {a} unanswered under `icmp accept`"
                ));
            }
            if !t.tcp_refused(Ns::Outside, a, 25) {
                f.push(format!("outside -> {a}:25 should be refused (reset)"));
            }
            if !(0..3).any(|_| t.tcp_connects(Ns::Outside, a, 22)) {
                f.push(format!("outside -> {a}:22 should connect"));
            }
        }
        assert_all(&t, test, f);
    }
}

both_loaders! {
    /// `dnat udp` and `redirect udp`: datagrams to the forwarded port reach
    /// the inside host, those to the redirected port reach the firewall's
    /// target port, and neither target port is opened by it (IPv4; NAT is
    /// IPv4 only, so IPv6 reaches neither). Only the inside host listens on
    /// 5353 and only the firewall on 53 (not on 5300): an answer shows where
    /// the datagram went.
    fn udp_dnat_and_redirect(loader, test) {
        if !loader.available(test) || !gate::require(test, &[gate::PYTHON3]) {
            return;
        }
        let policy = parse(
            "extif eth0; ssh none; masquerade; dnat udp 5353 -> 203.0.113.2; redirect udp 5300 -> 53;",
        );
        let t = forwarding_topology(test, &policy, loader);
        let mut f = Vec::new();
        with_udp_echo(&t, &[(Ns::Firewall, &[53]), (Ns::Inside, &[5353])], || {
            let mut sport = 41000;
            for (a, port, expect, what) in [
                (FW_EXT_V4, 5353, true, "dnat udp 5353 -> inside"),
                (FW_EXT_V4, 5300, true, "redirect udp 5300 -> 53"),
                (FW_EXT_V4, 53, false, "53 is only the redirect's target"),
                (FW_EXT_V6, 5353, false, "dnat is IPv4 only"),
                (FW_EXT_V6, 5300, false, "redirect is IPv4 only"),
                (FW_EXT_V6, 53, false, "not opened"),
            ] {
                sport += 1;
                if udp_echoed(&t, Ns::Outside, a, port, sport) != expect {
                    f.push(format!(
                        "{loader}: outside -> {a} udp {port} should {}be answered ({what})",
                        if expect { "" } else { "not " }
                    ));
                }
            }
        });
        assert_all(&t, test, f);
    }
}
