// outgoing mail is asserted closed, but nothing blocks it
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    block out tcp 465;
    assert closed out tcp 25, 465;
};

fn main() {}
