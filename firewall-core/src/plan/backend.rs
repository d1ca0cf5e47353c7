//! The backends that load a policy: which tools, which kernel API.
//!
//! One enum for the whole pipeline: the kernel requirements
//! ([`super::requirements`]) depend on it, and `apply()` and the bash script
//! load, save and roll back with exactly one of them.

use std::fmt;

/// The ruleset loader: which tools load the rules, and through which kernel API.
///
/// ```
/// use firewall_core::plan::Backend;
/// assert_eq!(Backend::IptablesNft.name(), "iptables-nft");
/// assert_eq!(Backend::from_name("nftables"), Some(Backend::Nftables));
/// assert_eq!(Backend::IptablesLegacy.iptables_variant(), Some("legacy"));
/// assert_eq!(Backend::Nftables.iptables_variant(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `iptables-restore` of the legacy (x_tables) iptables.
    IptablesLegacy,
    /// `iptables-restore` of iptables-nft (x_tables extensions inside nf_tables).
    IptablesNft,
    /// `nft -f` of the policy's nftables file (its own tables only).
    Nftables,
}

impl Backend {
    /// Every backend, in this order.
    pub const ALL: [Backend; 3] = [
        Backend::IptablesLegacy,
        Backend::IptablesNft,
        Backend::Nftables,
    ];

    /// `iptables-legacy`, `iptables-nft` or `nftables`: the name the bash
    /// script's `FIREWALL_BACKEND`, a backup directory's `backend` file and
    /// the messages use.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::IptablesLegacy => "iptables-legacy",
            Backend::IptablesNft => "iptables-nft",
            Backend::Nftables => "nftables",
        }
    }

    /// The backend called `name` (see [`Backend::name`]).
    pub fn from_name(name: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == name)
    }

    /// For an iptables backend, the variant in its tool names
    /// (`iptables-nft-restore`, `ip6tables-legacy-save`): `nft` or `legacy`.
    pub const fn iptables_variant(self) -> Option<&'static str> {
        match self {
            Backend::IptablesLegacy => Some("legacy"),
            Backend::IptablesNft => Some("nft"),
            Backend::Nftables => None,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
