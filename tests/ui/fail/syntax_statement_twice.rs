// a once-only statement given twice
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    icmp accept;
    icmp drop;
};

fn main() {}
