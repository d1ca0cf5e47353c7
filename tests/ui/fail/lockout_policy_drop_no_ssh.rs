// `policy input drop;` and nothing opens tcp 22
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    policy input drop;
    open tcp 80, 443;
};

fn main() {}
