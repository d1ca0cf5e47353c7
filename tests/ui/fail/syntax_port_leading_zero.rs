// a port with a leading zero (octal to other tools)
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 022;
};

fn main() {}
