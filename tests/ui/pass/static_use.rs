// `firewall!` is a constant expression: usable in `static`, `const` and expressions.
use firewall::{firewall, Firewall};

static STATIC_FW: Firewall = firewall! { extif eth0; open tcp 22; };

const BOTH: [Firewall; 2] = [
    firewall! { extif eth0; open tcp 22; },
    firewall! { extif wlan0; ssh none; },
];

fn main() {
    let local: &'static Firewall = &STATIC_FW;
    assert!(!local.source().is_empty());
    assert_eq!(BOTH.len(), 2);
    let inline = firewall! { extif eth0; open tcp 22, 443; };
    assert!(inline.iptables_restore().contains("443"));
}
