// `///` is a doc comment (an attribute), not a comment: use `//`
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {
    extif eth0;
    /// the web server
    open tcp 22, 80;
};

fn main() {}
