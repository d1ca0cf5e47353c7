// the ssh port is forwarded to an inner host
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 80;
    masquerade;
    dnat 22 -> 192.168.125.22;
};

fn main() {}
