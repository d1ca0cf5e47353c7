// a redirect does not open its target port: only the redirected connections
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    ssh 2222;
    redirect 2222 -> 22;
    assert open tcp 22 from 0.0.0.0/0;
};

fn main() {}
