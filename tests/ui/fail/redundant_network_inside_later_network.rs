// a host that a later, larger network already contains
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22 from 198.51.100.7;
    open tcp 22 from 198.51.100.0/24;
};

fn main() {}
