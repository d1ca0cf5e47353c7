// `from` on a port already open to everyone
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 80;
    open tcp 80 from 198.51.100.0/24;
};

fn main() {}
