// `lo` is always trusted
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    trust eth1, lo;
    open tcp 22;
};

fn main() {}
