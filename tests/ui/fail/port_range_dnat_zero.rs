// dnat from port 0
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    dnat 0 -> 192.168.125.22;
};

fn main() {}
