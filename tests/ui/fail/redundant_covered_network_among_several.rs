// one of several networks is already allowed: the fix removes that network, not the port
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22 from 10.0.0.0/8;
    open tcp 22 from 10.1.0.0/16, 192.0.2.0/24;
};

fn main() {}
