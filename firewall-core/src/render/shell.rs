//! The shell library (`lib.sh`) and the names it shares with `apply()`.
//!
//! The generated script embeds the library, and `apply()` writes it into its
//! backup directory as `rollback.sh` (see [`super::bash::rollback_program`]).
//! Everything both sides must agree on (where the applier state lives, the
//! files of a backup directory, the nftables tables, the tools' bounds) is a
//! constant here; [`constants`] spells them as the shell variables the
//! library reads, so a name is written once.
//!
//! ```
//! use firewall_core::render::shell;
//! assert!(shell::constants().contains("fw_state_dir=/run/firewall\n"));
//! assert!(shell::LIBRARY.contains("fw_restore()"));
//! ```

use super::nft;

/// The shell functions, as written in `lib.sh` (without [`constants`]).
pub const LIBRARY: &str = include_str!("lib.sh");

/// Where the per-network-namespace applier state lives (the lock,
/// `.pending`, `.last`), when it is writable.
pub const STATE_DIR: &str = "/run/firewall";
/// The directory under `$TMPDIR` used instead when [`STATE_DIR`] is not writable.
pub const STATE_FALLBACK: &str = "firewall-run";

/// Files of a backup directory. `BACKEND`: the backend's name
/// ([`crate::plan::Backend::name`]), the one save, load and restore use.
pub const BACKEND: &str = "backend";
/// The state prefix of the applier ([`STATE_DIR`]`/net-INODE`).
pub const STATE: &str = "state";
/// The library as a program ([`super::bash::rollback_program`]).
pub const PROGRAM: &str = "rollback.sh";
/// The IPv4 rules before the change (`iptables-save -c`), iptables backends.
pub const V4_RULES: &str = "v4.rules";
/// The IPv6 rules before the change (`ip6tables-save -c`), iptables backends.
pub const V6_RULES: &str = "v6.rules";
/// The firewall's own nftables tables before the change (`nft list table`
/// of each that existed; empty when none did), nftables backend.
pub const NFT_RULES: &str = "nft.rules";
/// The tables that existed before the change, one name a line (IPv4): a
/// restore removes a table the change created once it holds nothing.
pub const V4_TABLES: &str = "v4.tables";
/// The same for IPv6.
pub const V6_TABLES: &str = "v6.tables";
/// Present (empty) when the backup is of an `exclusive;` apply: the whole
/// ruleset was saved and is restored whole.
pub const EXCLUSIVE: &str = "exclusive";
/// `net.ipv4.ip_forward` before the change.
pub const IP_FORWARD: &str = "ip_forward";

/// The firewall's own nftables tables, which the nftables backend replaces,
/// saves and restores (nothing else).
pub const NFT_TABLES: [&str; 2] = [nft::FILTER_TABLE, nft::NAT_TABLE];

/// Seconds any save/restore tool may run before it is killed.
pub const TOOL_TIMEOUT_SECS: u32 = 60;
/// Seconds `iptables-restore -w` waits for the xtables lock.
pub const XTABLES_WAIT_SECS: u32 = 10;

/// The shell variables [`constants`] sets (the script copies them into
/// `rollback.sh` with `declare -p`).
pub const CONSTANT_NAMES: [&str; 6] = [
    "fw_state_dir",
    "fw_state_fallback",
    "fw_nft_tables",
    "fw_tool_timeout",
    "fw_xtables_wait",
    "fw_chain_prefix",
];

/// The constants as shell assignments, the head of the library.
pub fn constants() -> String {
    format!(
        "# ---- Constants shared with firewall-core's apply() (render/shell.rs) ----\n\
         fw_state_dir={STATE_DIR}\n\
         fw_state_fallback={STATE_FALLBACK}\n\
         fw_nft_tables='{}'\n\
         fw_tool_timeout={TOOL_TIMEOUT_SECS}\n\
         fw_xtables_wait={XTABLES_WAIT_SECS}\n\
         fw_chain_prefix={}\n\n",
        NFT_TABLES.join(","),
        crate::plan::CHAIN_PREFIX
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_names_are_the_ones_set() {
        let c = constants();
        let set: Vec<&str> = c
            .lines()
            .filter_map(|l| l.split_once('=').map(|(n, _)| n))
            .collect();
        assert_eq!(set, CONSTANT_NAMES);
    }

    /// Every file name apply() writes into a backup directory is one the
    /// library reads under the same name.
    #[test]
    fn the_library_uses_the_shared_file_names() {
        for name in [BACKEND, STATE, IP_FORWARD, NFT_RULES] {
            assert!(LIBRARY.contains(&format!("/{name}")), "{name}");
        }
        // v$fam.rules: one pattern for both families.
        assert_eq!(V4_RULES, "v4.rules");
        assert_eq!(V6_RULES, "v6.rules");
        assert!(LIBRARY.contains("/v$fam.rules"));
        for (name, value) in [
            ("fw_state_dir", STATE_DIR),
            ("fw_state_fallback", STATE_FALLBACK),
        ] {
            assert!(constants().contains(&format!("{name}={value}\n")));
            assert!(LIBRARY.contains(&format!("${name}")), "{name}");
            let code = LIBRARY
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(!code.contains(value), "{value} spelled in lib.sh's code");
        }
    }
}
