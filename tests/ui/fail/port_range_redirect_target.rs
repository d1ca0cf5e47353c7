// redirect to port 65536
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    redirect 26 -> 65536;
};

fn main() {}
