// a redirect to its own port
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    redirect 25 -> 25;
};

fn main() {}
