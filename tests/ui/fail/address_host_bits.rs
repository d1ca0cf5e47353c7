// a network with host bits set
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22 from 198.51.100.7/24;
};

fn main() {}
