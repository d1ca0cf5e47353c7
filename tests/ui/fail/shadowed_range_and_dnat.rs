// a range that contains a forwarded port
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 8000..=8100;
    dnat 8080 -> 192.168.125.22;
};

fn main() {}
