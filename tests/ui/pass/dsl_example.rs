use firewall::{firewall, Firewall};

const GATEWAY: Firewall = firewall! {
    extif eth0;
    open tcp 22, 80;
    icmp accept;
    masquerade;
    dnat 221 -> 192.168.125.22:22;
};

static ALSO_STATIC: Firewall = firewall! { extif eth0; open tcp 22; };

fn main() {
    assert!(GATEWAY.bash().starts_with("#!/bin/bash"));
    assert!(!ALSO_STATIC.source().is_empty());
}
