// a port opened by two statements
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 80;
    open tcp 80;
};

fn main() {}
