//! Renderers: one [`Model`] in, the texts out. The rules themselves are
//! decided once, by [`crate::plan::lower`]; the printers here only spell them.

use crate::model::Model;
use crate::plan::{self, Family};

pub mod bash;
pub mod guard;
pub mod iptables;
pub mod nft;
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
    /// The nftables file (`nft -f`), see [`nft`].
    pub nft: String,
    /// The policy in canonical form ([`policy::text`]).
    pub source: String,
}

/// Renders every text of `model`.
pub fn render(model: &Model) -> Rendered {
    let plan = plan::lower(model);
    let ipv4 = iptables::print(&plan, Family::V4);
    let ipv6 = iptables::print(&plan, Family::V6);
    let nft = nft::print(&plan);
    let bash = bash::script(model, &ipv4, &ipv6);
    let source = policy::text(model);
    Rendered {
        bash,
        ipv4,
        ipv6,
        nft,
        source,
    }
}
