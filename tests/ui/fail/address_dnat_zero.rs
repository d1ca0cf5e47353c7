// dnat to 0.0.0.0
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    dnat 8080 -> 0.0.0.0;
};

fn main() {}
