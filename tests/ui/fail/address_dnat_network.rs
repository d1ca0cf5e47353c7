// dnat to a network instead of a host
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    dnat 8080 -> 192.168.125.0/24;
};

fn main() {}
