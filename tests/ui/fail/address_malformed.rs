// an octet above 255
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22 from 300.1.2.3;
};

fn main() {}
