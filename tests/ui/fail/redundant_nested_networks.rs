// a network inside one already allowed for the same port
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    open tcp 5432 from 10.0.0.0/8;
    open tcp 5432 from 10.1.0.0/16;
};

fn main() {}
