// sshd listens on 2222 but only 22 is opened
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    ssh 2222;
    open tcp 22;
};

fn main() {}
