// `br-lan` must be quoted
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    trust br-lan;
    open tcp 22;
};

fn main() {}
