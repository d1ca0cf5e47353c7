// `forward drop;` on a host that routes nothing, administered from its console.
use firewall::{firewall, Firewall};

const HOST: Firewall = firewall! {
    extif eth0;
    policy input reject;
    policy forward drop;
    forward drop;
    icmp drop;
    ssh none;
};

fn main() {
    assert!(!HOST.bash().is_empty());
}
