// a port already covered by a range
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 6000..=6010;
    open tcp 6005;
};

fn main() {}
