// Policies near a check's edge that must NOT be refused.
use firewall::{firewall, Firewall};

// The same port over tcp and udp is not a duplicate.
const TCP_AND_UDP: Firewall = firewall! { extif eth0; open tcp 22, 53; open udp 53; };

// Adjacent ranges do not overlap.
const ADJACENT: Firewall = firewall! { extif eth0; open tcp 22, 8000..=8080, 8081..=8090; };

// ssh restricted to an admin network is still reachable: no lockout.
const SSH_FROM: Firewall = firewall! { extif eth0; open tcp 22 from 198.51.100.0/24; };

// An input policy of accept cannot lock anyone out.
const ACCEPTING: Firewall = firewall! { extif eth0; policy input accept; };

// sshd on 2222 reached through port 22.
const REDIRECTED_SSH: Firewall = firewall! { extif eth0; redirect 22 -> 2222; };

// The same port to two disjoint networks.
const TWO_NETS: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    open tcp 5432 from 10.0.0.0/8;
    open tcp 5432 from 192.168.0.0/16;
};

// The same incoming port over tcp and udp may go to two places.
const DNAT_BOTH_PROTOS: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    dnat 53 -> 192.168.125.53;
    dnat udp 53 -> 192.168.125.54;
};

// `policy forward drop` with nothing that forwards is fine.
const NO_ROUTER: Firewall = firewall! { extif eth0; open tcp 22; policy forward drop; };

// Interface names: quoted, dotted, 15 bytes, iptables wildcard; stray `;`.
const NAMES: Firewall = firewall! {
    extif "eth0.100", "ppp+";
    trust "br-lan", "abcdefghijklmno";
    ;
    open tcp 22;;
};

// Failsafe bounds: 1s and 60min are both allowed.
const SHORT: Firewall = firewall! { extif eth0; open tcp 22; failsafe 1s; };
const LONG: Firewall = firewall! { extif eth0; open tcp 22; failsafe 60min; };

// Port bounds.
const BOUNDS: Firewall = firewall! { extif eth0; open tcp 1, 22, 65535; open udp 1..=65535; };

fn main() {
    for fw in [
        TCP_AND_UDP,
        ADJACENT,
        SSH_FROM,
        ACCEPTING,
        REDIRECTED_SSH,
        TWO_NETS,
        DNAT_BOTH_PROTOS,
        NO_ROUTER,
        NAMES,
        SHORT,
        LONG,
        BOUNDS,
    ] {
        assert!(!fw.bash().is_empty());
    }
}
