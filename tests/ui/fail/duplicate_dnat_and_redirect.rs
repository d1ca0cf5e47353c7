// a dnat and a redirect for the same incoming port
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    dnat 26 -> 192.168.125.22:25;
    redirect 26 -> 25;
};

fn main() {}
