// a udp redirect to its own port
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    redirect udp 53 -> 53;
};

fn main() {}
