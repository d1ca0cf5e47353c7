// a port both opened locally and forwarded
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 221;
    masquerade;
    dnat 221 -> 192.168.125.22:22;
};

fn main() {}
