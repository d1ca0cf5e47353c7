// the same interface external and trusted
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    trust eth0, eth1;
    open tcp 22;
};

fn main() {}
