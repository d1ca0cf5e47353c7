// a port blocked twice
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    block out tcp 25, 465, 25;
};

fn main() {}
