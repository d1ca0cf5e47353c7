//! `iptables-save` format rulesets (STUB: being written).
use crate::model::Model;

/// IPv4 rules.
pub fn ipv4(_model: &Model) -> String {
    String::new()
}

/// IPv6 rules.
pub fn ipv6(_model: &Model) -> String {
    String::new()
}
