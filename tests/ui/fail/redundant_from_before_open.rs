// the restricted open comes first, the unrestricted one later
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 5432 from 10.0.0.0/8;
    open tcp 22, 5432;
};

fn main() {}
