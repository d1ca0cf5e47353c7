// a /33 IPv4 network
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22 from 198.51.100.0/33;
};

fn main() {}
