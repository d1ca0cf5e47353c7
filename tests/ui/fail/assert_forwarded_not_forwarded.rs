// nothing forwards the port
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    assert forwarded udp 1194 -> 192.168.125.24:1194;
};

fn main() {}
