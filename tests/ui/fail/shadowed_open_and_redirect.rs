// a port both opened locally and redirected
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22, 26;
    redirect 26 -> 25;
};

fn main() {}
