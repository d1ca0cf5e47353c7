// a negative port
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, -5;
};

fn main() {}
