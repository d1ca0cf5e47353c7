// the same chain's policy given twice
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    policy input drop;
    open tcp 22;
    policy input reject;
};

fn main() {}
