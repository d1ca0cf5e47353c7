// an address with three octets
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22 from 198.51.100/24;
};

fn main() {}
