// a misspelt assertion
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    assert close tcp 3306;
};

fn main() {}
