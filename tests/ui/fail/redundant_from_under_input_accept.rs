// with `policy input accept` a `from` restricts nothing
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    policy input accept;
    open tcp 5432 from 198.51.100.0/24;
};

fn main() {}
