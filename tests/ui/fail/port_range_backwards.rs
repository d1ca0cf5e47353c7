// a range whose start is above its end
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 8080..=8000;
};

fn main() {}
