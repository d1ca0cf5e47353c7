// ssh port 0
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    ssh 0;
};

fn main() {}
