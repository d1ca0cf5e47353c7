// an interface listed twice
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0, eth0;
    open tcp 22;
};

fn main() {}
