// an extif wildcard that matches a trusted interface: eth1 would be treated as external
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif "eth+";
    trust eth1;
    open tcp 22;
};

fn main() {}
