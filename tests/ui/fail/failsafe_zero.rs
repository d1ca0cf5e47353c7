// a zero failsafe
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    failsafe 0s;
};

fn main() {}
