// a failsafe over one hour
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    failsafe 61min;
};

fn main() {}
