//! The kernel options and modules a [`Plan`] needs: the howto's "Kernel
//! Configuration", computed from the typed matches and targets of the rules
//! (never from rendered text or a tool's error messages).
//!
//! Each [`Requirement`] names the module (as `modprobe` and `lsmod` know it),
//! the `CONFIG_` option that builds it (`=y` or `=m`), what it does, and what
//! in the policy needs it ([`Reason`]: the rules' [`Origin`]s, or every policy).
//! The list depends on the [`Backend`] that loads the rules:
//!
//! * [`Backend::IptablesLegacy`]: `x_tables`, `ip_tables`/`ip6_tables`, the
//!   `filter` and `nat` tables of both families (the rulesets always carry
//!   both tables), and one x_tables extension per match or target used.
//! * [`Backend::IptablesNft`]: the same extensions, reached through
//!   `nft_compat`, in nf_tables tables. Newer `iptables-nft` translates some
//!   matches (ports, `-m comment`) to native expressions; the list is what the
//!   oldest supported one (Debian 12's 1.8.9) may ask for, so it can name an
//!   extension a newer tool does without.
//! * [`Backend::Nftables`]: the `inet` table, and the `ip` NAT table only when
//!   the policy has NAT rules; `nft_ct`, `nft_limit`, `nft_log`, ... per
//!   expression. Named sets (port and address lists), payload and meta
//!   matches and comments are part of `nf_tables` itself (its set backends
//!   have had no option of their own since Linux 5.x).
//!
//! Requirements an option selects by itself (`nf_defrag_ipv4`,
//! `nf_reject_ipv4`, ...) are left out. The order is fixed (tables first, then
//! connection tracking and NAT, then matches, then targets); each requirement
//! appears once, its reasons in the order of the rules that need it.
//!
//! ```
//! use firewall_core::plan::{self, requirements::{self, Backend}};
//! use firewall_core::Policy;
//! let policy = Policy::parse("extif eth0; open tcp 22, 80; log drops;").unwrap();
//! let reqs = requirements::of(&plan::lower(policy.model()), Backend::IptablesLegacy);
//! let multiport = reqs.iter().find(|r| r.module == "xt_multiport").unwrap();
//! assert_eq!(multiport.config, "CONFIG_NETFILTER_XT_MATCH_MULTIPORT");
//! assert_eq!(multiport.needed_by[0].to_string(), "open tcp 22, 80");
//! assert!(reqs.iter().any(|r| r.module == "xt_LOG"));
//! // No NAT statement: the nftables backend needs no NAT module.
//! let nft = requirements::of(&plan::lower(policy.model()), Backend::Nftables);
//! assert!(!nft.iter().any(|r| r.module == "nf_nat"));
//! ```

pub use super::backend::Backend;
use super::{Family, Matches, Origin, Plan, Rule, TableKind, Target, L4};
use std::fmt;

/// Why a [`Requirement`] is there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Every policy needs it with this backend (its tables and base chains).
    EveryPolicy,
    /// The rules from this statement or default use it.
    Rule(Origin),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::EveryPolicy => f.write_str("every policy"),
            Reason::Rule(origin) => origin.fmt(f),
        }
    }
}

/// One kernel module (or built-in part of one) that the policy needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The module, as `modprobe` takes it (`xt_multiport`).
    pub module: &'static str,
    /// The kernel option that builds it (`CONFIG_NETFILTER_XT_MATCH_MULTIPORT`).
    pub config: &'static str,
    /// What it does, in a few words.
    pub what: &'static str,
    /// What needs it, deduplicated, in rule order.
    pub needed_by: Vec<Reason>,
}

impl fmt::Display for Requirement {
    /// `CONFIG_X (module): what — needed by: a; b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}; needed by: ",
            self.config, self.module, self.what
        )?;
        for (i, reason) in self.needed_by.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            reason.fmt(f)?;
        }
        Ok(())
    }
}

/// The known requirements, in output order. The `as usize` of a variant
/// indexes [`CATALOGUE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Req {
    NfTables,
    NfTablesInet,
    NfTablesIpv4,
    NfTablesIpv6,
    NftCompat,
    NftChainNat,
    XTables,
    IpTables,
    IptableFilter,
    IptableNat,
    Ip6Tables,
    Ip6tableFilter,
    Ip6tableNat,
    NfConntrack,
    NfNat,
    XtComment,
    XtTcpudp,
    XtMultiport,
    XtConntrack,
    XtHl,
    XtLimit,
    NftCt,
    NftLimit,
    IptReject,
    Ip6tReject,
    NftRejectInet,
    XtLog,
    NftLog,
    NfLogSyslog,
    XtNat,
    XtRedirect,
    XtMasquerade,
    NftNat,
    NftRedir,
    NftMasq,
}

/// `(module, config, what)` per [`Req`], in its order.
const CATALOGUE: [(&str, &str, &str); 35] = [
    (
        "nf_tables",
        "CONFIG_NF_TABLES",
        "nftables core: tables, chains, payload and meta matches, sets",
    ),
    (
        "nf_tables",
        "CONFIG_NF_TABLES_INET",
        "nftables inet tables (IPv4 and IPv6 in one)",
    ),
    ("nf_tables", "CONFIG_NF_TABLES_IPV4", "nftables ip tables"),
    ("nf_tables", "CONFIG_NF_TABLES_IPV6", "nftables ip6 tables"),
    (
        "nft_compat",
        "CONFIG_NFT_COMPAT",
        "x_tables matches and targets inside nftables",
    ),
    ("nft_chain_nat", "CONFIG_NFT_NAT", "nftables nat chains"),
    (
        "x_tables",
        "CONFIG_NETFILTER_XTABLES",
        "x_tables, the iptables match and target framework",
    ),
    (
        "ip_tables",
        "CONFIG_IP_NF_IPTABLES",
        "IPv4 iptables (and its icmp match)",
    ),
    ("iptable_filter", "CONFIG_IP_NF_FILTER", "IPv4 filter table"),
    ("iptable_nat", "CONFIG_IP_NF_NAT", "IPv4 nat table"),
    (
        "ip6_tables",
        "CONFIG_IP6_NF_IPTABLES",
        "IPv6 ip6tables (and its icmp6 match)",
    ),
    (
        "ip6table_filter",
        "CONFIG_IP6_NF_FILTER",
        "IPv6 filter table",
    ),
    ("ip6table_nat", "CONFIG_IP6_NF_NAT", "IPv6 nat table"),
    ("nf_conntrack", "CONFIG_NF_CONNTRACK", "connection tracking"),
    ("nf_nat", "CONFIG_NF_NAT", "address translation"),
    (
        "xt_comment",
        "CONFIG_NETFILTER_XT_MATCH_COMMENT",
        "rule comments (-m comment)",
    ),
    (
        "xt_tcpudp",
        "CONFIG_NETFILTER_XTABLES",
        "TCP and UDP port matches (--sport, --dport)",
    ),
    (
        "xt_multiport",
        "CONFIG_NETFILTER_XT_MATCH_MULTIPORT",
        "port lists (-m multiport)",
    ),
    (
        "xt_conntrack",
        "CONFIG_NETFILTER_XT_MATCH_CONNTRACK",
        "conntrack state match (-m conntrack)",
    ),
    (
        "xt_hl",
        "CONFIG_NETFILTER_XT_MATCH_HL",
        "IPv6 hop limit match (-m hl)",
    ),
    (
        "xt_limit",
        "CONFIG_NETFILTER_XT_MATCH_LIMIT",
        "rate limit match (-m limit)",
    ),
    (
        "nft_ct",
        "CONFIG_NFT_CT",
        "conntrack expressions (ct state, ct status, ct original)",
    ),
    (
        "nft_limit",
        "CONFIG_NFT_LIMIT",
        "rate limit expression (limit rate)",
    ),
    (
        "ipt_REJECT",
        "CONFIG_IP_NF_TARGET_REJECT",
        "IPv4 REJECT target",
    ),
    (
        "ip6t_REJECT",
        "CONFIG_IP6_NF_TARGET_REJECT",
        "IPv6 REJECT target",
    ),
    (
        "nft_reject_inet",
        "CONFIG_NFT_REJECT_INET",
        "reject statement in inet tables",
    ),
    ("xt_LOG", "CONFIG_NETFILTER_XT_TARGET_LOG", "LOG target"),
    ("nft_log", "CONFIG_NFT_LOG", "log statement"),
    (
        "nf_log_syslog",
        "CONFIG_NF_LOG_SYSLOG",
        "packet logging to the kernel log",
    ),
    ("xt_nat", "CONFIG_NETFILTER_XT_NAT", "DNAT target"),
    (
        "xt_REDIRECT",
        "CONFIG_NETFILTER_XT_TARGET_REDIRECT",
        "REDIRECT target",
    ),
    (
        "xt_MASQUERADE",
        "CONFIG_NETFILTER_XT_TARGET_MASQUERADE",
        "MASQUERADE target",
    ),
    ("nft_nat", "CONFIG_NFT_NAT", "dnat statement"),
    ("nft_redir", "CONFIG_NFT_REDIR", "redirect statement"),
    ("nft_masq", "CONFIG_NFT_MASQ", "masquerade statement"),
];

/// Every requirement any policy can have with any backend, without reasons
/// (for checking the names against a kernel's configuration).
pub fn catalogue() -> Vec<Requirement> {
    CATALOGUE
        .iter()
        .map(|&(module, config, what)| Requirement {
            module,
            config,
            what,
            needed_by: Vec::new(),
        })
        .collect()
}

/// Collects requirements with their reasons, deduplicated. `seen` makes a
/// repeated (requirement, reason) pair cost a hash lookup, not a scan of the
/// reasons so far (10,000 one-host statements are 10,000 reasons).
struct Needs {
    found: Vec<(Req, Vec<Reason>)>,
    seen: std::collections::HashSet<(Req, Reason)>,
}

impl Needs {
    fn add(&mut self, req: Req, reason: &Reason) {
        if !self.seen.insert((req, reason.clone())) {
            return;
        }
        match self.found.iter_mut().find(|(r, _)| *r == req) {
            Some((_, reasons)) => reasons.push(reason.clone()),
            None => self.found.push((req, vec![reason.clone()])),
        }
    }

    fn finish(mut self) -> Vec<Requirement> {
        self.found.sort_by_key(|(r, _)| *r);
        self.found
            .into_iter()
            .map(|(req, needed_by)| {
                let (module, config, what) = CATALOGUE[req as usize];
                Requirement {
                    module,
                    config,
                    what,
                    needed_by,
                }
            })
            .collect()
    }
}

/// The kernel requirements of `plan` loaded by `backend`.
pub fn of(plan: &Plan, backend: Backend) -> Vec<Requirement> {
    let mut needs = Needs {
        found: Vec::new(),
        seen: std::collections::HashSet::new(),
    };
    let every = Reason::EveryPolicy;
    match backend {
        Backend::IptablesLegacy | Backend::IptablesNft => {
            // Both rulesets always carry `*filter` and `*nat`.
            let tables: &[Req] = if backend == Backend::IptablesLegacy {
                &[
                    Req::XTables,
                    Req::IpTables,
                    Req::IptableFilter,
                    Req::IptableNat,
                    Req::Ip6Tables,
                    Req::Ip6tableFilter,
                    Req::Ip6tableNat,
                ]
            } else {
                &[
                    Req::NfTables,
                    Req::NfTablesIpv4,
                    Req::NfTablesIpv6,
                    Req::NftCompat,
                    Req::NftChainNat,
                    Req::XTables,
                ]
            };
            // Every rule carries `-m comment` (its origin).
            for t in tables
                .iter()
                .chain(&[Req::NfConntrack, Req::NfNat, Req::XtComment])
            {
                needs.add(*t, &every);
            }
        }
        Backend::Nftables => {
            needs.add(Req::NfTables, &every);
            needs.add(Req::NfTablesInet, &every);
        }
    }
    for table in plan.tables() {
        for chain in &table.chains {
            for rule in &chain.rules {
                let reason = Reason::Rule(rule.origin.clone());
                if table.kind == TableKind::Nat && backend == Backend::Nftables {
                    for r in [Req::NfTablesIpv4, Req::NftChainNat, Req::NfNat] {
                        needs.add(r, &reason);
                    }
                }
                for family in families(table.kind, rule) {
                    for r in rule_needs(rule, family, backend) {
                        needs.add(r, &reason);
                    }
                }
            }
        }
    }
    needs.finish()
}

/// The families a rule is loaded for: NAT rules are IPv4 only.
fn families(table: TableKind, rule: &Rule) -> Vec<Family> {
    match (table, rule.family) {
        (TableKind::Nat, _) => vec![Family::V4],
        (_, Some(f)) => vec![f],
        (_, None) => vec![Family::V4, Family::V6],
    }
}

/// What one rule, loaded for `family`, needs beyond the tables.
fn rule_needs(rule: &Rule, family: Family, backend: Backend) -> Vec<Req> {
    let xt = backend != Backend::Nftables;
    let Matches {
        iif: _,
        oif: _,
        src: _,
        dst: _,
        proto,
        hop_limit,
        ct_state,
        ct_dnat_from,
        ct_dnat,
        limit,
    } = &rule.matches;
    let mut out = Vec::new();
    if xt {
        if let Some(L4::Tcp(p) | L4::Udp(p)) = proto {
            if p.sport.is_some() || p.dport.is_some() {
                out.push(Req::XtTcpudp);
            }
            if p.dport.as_ref().is_some_and(|d| d.ranges().len() > 1) {
                out.push(Req::XtMultiport);
            }
        }
    }
    if hop_limit.is_some() && xt {
        out.push(Req::XtHl);
    }
    if ct_state.is_some() || ct_dnat_from.is_some() || *ct_dnat {
        out.push(Req::NfConntrack);
        out.push(if xt { Req::XtConntrack } else { Req::NftCt });
    }
    if limit.is_some() {
        out.push(if xt { Req::XtLimit } else { Req::NftLimit });
    }
    match &rule.target {
        Target::Accept | Target::Drop | Target::Goto(_) | Target::Jump(_) => {}
        Target::Reject(_) => out.push(match (xt, family) {
            (false, _) => Req::NftRejectInet,
            (true, Family::V4) => Req::IptReject,
            (true, Family::V6) => Req::Ip6tReject,
        }),
        Target::Log { .. } => {
            out.push(if xt { Req::XtLog } else { Req::NftLog });
            out.push(Req::NfLogSyslog);
        }
        Target::Dnat { .. } => {
            out.push(Req::NfNat);
            out.push(if xt { Req::XtNat } else { Req::NftNat });
        }
        Target::Redirect { .. } => {
            out.push(Req::NfNat);
            out.push(if xt { Req::XtRedirect } else { Req::NftRedir });
        }
        Target::Masquerade => {
            out.push(Req::NfNat);
            out.push(if xt { Req::XtMasquerade } else { Req::NftMasq });
        }
    }
    out
}

/// The requirements as text, like the howto's "Kernel Configuration": a
/// heading naming the backend, then per requirement its option and module,
/// what it does, and what in the policy needs it.
///
/// ```
/// use firewall_core::plan::requirements::Backend;
/// use firewall_core::Policy;
/// let p = Policy::parse("extif eth0; open tcp 22; masquerade;").unwrap();
/// let text = p.kernel_requirements_text(Backend::Nftables);
/// assert!(text.starts_with("Kernel configuration for nftables"));
/// assert!(text.contains("  CONFIG_NFT_MASQ (nft_masq): masquerade statement\n    needed by: masquerade\n"));
/// ```
pub fn text(requirements: &[Requirement], backend: Backend) -> String {
    use fmt::Write as _;
    let mut s = format!(
        "Kernel configuration for {backend} (each option =y, or =m with the module loadable):\n"
    );
    for r in requirements {
        let _ = writeln!(s, "  {} ({}): {}", r.config, r.module, r.what);
        let reasons: Vec<String> = r.needed_by.iter().map(ToString::to_string).collect();
        let _ = writeln!(s, "    needed by: {}", reasons.join("; "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    fn reqs(text: &str, backend: Backend) -> Vec<Requirement> {
        let p = Policy::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        of(&super::super::lower(p.model()), backend)
    }

    fn modules(r: &[Requirement]) -> Vec<&'static str> {
        r.iter().map(|r| r.module).collect()
    }

    fn needed_by(r: &[Requirement], module: &str) -> Vec<String> {
        r.iter()
            .find(|r| r.module == module)
            .unwrap_or_else(|| panic!("no {module} in {:?}", modules(r)))
            .needed_by
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const NAT_KINDS: [&str; 6] = [
        "xt_nat",
        "xt_REDIRECT",
        "xt_MASQUERADE",
        "nft_nat",
        "nft_redir",
        "nft_masq",
    ];

    #[test]
    fn catalogue_indexes_match_the_enum() {
        // Req::NftMasq is the last variant: the table has one row per variant.
        assert_eq!(Req::NftMasq as usize + 1, CATALOGUE.len());
        assert_eq!(CATALOGUE[Req::XtMultiport as usize].0, "xt_multiport");
        assert_eq!(CATALOGUE[Req::NftChainNat as usize].0, "nft_chain_nat");
        for (m, c, _) in CATALOGUE {
            assert!(c.starts_with("CONFIG_") && !m.is_empty());
        }
    }

    #[test]
    fn without_nat_no_nat_extensions_and_no_nft_nat_table() {
        for b in Backend::ALL {
            let r = reqs("extif eth0; open tcp 22;", b);
            let m = modules(&r);
            assert!(!m.iter().any(|m| NAT_KINDS.contains(m)), "{b}: {m:?}");
            assert!(
                !m.contains(&"xt_multiport") && !m.contains(&"xt_LOG"),
                "{m:?}"
            );
            assert!(!m.contains(&"ipt_REJECT") && !m.contains(&"nft_reject_inet"));
        }
        let nft = reqs("extif eth0; open tcp 22;", Backend::Nftables);
        assert_eq!(
            modules(&nft),
            ["nf_tables", "nf_tables", "nf_conntrack", "nft_ct"],
            "{nft:?}"
        );
        // iptables rulesets carry *nat in both families whatever the policy.
        let legacy = reqs("extif eth0; open tcp 22;", Backend::IptablesLegacy);
        assert_eq!(needed_by(&legacy, "ip6table_nat"), ["every policy"]);
        let tcpudp = needed_by(&legacy, "xt_tcpudp");
        assert!(tcpudp.contains(&"open tcp 22".to_string()), "{tcpudp:?}");
    }

    #[test]
    fn nat_statements_need_their_targets() {
        let text =
            "extif eth0; ssh none; masquerade; redirect 26 -> 25; dnat 221 -> 203.0.113.2:22;";
        let legacy = reqs(text, Backend::IptablesLegacy);
        assert_eq!(needed_by(&legacy, "xt_MASQUERADE"), ["masquerade"]);
        assert_eq!(needed_by(&legacy, "xt_REDIRECT"), ["redirect 26 -> 25"]);
        assert_eq!(needed_by(&legacy, "xt_nat"), ["dnat 221 -> 203.0.113.2:22"]);
        let nf_nat = needed_by(&legacy, "nf_nat");
        assert_eq!(nf_nat[0], "every policy");
        assert!(nf_nat.contains(&"masquerade".to_string()));
        // The accept of the redirected connection matches its DNAT state.
        assert!(needed_by(&legacy, "xt_conntrack").contains(&"redirect 26 -> 25".to_string()));
        let nft = reqs(text, Backend::Nftables);
        assert_eq!(needed_by(&nft, "nft_masq"), ["masquerade"]);
        assert_eq!(needed_by(&nft, "nft_redir"), ["redirect 26 -> 25"]);
        assert_eq!(needed_by(&nft, "nft_nat"), ["dnat 221 -> 203.0.113.2:22"]);
        let chain_nat = needed_by(&nft, "nft_chain_nat");
        assert_eq!(chain_nat.len(), 3, "{chain_nat:?}");
        assert!(!nft.iter().any(|r| r.config == "CONFIG_NFT_COMPAT"));
        let nft_nat = nft.iter().filter(|r| r.config == "CONFIG_NFT_NAT").count();
        assert_eq!(nft_nat, 2, "nft_chain_nat and nft_nat share their option");
    }

    #[test]
    fn log_drops_needs_log_and_limit() {
        let r = reqs("extif eth0; ssh none; log drops;", Backend::IptablesLegacy);
        assert_eq!(needed_by(&r, "xt_LOG"), ["log drops"]);
        assert_eq!(needed_by(&r, "xt_limit"), ["log drops"]);
        assert_eq!(needed_by(&r, "nf_log_syslog"), ["log drops"]);
        let r = reqs("extif eth0; ssh none; log drops;", Backend::Nftables);
        assert_eq!(needed_by(&r, "nft_log"), ["log drops"]);
        assert_eq!(needed_by(&r, "nft_limit"), ["log drops"]);
        assert!(!modules(&r).contains(&"xt_LOG"));
    }

    #[test]
    fn reject_per_family() {
        let text = "extif eth0; ssh none; policy input reject;";
        let r = reqs(text, Backend::IptablesLegacy);
        assert_eq!(needed_by(&r, "ipt_REJECT"), ["policy input reject"]);
        assert_eq!(needed_by(&r, "ip6t_REJECT"), ["policy input reject"]);
        let r = reqs(text, Backend::Nftables);
        assert_eq!(needed_by(&r, "nft_reject_inet"), ["policy input reject"]);
    }

    #[test]
    fn ipv6_neighbour_discovery_needs_hl_in_iptables_only() {
        let r = reqs("extif eth0; ssh none;", Backend::IptablesLegacy);
        let hl = needed_by(&r, "xt_hl");
        assert!(
            hl.contains(&"default: IPv6 neighbour discovery".to_string()),
            "{hl:?}"
        );
        // nftables spells the hop limit as a payload match: no module.
        let r = reqs("extif eth0; ssh none;", Backend::Nftables);
        assert!(!modules(&r).contains(&"xt_hl"));
    }

    #[test]
    fn port_lists_need_multiport_once_with_every_statement() {
        let r = reqs(
            "extif eth0; open tcp 22, 80; open udp 53, 123; open tcp 8000..=8080;",
            Backend::IptablesNft,
        );
        assert_eq!(
            needed_by(&r, "xt_multiport"),
            ["open tcp 22, 80", "open udp 53, 123"]
        );
        assert_eq!(
            r.iter().filter(|r| r.module == "xt_multiport").count(),
            1,
            "deduplicated"
        );
        assert!(modules(&r).contains(&"nft_compat"));
        assert!(!modules(&r).contains(&"iptable_filter"));
    }

    #[test]
    fn order_is_fixed_and_text_lists_every_requirement() {
        let text = "extif eth0; open tcp 22, 80; masquerade; log drops; policy input reject;";
        for b in Backend::ALL {
            let r = reqs(text, b);
            let keys: Vec<usize> = r
                .iter()
                .map(|r| {
                    CATALOGUE
                        .iter()
                        .position(|c| c.0 == r.module && c.1 == r.config)
                        .unwrap()
                })
                .collect();
            let mut sorted = keys.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(keys, sorted, "{b}");
            assert_eq!(r, reqs(text, b));
            let t = super::text(&r, b);
            assert_eq!(t.lines().count(), 1 + 2 * r.len(), "{t}");
        }
    }
}
