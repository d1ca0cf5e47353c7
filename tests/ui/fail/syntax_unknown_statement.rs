// a word that is no statement
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    allow tcp 80;
    open tcp 22;
};

fn main() {}
