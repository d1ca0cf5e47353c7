// a no-break space (U+00A0) between words: rustc refuses it, and so does Policy::parse
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    open tcp 22;
};

fn main() {}
