// Every statement of the language in one router policy.
use firewall::{firewall, Firewall};

const EVERYTHING: Firewall = firewall! {
    extif eth0, "ppp0";
    trust eth1, "br-lan";
    policy input drop;
    policy forward drop;
    policy output accept;
    open tcp 80, 443, 8000..=8080;
    open udp 53, 60000..=61000;
    open tcp 5432 from 198.51.100.0/24, 203.0.113.7, "2001:db8::/32";
    icmp accept;
    masquerade;
    dnat 221 -> 192.168.125.22:22;
    dnat 8443 -> 192.168.125.23;
    dnat udp 1194 -> 192.168.125.24:1194;
    redirect 26 -> 25;
    redirect udp 5353 -> 53;
    redirect 2222 -> 22;
    block out tcp 25, 6660..=6669;
    block out udp 1900;
    ssh 2222;
    failsafe 2min;
    log drops;
    assert open tcp 80, 443;
    assert closed tcp 3306;
    assert forwarded 221 -> 192.168.125.22:22;
    assert closed out tcp 25;
};

fn main() {
    assert!(EVERYTHING.bash().starts_with("#!/bin/bash"));
}
