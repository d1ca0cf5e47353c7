//! The 2010 stateful-firewall howto's whole policy, done right.
//!
//! ```text
//! cargo run --example howto              # print the bash script
//! cargo run --example howto -- --restore # print the IPv4 ruleset (iptables-save format)
//! cargo run --example howto -- --restore6
//! ```
//!
//! What the howto did and what this does instead:
//! - `-i ! $EXTIF` (obsolete syntax) and "trust every other interface": the
//!   default here (no `trust` statement), rendered as `-i eth0 -g ext-in` plus
//!   an accept for everything else.
//! - `PORTS="22 80 443 53 443 143 993"` lists 443 twice: here that does not compile.
//! - `REDIRECT 26 -> 25` was dropped on INPUT (port 25 was never opened); here
//!   exactly the redirected connections are accepted and 25 stays closed.
//! - `-F POSTOUTING`, append-only `-A` loops: the rules are loaded atomically
//!   with `iptables-restore`, so running the script twice gives the same ruleset.
//! - `iptables -P INPUT DROP; sleep 10; iptables -P INPUT ACCEPT`: `failsafe`.
use firewall::{firewall, Firewall};

/// The howto's gateway: SSH, HTTP, HTTPS, DNS, IMAP/IMAPS open (443 once);
/// ping answered; masquerading for the inner network; port 26 redirected to
/// the local mail server on 25; port 221 forwarded to an inner host's SSH.
const HOWTO: Firewall = firewall! {
    extif eth0;
    open tcp 22, 80, 443, 53, 143, 993;
    open udp 53;
    icmp accept;
    masquerade;
    redirect 26 -> 25;
    dnat 221 -> 192.168.125.22:22;
    failsafe 10s;
};

fn main() {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        None => print!("{}", HOWTO.bash()),
        Some("--restore") => print!("{}", HOWTO.iptables_restore()),
        Some("--restore6") => print!("{}", HOWTO.ip6tables_restore()),
        Some(other) => {
            eprintln!("unknown option `{other}`; use --restore or --restore6 (or nothing for the bash script)");
            std::process::exit(2);
        }
    }
}
