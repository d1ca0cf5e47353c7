// `..` instead of `..=`
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 8000..8080;
};

fn main() {}
