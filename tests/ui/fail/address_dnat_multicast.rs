// dnat to a multicast address
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    dnat 8080 -> 224.0.0.1;
};

fn main() {}
