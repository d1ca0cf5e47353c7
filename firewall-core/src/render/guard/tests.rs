use super::*;
use std::process::{Command, Stdio};

/// A checked model; `ssh none;` so that the lockout check (a compile-time
/// check of port 22) does not get in the way of the cases under test.
fn model(text: &str) -> Model {
    let text = &format!("{text} ssh none;");
    crate::compile::test_model(text)
}

fn port(n: u16) -> Port {
    Port::new(n).unwrap_or_else(|| panic!("port {n}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|_| panic!("address {s}"))
}

fn accepted(m: &Model, dev: &str, client: &str, p: u16) -> bool {
    decide(m, dev, ip(client), port(p)).accepted
}

#[test]
fn extif_with_and_without_a_matching_from() {
    let m = model("extif eth0; open tcp 22 from 198.51.100.0/24, \"2001:db8:1::/64\";");
    assert!(accepted(&m, "eth0", "198.51.100.2", 22));
    assert!(accepted(&m, "eth0", "2001:db8:1::2", 22));
    let d = decide(&m, "eth0", ip("192.0.2.1"), port(22));
    assert!(!d.accepted);
    assert!(d.why.contains("only to sources"), "{}", d.why);
    assert!(!accepted(&m, "eth0", "2001:db8:9::2", 22));
    assert!(!accepted(&m, "eth0", "198.51.100.2", 23));
    // An open of udp does not accept tcp.
    let u = model("extif eth0; open udp 22;");
    assert!(!accepted(&u, "eth0", "198.51.100.2", 22));
}

#[test]
fn from_of_the_other_family_only_opens_nothing_for_this_one() {
    let m = model("extif eth0; open tcp 22 from 198.51.100.0/24;");
    assert!(!accepted(&m, "eth0", "2001:db8:1::2", 22));
    assert!(accepted(&m, "eth0", "198.51.100.9", 22));
}

#[test]
fn trusted_interfaces_and_loopback_accept() {
    let m = model("extif eth0; open tcp 80;");
    let d = decide(&m, "eth1", ip("203.0.113.2"), port(22));
    assert_eq!(d.arrival, Arrival::Trusted);
    assert!(d.accepted);
    assert!(accepted(&m, "lo", "198.51.100.1", 22));
    let t = model("extif eth0; trust eth1; open tcp 80;");
    assert!(accepted(&t, "eth1", "203.0.113.2", 22));
}

/// The case the old guard let through: a `trust` list, input drop, and the
/// session over an interface that is neither external nor trusted.
#[test]
fn untrusted_interface_meets_the_input_policy() {
    let m = model("extif eth0; trust eth1; open tcp 22;");
    let d = decide(&m, "eth2", ip("192.0.2.1"), port(22));
    assert_eq!(d.arrival, Arrival::Untrusted);
    assert!(!d.accepted, "opens apply to the external interfaces only");
    assert!(d.why.contains("input policy is drop"), "{}", d.why);
    let a = model("extif eth0; trust eth1; policy input accept;");
    assert!(accepted(&a, "eth2", "192.0.2.1", 22));
}

#[test]
fn wildcards_match_like_iptables() {
    let m = model("extif \"ppp+\"; open tcp 80;");
    assert_eq!(arrival(&m, "ppp0"), Arrival::External);
    assert!(!accepted(&m, "ppp7", "198.51.100.2", 22));
    assert!(accepted(&m, "eth0", "198.51.100.2", 22));
    assert!(iface_matches("veth+", "veth12") && !iface_matches("veth+", "eth0"));
    assert!(iface_matches("eth0", "eth0") && !iface_matches("eth0", "eth00"));
}

#[test]
fn redirects_and_dnats() {
    // sshd on 2222 reached through `redirect 22 -> 2222`: the session shows 2222.
    let m = model("extif eth0; redirect 22 -> 2222;");
    let d = decide(&m, "eth0", ip("198.51.100.2"), port(2222));
    assert!(d.accepted, "{}", d.why);
    assert!(d.why.contains("redirect"), "{}", d.why);
    // Not over IPv6: IPv6 has no nat rules.
    assert!(!accepted(&m, "eth0", "2001:db8:1::2", 2222));
    // A redirect *from* the session's port sends new connections elsewhere.
    let away = model("extif eth0; open tcp 2222; redirect 22 -> 2222;");
    let d = decide(&away, "eth0", ip("198.51.100.2"), port(22));
    assert!(!d.accepted, "{}", d.why);
    assert!(!accepted(
        &model("extif eth0; open tcp 80; masquerade; dnat 221 -> 203.0.113.2:22;"),
        "eth0",
        "198.51.100.2",
        221
    ));
    // ...even under an accepting input policy (nat comes first).
    assert!(!accepted(
        &model("extif eth0; policy input accept; masquerade; dnat 221 -> 203.0.113.2:22;"),
        "eth0",
        "198.51.100.2",
        221
    ));
    assert!(accepted(
        &model("extif eth0; policy input accept;"),
        "eth0",
        "198.51.100.2",
        221
    ));
}

fn run_bash(script: &str) -> Option<String> {
    let child = Command::new("bash")
        .arg("-s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        assert!(std::env::var_os("CI").is_none(), "bash missing in CI");
        return None;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .map(|mut i| i.write_all(script.as_bytes()));
    let out = child.wait_with_output().ok()?;
    assert!(
        out.status.success(),
        "bash failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// fw_net_has (bash) against Net::contains_net (Rust), including compressed,
/// embedded-IPv4 and edge prefixes; malformed input is never "inside".
#[test]
fn bash_cidr_matching_equals_rust() {
    let nets = [
        "0.0.0.0/0",
        "198.51.100.0/24",
        "198.51.100.0/25",
        "198.51.100.128/25",
        "198.51.100.2/32",
        "128.0.0.0/1",
        "198.51.100.0/31",
        "::/0",
        "2001:db8::/32",
        "2001:db8:1::/64",
        "2001:db8:1::2/128",
        "2001:db8:1::/127",
        "8000::/1",
        "2001:db8:1:0:8000::/65",
        "::ffff:0:0/96",
    ];
    let addrs = [
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.200",
        "203.0.113.9",
        "10.0.0.1",
        "255.255.255.255",
        "0.0.0.0",
        "2001:db8:1::2",
        "2001:db8:1::3",
        "2001:db8:1:0:8000::1",
        "2001:db8:2::2",
        "2001:0db8:0001:0000:0000:0000:0000:0002",
        "::1",
        "::",
        "fe80::1",
        "::ffff:198.51.100.2",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];
    let mut script = String::from(BASH_HELPERS);
    let mut want = String::new();
    for n in nets {
        let net: Net = n.parse().unwrap_or_else(|e| panic!("{n}: {e:?}"));
        for a in addrs {
            let addr = ip(a);
            let host = Net::new(addr, if addr.is_ipv4() { 32 } else { 128 }).ok();
            let inside = host.is_some_and(|h| net.contains_net(&h));
            script.push_str(&format!(
                "if fw_net_has '{n}' '{a}'; then echo '{n} {a} 1'; else echo '{n} {a} 0'; fi\n"
            ));
            want.push_str(&format!("{n} {a} {}\n", u8::from(inside)));
        }
    }
    for bad in [
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1::2::3",
        ":1:2",
        "1:2:3:4:5:6:7:8:9",
        "12345::",
        "g::1",
        "",
        "x",
    ] {
        script.push_str(&format!(
            "if fw_net_has '0.0.0.0/0' '{bad}' || fw_net_has '::/0' '{bad}'; then echo 'bad {bad} accepted'; fi\n"
        ));
    }
    let Some(got) = run_bash(&script) else { return };
    assert_eq!(got, want);
}

/// The bash guard generated from a model decides exactly like [`decide`].
#[test]
fn bash_guard_equals_rust_decision() {
    let policies = [
        "extif eth0; open tcp 22, 80;",
        "extif eth0; open tcp 22 from 198.51.100.0/25, \"2001:db8:1::/64\"; open tcp 8000..=8100;",
        "extif eth0, \"ppp+\"; trust eth1; open tcp 2222 from 198.51.100.2/32;",
        "extif eth0; trust eth1, \"wg+\"; policy input reject; open udp 22;",
        "extif eth0; policy input accept; masquerade; dnat 221 -> 203.0.113.2:22; redirect 26 -> 25;",
        "extif eth0; open tcp 80; masquerade; dnat 2200 -> 203.0.113.2:22; redirect 22 -> 2222; redirect 23 -> 2222;",
        "extif eth0; open tcp 22 from \"2001:db8:1::/64\";",
    ];
    let devs = ["lo", "eth0", "eth1", "eth2", "ppp0", "wg7"];
    let clients = [
        "198.51.100.2",
        "198.51.100.200",
        "192.0.2.1",
        "2001:db8:1::2",
        "2001:db8:9::2",
    ];
    let ports = [22u16, 23, 25, 26, 80, 221, 2200, 2222, 8050, 9000];
    for text in policies {
        let m = model(text);
        let mut script = String::from(BASH_HELPERS);
        script.push_str(&bash(&m));
        let mut want = String::new();
        for dev in devs {
            for c in clients {
                let fam = if ip(c).is_ipv4() { 4 } else { 6 };
                for p in ports {
                    let d = decide(&m, dev, ip(c), port(p));
                    script.push_str(&format!(
                        "a=$(fw_guard_arrival {dev}); if fw_guard_decide \"$a\" {fam} {p} {c}; then r=1; else r=0; fi; printf '%s %s %s %s %s %s\\n' {dev} {c} {p} \"$a\" \"$r\" \"$fw_guard_why\"\n"
                    ));
                    want.push_str(&format!(
                        "{dev} {c} {p} {} {} {}\n",
                        d.arrival.as_str(),
                        u8::from(d.accepted),
                        d.why
                    ));
                }
            }
        }
        let Some(got) = run_bash(&script) else { return };
        for (g, w) in got.lines().zip(want.lines()) {
            assert_eq!(g, w, "policy: {text}");
        }
        assert_eq!(got.lines().count(), want.lines().count(), "policy: {text}");
    }
}
