// an assertion that a port is open, which the input policy drops
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    policy input drop;
    assert open tcp 22, 443;
};

fn main() {}
