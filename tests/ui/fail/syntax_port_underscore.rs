// a port with `_` separators
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 8_080;
};

fn main() {}
