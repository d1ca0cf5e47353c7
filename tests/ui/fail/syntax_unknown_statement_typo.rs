// `opne` for `open`
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    opne tcp 80;
    open tcp 22;
};

fn main() {}
