// `policy` with nothing after it
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    policy;
};

fn main() {}
