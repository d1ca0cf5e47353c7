// a database opened to a network, asserted closed to a host inside it
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    open tcp 5432 from 198.51.100.0/24;
    assert closed tcp 5432 from 198.51.100.0/25;
};

fn main() {}
