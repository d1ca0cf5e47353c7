// `eth0.100` must be quoted
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0.100;
    open tcp 22;
};

fn main() {}
