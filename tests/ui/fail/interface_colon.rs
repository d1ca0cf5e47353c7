// `:` (an old alias) in an interface name
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif "eth0:1";
    open tcp 22;
};

fn main() {}
