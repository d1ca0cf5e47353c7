//! Renderers: one [`Model`] in, the texts out. Nothing else builds rules.

use crate::model::Model;

pub mod bash;
pub mod guard;
pub mod iptables;
pub mod policy;
pub mod preflight;

/// Every text rendered from one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The bash script.
    pub bash: String,
    /// IPv4 rules, `iptables-save` format.
    pub ipv4: String,
    /// IPv6 rules, `ip6tables-save` format.
    pub ipv6: String,
    /// The policy in canonical form ([`policy::text`]).
    pub source: String,
}

/// Renders every text of `model`.
pub fn render(model: &Model) -> Rendered {
    let ipv4 = iptables::ipv4(model);
    let ipv6 = iptables::ipv6(model);
    let bash = bash::script(model, &ipv4, &ipv6);
    let source = policy::text(model);
    Rendered {
        bash,
        ipv4,
        ipv6,
        source,
    }
}
