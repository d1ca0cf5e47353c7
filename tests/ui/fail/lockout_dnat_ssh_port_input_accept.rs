// an accepting input policy does not help: the dnat still takes every ssh connection
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    policy input accept;
    dnat 22 -> 192.168.125.22;
};

fn main() {}
