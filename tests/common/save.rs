//! The one reader of `iptables-save` output in the tests: which tool to run
//! ([`command`]), how its text is normalised for comparing ([`normalize`]),
//! and the questions tests ask of it ([`table_rules`], [`rule_packets`]).
//! The tools run inside a namespace ([`super::netns::Netns::iptables_save`],
//! [`super::Topology::ruleset`]); nothing here runs anything.

/// An address family: which of the two tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `iptables-save`.
    V4,
    /// `ip6tables-save`.
    V6,
}

impl Family {
    /// Both, IPv4 first (the order of every dump of both).
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];
}

/// Which iptables binaries read the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tools {
    /// `iptables-save` (on Debian 12 the nf_tables one, iptables-nft).
    Default,
    /// `iptables-legacy-save` (x_tables).
    Legacy,
}

/// What a normalised dump keeps of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counters {
    /// None: for comparing rulesets whatever traffic they saw.
    Strip,
    /// The rules' counters (`-c`), but not those of the built-in chains'
    /// policies, which the kernel's own IPv6 chatter (router solicitations,
    /// MLD reports) moves at any moment; they read `[*]`.
    Rules,
}

/// The command (program first) that dumps `family` with `tools`.
pub fn command(family: Family, tools: Tools, counters: Counters) -> Vec<&'static str> {
    let tool = match (family, tools) {
        (Family::V4, Tools::Default) => "iptables-save",
        (Family::V6, Tools::Default) => "ip6tables-save",
        (Family::V4, Tools::Legacy) => "iptables-legacy-save",
        (Family::V6, Tools::Legacy) => "ip6tables-legacy-save",
    };
    match counters {
        Counters::Strip => vec![tool],
        Counters::Rules => vec![tool, "-c"],
    }
}

/// `save` without comment and blank lines, its counters as `counters` says.
pub fn normalize(save: &str, counters: Counters) -> String {
    let mut out = String::new();
    for line in save.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let chain_counters = line
            .strip_prefix(':')
            .filter(|_| line.ends_with(']'))
            .and_then(|_| line.rfind(" ["));
        match (chain_counters, counters) {
            (Some(i), Counters::Strip) => out.push_str(&line[..i]),
            (Some(i), Counters::Rules) => {
                let builtin = line[..i].split(' ').nth(1).is_some_and(|p| p != "-");
                out.push_str(&line[..i]);
                out.push_str(if builtin { " [*]" } else { &line[i..] });
            }
            (None, Counters::Rules) => out.push_str(line),
            // A rule line of `-c` output: `[packets:bytes] -A ...`.
            (None, Counters::Strip) => {
                match line.strip_prefix('[').and_then(|l| l.split_once("] ")) {
                    Some((_, rule)) => out.push_str(rule),
                    None => out.push_str(line),
                }
            }
        }
        out.push('\n');
    }
    out
}

/// The rules (`-A` lines) of `table` in `saved` (without counters).
pub fn table_rules<'a>(saved: &'a str, table: &str) -> Vec<&'a str> {
    let mut inside = false;
    saved
        .lines()
        .filter(|l| {
            if let Some(t) = l.strip_prefix('*') {
                inside = t == table;
            }
            inside && l.starts_with("-A ")
        })
        .collect()
}

/// The packet counter of the first rule of `saved` (a `-c` dump) whose text
/// contains every one of `needles`.
pub fn rule_packets(saved: &str, needles: &[&str]) -> Option<u64> {
    let line = saved
        .lines()
        .find(|l| l.starts_with('[') && needles.iter().all(|n| l.contains(n)))?;
    let counters = line.strip_prefix('[')?.split(']').next()?;
    counters.split(':').next()?.parse().ok()
}
