// `assert forwarded` names the inner host's port
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    masquerade;
    dnat 221 -> 192.168.125.22:22;
    assert forwarded 221 -> 192.168.125.22;
};

fn main() {}
