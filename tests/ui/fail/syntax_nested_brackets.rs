// brackets nested deeper than any policy
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    [[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]
};

fn main() {}
