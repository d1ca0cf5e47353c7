// port 0
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 0, 22;
};

fn main() {}
