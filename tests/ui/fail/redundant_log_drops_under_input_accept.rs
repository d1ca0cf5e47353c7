// with `policy input accept` nothing is dropped, so `log drops` logs nothing
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    policy input accept;
    log drops;
};

fn main() {}
