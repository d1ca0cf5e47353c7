// `firewall!` inside `macro_rules!`: fragments arrive as (invisible) groups.
use firewall::{firewall, Firewall};

macro_rules! host {
    ($iface:ident, $port:literal) => {
        firewall! { extif $iface; open tcp 22, $port; }
    };
}

macro_rules! host_expr {
    ($port:expr, $net:tt) => {
        firewall! { extif eth0; open tcp 22; open tcp $port from $net; }
    };
}

const WEB: Firewall = host!(eth0, 443);
const DB: Firewall = host_expr!(5432, "198.51.100.0/24");

fn main() {
    assert!(WEB.iptables_restore().contains("443"));
    assert!(DB.iptables_restore().contains("5432"));
}
