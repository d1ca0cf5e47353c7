// an IPv6 network with host bits set
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22 from "2001:db8::1/32";
};

fn main() {}
