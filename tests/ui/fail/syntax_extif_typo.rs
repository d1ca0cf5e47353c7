// a typo in `extif`: reported once, without a follow-on "no extif"
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    exitf eth0;
    open tcp 22;
};

fn main() {}
