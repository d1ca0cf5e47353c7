// a port blocked by two statements
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    block out tcp 25;
    block out tcp 20..=30;
};

fn main() {}
