// two ranges that share port 8080
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 8000..=8080, 8080..=8090;
};

fn main() {}
