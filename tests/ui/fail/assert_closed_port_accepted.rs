// an assertion that a port is closed, on a policy that opens it
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 3306;
    assert closed tcp 3306;
};

fn main() {}
