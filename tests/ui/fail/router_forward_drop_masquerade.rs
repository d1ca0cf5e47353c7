// `forward drop;` on a masquerading router
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    masquerade;
    forward drop;
};

fn main() {}
