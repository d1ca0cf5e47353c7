//! Missing kernel support, named the way the tool named it.
//!
//! `iptables-restore` says which extension it could not use; that name (not a
//! guess from the rule text) is what the error reports, with its kernel
//! configuration option where known. The messages recognised (iptables 1.8,
//! both backends):
//!
//! * `Warning: Extension multiport revision 0 not supported, missing kernel module?`
//!   (also `Extension state is not supported, ...`): the kernel lacks the extension;
//! * ``Couldn't load match `multiport':No such file or directory`` (or `target`):
//!   iptables has no library for it (`libxt_multiport.so`), or the kernel lacks it;
//! * ``can't initialize iptables table `nat': Table does not exist`` and
//!   `unable to initialize table 'nat'`: the kernel lacks the table;
//! * `CHAIN_ADD failed (No such file or directory): chain POSTROUTING` (nft): the
//!   kernel lacks the chain type (a `nat` chain: nf_tables NAT);
//! * `Could not fetch rule set generation id`: the kernel lacks nf_tables;
//! * `RULE_APPEND failed (No such file or directory): rule in chain X` with no
//!   extension named: the kernel rejected the rule; the extensions the rule
//!   uses are listed (one of them is missing).

/// The kernel option of an extension, where known.
fn config_of(name: &str) -> Option<&'static str> {
    Some(match name {
        "multiport" => "CONFIG_NETFILTER_XT_MATCH_MULTIPORT",
        "comment" => "CONFIG_NETFILTER_XT_MATCH_COMMENT",
        "conntrack" => "CONFIG_NETFILTER_XT_MATCH_CONNTRACK",
        "state" => "CONFIG_NETFILTER_XT_MATCH_STATE",
        "limit" => "CONFIG_NETFILTER_XT_MATCH_LIMIT",
        "hl" => "CONFIG_NETFILTER_XT_MATCH_HL",
        "addrtype" => "CONFIG_NETFILTER_XT_MATCH_ADDRTYPE",
        "icmp6" => "CONFIG_IP6_NF_IPTABLES",
        "icmp" => "CONFIG_IP_NF_IPTABLES",
        "LOG" => "CONFIG_NETFILTER_XT_TARGET_LOG",
        "REJECT" => "CONFIG_IP_NF_TARGET_REJECT / CONFIG_IP6_NF_TARGET_REJECT",
        "MASQUERADE" => "CONFIG_NETFILTER_XT_TARGET_MASQUERADE",
        "REDIRECT" => "CONFIG_NETFILTER_XT_TARGET_REDIRECT",
        "DNAT" | "SNAT" => "CONFIG_NETFILTER_XT_NAT",
        "CHECKSUM" => "CONFIG_NETFILTER_XT_TARGET_CHECKSUM",
        _ => return None,
    })
}

/// Targets are written in capitals (`LOG`), matches in lower case.
fn kind_of(name: &str) -> &'static str {
    if name.chars().any(|c| c.is_ascii_lowercase()) {
        "match"
    } else {
        "target"
    }
}

fn module_of(name: &str) -> String {
    format!("xt_{name}")
}

fn extension(name: &str, kind: &str) -> String {
    let mut s = format!("the `{name}` {kind} (kernel module {}", module_of(name));
    if let Some(c) = config_of(name) {
        s.push_str(", ");
        s.push_str(c);
    }
    s.push(')');
    s
}

fn table(name: &str) -> String {
    let config = match name {
        "nat" => "CONFIG_NF_NAT, CONFIG_IP_NF_NAT / CONFIG_IP6_NF_NAT (nf_tables: CONFIG_NFT_NAT)",
        "filter" => "CONFIG_IP_NF_FILTER / CONFIG_IP6_NF_FILTER",
        "mangle" => "CONFIG_IP_NF_MANGLE / CONFIG_IP6_NF_MANGLE",
        _ => "CONFIG_IP_NF_IPTABLES / CONFIG_IP6_NF_IPTABLES",
    };
    format!("the iptables table `{name}` ({config})")
}

/// The text between the first `open` and the next `close` after `from` in `s`.
fn between<'a>(s: &'a str, from: &str, open: char, close: char) -> Option<&'a str> {
    let rest = &s[s.find(from)? + from.len()..];
    let rest = rest.trim_start().strip_prefix(open)?;
    rest.split_once(close).map(|(name, _)| name)
}

/// The extensions (`-m X`, `-j X`, `-g` excluded) a rule uses.
fn rule_extensions(rule: &str) -> Vec<String> {
    let words: Vec<&str> = rule.split_whitespace().collect();
    let mut out = Vec::new();
    for w in words.windows(2) {
        if (w[0] == "-m" || w[0] == "-j") && !matches!(w[1], "ACCEPT" | "DROP" | "RETURN") {
            let name = w[1].to_string();
            if w[0] == "-j" && name.chars().any(|c| c.is_ascii_lowercase()) {
                continue; // a user chain
            }
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// The missing kernel support the tool's message names, if it names any;
/// `rule` is the rejected rule (for a rejection that names nothing).
pub(crate) fn kernel_feature(stderr: &str, rule: Option<&str>) -> Option<String> {
    for line in stderr.lines() {
        // "Extension NAME revision N not supported" / "Extension NAME is not supported"
        if let Some(rest) = line.split("Extension ").nth(1) {
            if line.contains("not supported") {
                if let Some(name) = rest.split_whitespace().next() {
                    return Some(extension(name, kind_of(name)));
                }
            }
        }
        for kind in ["match", "target"] {
            if let Some(name) = between(line, &format!("Couldn't load {kind}"), '`', '\'') {
                return Some(format!(
                    "{}, or iptables lacks its extension library libxt_{name}.so",
                    extension(name, kind)
                ));
            }
        }
        if line.contains("Table does not exist") || line.contains("unable to initialize table") {
            let name = between(line, "table ", '`', '\'')
                .or_else(|| between(line, "table ", '\'', '\''))
                .unwrap_or("?");
            return Some(table(name));
        }
        if line.contains("Could not fetch rule set generation id") {
            return Some("nf_tables (CONFIG_NF_TABLES, nft_compat: CONFIG_NFT_COMPAT); or use the legacy backend".into());
        }
        if line.contains("CHAIN_ADD failed (No such file or directory)") {
            let chain = line.rsplit("chain ").next().unwrap_or("?").trim();
            return Some(format!(
                "support for the built-in chain {chain} (for the nat table: nf_tables NAT, CONFIG_NFT_NAT and CONFIG_NF_NAT)"
            ));
        }
    }
    if stderr.contains("RULE_APPEND failed (No such file or directory)")
        || stderr.contains("RULE_INSERT failed (No such file or directory)")
    {
        let exts = rule.map(rule_extensions).unwrap_or_default();
        if !exts.is_empty() {
            let list: Vec<String> = exts.iter().map(|e| extension(e, kind_of(e))).collect();
            return Some(format!(
                "support for one of the extensions this rule uses: {}",
                list.join("; ")
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_the_tool_named() {
        // The rule uses multiport and comment; the tool names conntrack.
        let rule = "-A INPUT -p tcp -m multiport --dports 22,80 -m comment --comment x -m conntrack --ctstate NEW -j ACCEPT";
        let f = kernel_feature(
            "Warning: Extension conntrack revision 0 not supported, missing kernel module?\niptables-restore v1.8.9 (nf_tables): RULE_APPEND failed (No such file or directory): rule in chain INPUT\n",
            Some(rule),
        )
        .unwrap();
        assert!(
            f.contains("`conntrack` match") && f.contains("CONFIG_NETFILTER_XT_MATCH_CONNTRACK"),
            "{f}"
        );
        assert!(!f.contains("multiport") && !f.contains("comment"), "{f}");
        let f = kernel_feature(
            "Warning: Extension LOG revision 0 not supported, missing kernel module?\n",
            None,
        )
        .unwrap();
        assert!(
            f.contains("`LOG` target") && f.contains("CONFIG_NETFILTER_XT_TARGET_LOG"),
            "{f}"
        );
        let f = kernel_feature(
            "Warning: Extension state is not supported, missing kernel module?\n",
            None,
        )
        .unwrap();
        assert!(f.contains("`state` match"), "{f}");
        let f = kernel_feature("iptables-restore v1.8.9 (legacy): Couldn't load match `hl':No such file or directory\n\nError occurred at line: 9\n", Some(rule)).unwrap();
        assert!(f.contains("`hl` match") && f.contains("libxt_hl.so"), "{f}");
        let f = kernel_feature("iptables-restore: line 8 failed: Couldn't load target `MASQUERADE':No such file or directory\n", None).unwrap();
        assert!(f.contains("`MASQUERADE` target"), "{f}");
        let f = kernel_feature("iptables-restore v1.8.7 (legacy): can't initialize iptables table `nat': Table does not exist (do you need to insmod?)\n", None).unwrap();
        assert!(
            f.contains("table `nat`") && f.contains("CONFIG_IP_NF_NAT"),
            "{f}"
        );
        let f = kernel_feature("iptables v1.8.10 (nf_tables):  CHAIN_ADD failed (No such file or directory): chain POSTROUTING\n", None).unwrap();
        assert!(
            f.contains("POSTROUTING") && f.contains("CONFIG_NFT_NAT"),
            "{f}"
        );
        let f = kernel_feature(
            "Could not fetch rule set generation id: Invalid argument\n",
            None,
        )
        .unwrap();
        assert!(f.contains("CONFIG_NF_TABLES"), "{f}");
        // Nothing named: the rule's extensions are listed, not one guessed.
        let f = kernel_feature("iptables-restore v1.8.9 (nf_tables): RULE_APPEND failed (No such file or directory): rule in chain INPUT\n", Some(rule)).unwrap();
        assert!(
            f.contains("one of") && f.contains("multiport") && f.contains("conntrack"),
            "{f}"
        );
        // Not kernel support.
        assert_eq!(kernel_feature("iptables-restore v1.8.9 (nf_tables): Chain 'NOSUCHT' does not exist\nError occurred at line: 3\n", Some(rule)), None);
        assert_eq!(
            kernel_feature("Bad ctstate \"NO-SUCH-STATE\"\n", Some(rule)),
            None
        );
    }

    /// The old guess from the rule text blamed LOG here (and multiport or
    /// comment in most rules).
    #[test]
    fn the_named_match_not_the_rules_target() {
        let log = "-A ext-in -m limit --limit 5/min --limit-burst 10 -m comment --comment \"log drops\" -j LOG --log-prefix \"firewall drop: \"";
        let f = kernel_feature("Warning: Extension limit revision 0 not supported, missing kernel module?\niptables-restore v1.8.9 (nf_tables): RULE_APPEND failed (No such file or directory): rule in chain ext-in\n", Some(log)).unwrap_or_default();
        assert!(
            f.contains("`limit` match")
                && f.contains("CONFIG_NETFILTER_XT_MATCH_LIMIT")
                && !f.contains("LOG"),
            "{f}"
        );
    }
}
