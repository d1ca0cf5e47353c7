// `inptu` for `input`
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    policy inptu drop;
    open tcp 22;
};

fn main() {}
