// dnat to the broadcast address
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    dnat 8080 -> 255.255.255.255;
};

fn main() {}
