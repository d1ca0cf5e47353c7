// icmp takes accept or drop
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    icmp allow;
};

fn main() {}
