// two dnat for the same incoming port
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    masquerade;
    dnat 221 -> 192.168.125.22:22;
    dnat 221 -> 192.168.125.23:22;
};

fn main() {}
