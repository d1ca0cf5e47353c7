// `tpc` for `tcp`
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tpc 80;
    open tcp 22;
};

fn main() {}
