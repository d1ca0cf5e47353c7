// words are lowercase
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    OPEN tcp 22;
    open tcp 22;
};

fn main() {}
