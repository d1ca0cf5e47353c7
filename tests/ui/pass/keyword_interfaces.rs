// Rust keywords are valid interface names when quoted, and `source()` quotes
// them again, so `policy()` parses the constant back (it did not).
use firewall::{firewall, Firewall};

const KEYWORDS: Firewall = firewall! {
    extif "type", "fn";
    trust "match", "_", "self1";
    open tcp 22;
};

// A trusted wildcard that also matches the external interface is fine: the
// external interface is matched first.
const TRUST_WILDCARD: Firewall = firewall! { extif eth0; trust "eth+"; open tcp 22; };

fn main() {
    assert!(KEYWORDS.source().contains("extif \"type\", \"fn\";"));
    assert!(KEYWORDS.source().contains("trust \"match\", \"_\", self1;"));
    for fw in [KEYWORDS, TRUST_WILDCARD] {
        let p = fw.policy().expect("the source of the constant parses again");
        assert_eq!(p.source(), fw.source());
        assert_eq!(p.iptables_restore(), fw.iptables_restore());
    }
}
