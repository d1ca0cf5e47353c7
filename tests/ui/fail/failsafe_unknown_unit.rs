// hours are not a unit (and far too long)
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    failsafe 1h;
};

fn main() {}
