// `dorp` for `drop`
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    policy input dorp;
    open tcp 22;
};

fn main() {}
