// an empty policy: no extif (and nothing else to report)
use firewall::{firewall, Firewall};

const F: Firewall = firewall! {};

fn main() {}
