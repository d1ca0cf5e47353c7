// the end of a range above 65535
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 60000..=65536;
};

fn main() {}
