// udp: opened and forwarded
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    open udp 53;
    dnat udp 53 -> 192.168.125.53;
};

fn main() {}
