// the port is forwarded, but to another inner host
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    masquerade;
    dnat 8080 -> 192.168.125.22:80;
    assert forwarded 8080 -> 192.168.125.23:80;
};

fn main() {}
