// `/` in an interface name
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif "eth/0";
    open tcp 22;
};

fn main() {}
