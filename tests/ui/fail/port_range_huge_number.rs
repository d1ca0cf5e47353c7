// a number that does not even fit in 64 bits
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 99999999999999999999999;
};

fn main() {}
