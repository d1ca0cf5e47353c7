// `open` without ports
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    open udp;
};

fn main() {}
