// 2222 is redirected to sshd on 22, but ssh is still declared as 22
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    redirect 2222 -> 22;
};

fn main() {}
