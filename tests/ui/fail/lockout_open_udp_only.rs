// udp 22 is not ssh
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open udp 22;
};

fn main() {}
