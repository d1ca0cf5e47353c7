use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    policy input drop;
    open tcp 80, 443;
};

fn main() {}
