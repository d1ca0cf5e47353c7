// two redirects for the same incoming port
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    redirect 26 -> 25;
    redirect 26 -> 587;
};

fn main() {}
