// a Rust integer suffix on a port
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22u16;
};

fn main() {}
