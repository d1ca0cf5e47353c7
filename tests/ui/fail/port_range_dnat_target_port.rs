// dnat to port 70000
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    dnat 8080 -> 192.168.125.22:70000;
};

fn main() {}
