// a word after a complete statement
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    masquerade all;
};

fn main() {}
