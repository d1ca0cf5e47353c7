// `forward drop;` with a dnat
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    dnat 221 -> 192.168.125.22:22;
    forward drop;
};

fn main() {}
