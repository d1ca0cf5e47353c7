// `.` as an interface name
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif ".";
    open tcp 22;
};

fn main() {}
