// a failsafe without unit
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    failsafe 10;
};

fn main() {}
