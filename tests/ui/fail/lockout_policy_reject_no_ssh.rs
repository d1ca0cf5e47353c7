// `policy input reject;` blocks ssh too
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    policy input reject;
    open tcp 80;
};

fn main() {}
