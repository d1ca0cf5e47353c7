// dnat to a loopback address
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    dnat 8080 -> 127.0.0.1:80;
};

fn main() {}
