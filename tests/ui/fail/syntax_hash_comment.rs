// a shell-style `#` comment
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    # the gateway
    extif eth0;
    open tcp 22;
};

fn main() {}
