// a missing `,` between two ports
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22 80;
};

fn main() {}
