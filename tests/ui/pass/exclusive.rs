// `exclusive;`: the policy is the host's only firewall. The script says so
// loudly in its header, and its texts are those of the same policy without it.
use firewall::{firewall, Firewall};

const ONLY: Firewall = firewall! {
    extif eth0;
    open tcp 22;
    exclusive;
};

const SHARED: Firewall = firewall! {
    extif eth0;
    open tcp 22;
};

fn main() {
    assert!(ONLY.bash().contains("!!! EXCLUSIVE"));
    assert!(ONLY.bash().contains("fw_exclusive=1"));
    assert!(!SHARED.bash().contains("!!! EXCLUSIVE"));
    assert!(SHARED.bash().contains("fw_exclusive=0"));
    assert_eq!(ONLY.iptables_restore(), SHARED.iptables_restore());
    assert_eq!(ONLY.nft(), SHARED.nft());
}
