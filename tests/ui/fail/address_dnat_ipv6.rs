// dnat to an IPv6 host: NAT statements are IPv4
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    dnat 8080 -> "2001:db8::5";
};

fn main() {}
