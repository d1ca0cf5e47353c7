// `->` missing in a redirect
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    redirect 26 25;
};

fn main() {}
