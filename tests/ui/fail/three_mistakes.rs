use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    opne tcp 80;
    open tcp 22, 443, 443;
    dnat 221 -> 192.168 .125.22:22;
};

fn main() {
    let _still_usable: &str = F.bash();
}
