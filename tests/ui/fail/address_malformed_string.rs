// a string that is no address
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22 from "example.com";
};

fn main() {}
