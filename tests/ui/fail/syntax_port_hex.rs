// a port in hexadecimal: ports are decimal
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 0x50;
};

fn main() {}
