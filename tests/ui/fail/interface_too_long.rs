// an interface name over 15 bytes
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif "enp0s31f6-uplink0";
    open tcp 22;
};

fn main() {}
