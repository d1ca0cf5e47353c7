// no extif at all
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    open tcp 22;
    icmp accept;
};

fn main() {}
