// Every assertion kind, true of the rendered rules.
use firewall::{firewall, Firewall};

const GATEWAY: Firewall = firewall! {
    extif eth0;
    open tcp 22, 80;
    open tcp 5432 from 198.51.100.0/24;
    masquerade;
    dnat 221 -> 192.168.125.22:22;
    redirect 26 -> 25;
    block out tcp 25;
    assert open tcp 22, 80;
    assert closed tcp 1..=21, 23..=79, 81..=220, 222..=5431, 5433..=65535 from "2001:db8::/32";
    assert closed tcp 5432 from 203.0.113.0/24;
    assert open tcp 5432 from 198.51.100.7;
    assert closed udp 1..=65535 from 0.0.0.0/0, "2000::/3";
    assert forwarded 221 -> 192.168.125.22:22;
    assert open tcp 26 from 0.0.0.0/0;
    assert closed tcp 25;
    assert closed out tcp 25;
};

fn main() {
    // Assertions render no rule, and the canonical source keeps them.
    assert!(!GATEWAY.iptables_restore().contains("assert"));
    assert!(GATEWAY.source().contains("assert forwarded 221 -> 192.168.125.22:22;"));
    // explain() is computed by the classifier while the crate compiles.
    assert!(GATEWAY
        .explain()
        .contains("tcp 221: forwarded to 192.168.125.22:22 from anyone (dnat 221 -> 192.168.125.22:22)"));
}
