// `..` as an interface name
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    trust "..";
    open tcp 22;
};

fn main() {}
