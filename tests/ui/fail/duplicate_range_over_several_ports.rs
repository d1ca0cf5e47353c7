// a range over several ports opened before: one error, the help keeps the rest
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 80, 443;
    open tcp 1..=1024;
};

fn main() {}
