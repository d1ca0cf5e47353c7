// The stateful-firewall howto's whole policy (examples/howto.rs), 443 listed once.
use firewall::{firewall, Firewall};

const HOWTO: Firewall = firewall! {
    extif eth0;
    open tcp 22, 80, 443, 53, 143, 993;
    open udp 53;
    icmp accept;
    masquerade;
    redirect 26 -> 25;
    dnat 221 -> 192.168.125.22:22;
    failsafe 10s;
};

fn main() {
    assert!(HOWTO.bash().starts_with("#!/bin/bash"));
    assert!(HOWTO.iptables_restore().contains("MASQUERADE"));
}
