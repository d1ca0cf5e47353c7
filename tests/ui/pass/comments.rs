// `//` and `/* */` comments inside the macro are ignored, wherever they are.
use firewall::{firewall, Firewall};

const COMMENTED: Firewall = firewall! {
    // The uplink; `open tcp 23;` in a comment does nothing.
    extif eth0; // trailing comment
    /* a block comment; with a semicolon */
    open tcp /* inline */ 22, 80 /* , 443 */;
    /*
     * a multi-line block comment
     * opne tcp 8080;
     */
    icmp /* accept? */ accept;
    log drops;
};

fn main() {
    assert!(!COMMENTED.bash().is_empty());
}
