// a missing `,` between two interfaces
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0 eth1;
    open tcp 22;
};

fn main() {}
