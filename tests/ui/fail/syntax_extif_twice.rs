// two extif statements instead of one list
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    extif eth1;
    open tcp 22;
};

fn main() {}
