//! Policies for the kernel tests: parsed from text (a policy that does not
//! parse fails the test, showing the text) and loaded into a [`Topology`].

use super::Topology;
use firewall::Policy;

/// `text` parsed; panics with the text and the diagnostics if it does not parse.
pub fn parse(text: &str) -> Policy {
    match Policy::parse(text) {
        Ok(p) => p,
        Err(d) => panic!("the policy does not parse:\n{text}\n{d}"),
    }
}

/// A topology running `policy` (both families) with forwarding switched on
/// in the firewall, as the bash script of a router does (and as an
/// administrator may do by hand on any host).
pub fn forwarding_topology(test: &str, policy: &Policy) -> Topology {
    let t = Topology::new(test);
    t.load_rules(policy.iptables_restore(), policy.ip6tables_restore());
    t.set_ip_forward(true);
    t.set_ipv6_forwarding(true);
    t
}
