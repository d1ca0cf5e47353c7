// the howto's PORTS list, 443 twice
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 80, 443, 53, 443, 143, 993;
};

fn main() {}
