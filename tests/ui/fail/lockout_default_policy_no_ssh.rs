// the default input policy is drop: no policy statement, still locked out
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 80;
};

fn main() {}
