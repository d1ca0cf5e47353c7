//! Printed texts that know where every line came from.
//!
//! The printers ([`super::iptables::print_mapped`], [`super::nft::print_mapped`])
//! return a [`Printed`]: the text, and for every line the [`Origin`] of the
//! plan rule printed on it (the statement, or the derived cause), and for every
//! chain what a correct read-back must show: its policy (and hook) and the
//! comments of its rules, in order. `apply()` maps a tool's "line N" error to
//! the statement through it, and compares the rules it reads back with it,
//! without parsing its own output again.
//!
//! [`Texts`] holds the three texts of one model ([`Texts::render`]): what
//! [`crate::apply::apply`] loads.
//!
//! ```
//! use firewall_core::render::Texts;
//! let model = firewall_core::compile::compile_str("extif eth0; open tcp 22, 80;").unwrap();
//! let texts = Texts::render(&model);
//! let v4 = &texts.ipv4;
//! let line = v4.text().lines().position(|l| l.contains("--dports 22,80")).unwrap() + 1;
//! assert_eq!(v4.origin_at(line).unwrap().to_string(), "open tcp 22, 80");
//! assert_eq!(v4.origin_at(1), None); // the header comment
//! let input = v4.chains().iter().find(|c| c.name == "INPUT").unwrap();
//! assert_eq!(input.policy.as_deref(), Some("DROP"));
//! let nft = &texts.nft;
//! let line = nft.text().lines().position(|l| l.contains("@ext-in_0_dport")).unwrap() + 1;
//! assert_eq!(nft.origin_at(line).unwrap().to_string(), "open tcp 22, 80");
//! ```

use crate::model::Model;
use crate::plan::{self, Family, Origin, Plan};

/// One printed text with, per line, the origin of the rule on it, and per
/// chain what the printer printed (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed {
    text: String,
    /// Per line (index = line - 1): the index into `origins` of the rule on it.
    lines: Vec<Option<u32>>,
    origins: Vec<Origin>,
    chains: Vec<ExpectedChain>,
    /// Rule lines a packet of IPv4 / IPv6 can meet.
    per_family: [usize; 2],
}

/// A chain as the printer printed it: what reading it back must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedChain {
    /// The table as the backend names it: `filter`, `nat` (iptables), `inet
    /// firewall`, `ip firewall_nat` (nftables: family and name).
    pub table: String,
    /// The chain's name (`INPUT`, `ext-in`; nftables: `input`, `ext-in`).
    pub name: String,
    /// The hook of a base chain, lower case (`input`, `postrouting`); `None`
    /// for a user chain.
    pub hook: Option<String>,
    /// The policy of a base chain as the backend spells it (`DROP`; nftables
    /// `drop`); `None` for a user chain.
    pub policy: Option<String>,
    /// The comments of the chain's rules, in order, one per printed rule.
    pub comments: Vec<String>,
}

impl Printed {
    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text, without the map.
    pub fn into_text(self) -> String {
        self.text
    }

    /// The origin of the rule on 1-based `line`; `None` for a line that
    /// holds no rule (a table or chain line, a comment, a set) or does not exist.
    pub fn origin_at(&self, line: usize) -> Option<&Origin> {
        let i = self.lines.get(line.checked_sub(1)?).copied().flatten()?;
        self.origins.get(i as usize)
    }

    /// Every chain printed, in the order printed.
    pub fn chains(&self) -> &[ExpectedChain] {
        &self.chains
    }

    /// The tables printed (each once, in order).
    pub fn tables(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for c in &self.chains {
            if !out.contains(&c.table.as_str()) {
                out.push(&c.table);
            }
        }
        out
    }

    /// The rules printed that packets of `family` can meet (an nftables rule
    /// of the `inet` table without a family match counts for both).
    pub fn rules_of(&self, family: Family) -> usize {
        self.per_family[usize::from(!family.is_v4())]
    }

    /// The same map for an edited `text` of the same line structure (a rule
    /// edited in place, e.g. broken on purpose by a test): `None` when its
    /// number of lines differs. The chains keep what the printer printed, so
    /// an edit that changes a comment or a policy is a verification mismatch.
    pub fn with_text(&self, text: &str) -> Option<Printed> {
        (text.lines().count() == self.lines.len()).then(|| Printed {
            text: text.to_string(),
            ..self.clone()
        })
    }
}

/// Builds a [`Printed`] line by line (the printers' side).
#[derive(Debug, Default)]
pub(crate) struct Builder {
    text: String,
    lines: Vec<Option<u32>>,
    origins: Vec<Origin>,
    chains: Vec<ExpectedChain>,
    per_family: [usize; 2],
}

impl Builder {
    /// Appends `text` (whole lines), none of which holds a rule.
    pub(crate) fn plain(&mut self, text: &str) {
        self.text.push_str(text);
        self.lines.extend(text.lines().map(|_| None));
    }

    /// Records `origin` for the rule lines that follow ([`Builder::rule`]);
    /// returns its index.
    pub(crate) fn origin(&mut self, origin: &Origin) -> u32 {
        // Rules of one statement are printed one after the other: only the
        // last origin is looked at (a repeat further back is stored again).
        if self.origins.last() == Some(origin) {
            return (self.origins.len() - 1) as u32;
        }
        self.origins.push(origin.clone());
        (self.origins.len() - 1) as u32
    }

    /// Appends one rule line (`line` ends in `\n`) of origin index `origin`
    /// to chain `chain` (an index [`Builder::chain`] returned), with its
    /// comment; `families`: which families' packets can meet it.
    pub(crate) fn rule(
        &mut self,
        chain: usize,
        line: &str,
        origin: u32,
        comment: &str,
        families: [bool; 2],
    ) {
        self.text.push_str(line);
        self.lines.push(Some(origin));
        if let Some(c) = self.chains.get_mut(chain) {
            c.comments.push(comment.to_string());
        }
        for (count, yes) in self.per_family.iter_mut().zip(families) {
            *count += usize::from(yes);
        }
    }

    /// Appends a hook line (`line` ends in `\n`): the jump from built-in chain
    /// `chain` into the firewall's own chain. Reading it back shows a rule
    /// without comment; it holds no policy rule (no origin, not counted).
    pub(crate) fn hook(&mut self, chain: usize, line: &str) {
        self.text.push_str(line);
        self.lines.push(None);
        if let Some(c) = self.chains.get_mut(chain) {
            c.comments.push(String::new());
        }
    }

    /// Declares a chain; its index, for [`Builder::rule`].
    pub(crate) fn chain(&mut self, chain: ExpectedChain) -> usize {
        self.chains.push(chain);
        self.chains.len() - 1
    }

    /// Appends a part built separately (whose rules took their origin
    /// indices from this builder, [`Builder::origin`]).
    pub(crate) fn append(&mut self, part: Builder) {
        self.text.push_str(&part.text);
        self.lines.extend(part.lines);
        self.chains.extend(part.chains);
        for (count, n) in self.per_family.iter_mut().zip(part.per_family) {
            *count += n;
        }
    }

    /// Whether nothing was appended.
    pub(crate) fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub(crate) fn finish(self) -> Printed {
        Printed {
            text: self.text,
            lines: self.lines,
            origins: self.origins,
            chains: self.chains,
            per_family: self.per_family,
        }
    }
}

/// The texts `apply()` loads, rendered from one model: the `iptables-restore`
/// rulesets of both families and the nftables file, each with its map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Texts {
    /// IPv4 rules, `iptables-save` format ([`super::iptables`]).
    pub ipv4: Printed,
    /// IPv6 rules, `ip6tables-save` format.
    pub ipv6: Printed,
    /// The nftables file ([`super::nft`]).
    pub nft: Printed,
}

impl Texts {
    /// The texts of `model` (lowered once, printed three times).
    pub fn render(model: &Model) -> Texts {
        Texts::of_plan(&plan::lower(model))
    }

    /// The texts of `plan`.
    pub fn of_plan(plan: &Plan) -> Texts {
        Texts {
            ipv4: super::iptables::print_mapped(plan, Family::V4),
            ipv6: super::iptables::print_mapped(plan, Family::V6),
            nft: super::nft::print_mapped(plan),
        }
    }

    /// These texts edited in place (for tests that break a rule on purpose):
    /// each edited text must have the same number of lines as the printed
    /// one, so that every line keeps its origin. `Err` names the text whose
    /// line count differs.
    #[doc(hidden)]
    pub fn __edited(&self, ipv4: &str, ipv6: &str, nft: &str) -> Result<Texts, String> {
        let edit = |p: &Printed, text: &str, what: &str| {
            p.with_text(text).ok_or_else(|| {
                format!(
                    "the edited {what} text has {} lines, the printed one {}: edit rules in place",
                    text.lines().count(),
                    p.lines.len()
                )
            })
        };
        Ok(Texts {
            ipv4: edit(&self.ipv4, ipv4, "IPv4")?,
            ipv6: edit(&self.ipv6, ipv6, "IPv6")?,
            nft: edit(&self.nft, nft, "nftables")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(policy: &str) -> Texts {
        Texts::render(&crate::compile::test_model(policy))
    }

    /// The mapped printers print exactly what the plain ones print.
    #[test]
    fn mapped_texts_are_the_printed_texts() {
        for p in [
            "extif eth0; open tcp 22, 80;",
            "extif eth0, \"ppp+\"; open tcp 22, 80 from 198.51.100.0/24, 203.0.113.0/24; masquerade; dnat 221 -> 203.0.113.2:22; redirect 26 -> 25; log drops; policy input reject;",
        ] {
            let m = crate::compile::test_model(p);
            let t = Texts::render(&m);
            assert_eq!(t.ipv4.text(), super::super::iptables::ipv4(&m));
            assert_eq!(t.ipv6.text(), super::super::iptables::ipv6(&m));
            assert_eq!(t.nft.text(), super::super::nft::nft(&m));
            for printed in [&t.ipv4, &t.ipv6, &t.nft] {
                assert_eq!(printed.lines.len(), printed.text().lines().count());
            }
        }
    }

    /// Every rule line maps to the origin its comment names, and every chain
    /// lists the comments of its rules in order.
    #[test]
    fn every_rule_line_has_its_origin() {
        let t = texts("extif eth0, \"ppp+\"; open tcp 22, 80 from 198.51.100.0/24, 203.0.113.0/24; masquerade; dnat 221 -> 203.0.113.2:22; icmp accept;");
        for (printed, rule_start, max) in [
            (&t.ipv4, "-A ", super::super::iptables::COMMENT_MAX),
            (&t.ipv6, "-A ", super::super::iptables::COMMENT_MAX),
            (&t.nft, "\t\t", super::super::nft::COMMENT_MAX),
        ] {
            let mut rules = 0;
            for (i, line) in printed.text().lines().enumerate() {
                let origin = printed.origin_at(i + 1);
                let is_rule = line.starts_with(rule_start) && line.contains("comment ");
                assert_eq!(origin.is_some(), is_rule, "line {}: {line}", i + 1);
                if let Some(o) = origin {
                    let c = super::super::comment_text(&o.to_string(), max);
                    assert!(line.contains(&format!("comment \"{c}\"")), "{line}");
                    rules += 1;
                }
            }
            // (a hook is listed with an empty comment: it holds no policy rule)
            let listed: usize = printed
                .chains()
                .iter()
                .map(|c| c.comments.iter().filter(|c| !c.is_empty()).count())
                .sum();
            assert_eq!(listed, rules);
        }
        let ext_in = t.nft.chains().iter().find(|c| c.name == "ext-in").unwrap();
        assert_eq!(ext_in.table, "inet firewall");
        assert_eq!(ext_in.hook, None);
        assert!(ext_in
            .comments
            .iter()
            .any(|c| c == "open tcp 22, 80 from 198.51.100.0/24, 203.0.113.0/24"));
        let post = t
            .nft
            .chains()
            .iter()
            .find(|c| c.name == "postrouting")
            .unwrap();
        assert_eq!(post.table, "ip firewall_nat");
        assert_eq!(
            (post.hook.as_deref(), post.policy.as_deref()),
            (Some("postrouting"), Some("accept"))
        );
        assert_eq!(t.nft.tables(), vec!["inet firewall", "ip firewall_nat"]);
        assert_eq!(t.ipv4.tables(), vec!["filter", "nat"]);
        // No NAT: no NAT table in the nftables file.
        assert_eq!(
            texts("extif eth0; open tcp 22;").nft.tables(),
            vec!["inet firewall"]
        );
    }

    #[test]
    fn per_family_counts() {
        let t = texts("extif eth0; open tcp 22; masquerade;");
        let v4 = t.ipv4.rules_of(Family::V4);
        let v6 = t.ipv6.rules_of(Family::V6);
        assert_eq!(t.ipv4.rules_of(Family::V6), 0);
        assert_eq!(
            v4,
            t.ipv4
                .text()
                .lines()
                .filter(|l| l.starts_with("-A ") && l.contains("--comment"))
                .count()
        );
        // nftables: the same rules reach each family (split ICMP rules count once per family).
        assert_eq!(t.nft.rules_of(Family::V4), v4);
        assert_eq!(t.nft.rules_of(Family::V6), v6);
    }

    #[test]
    fn edited_texts_keep_the_line_structure() {
        let t = texts("extif eth0; open tcp 22;");
        let v4 = t.ipv4.text().replace("--dport 22", "--dport 23");
        let e = t.__edited(&v4, t.ipv6.text(), t.nft.text()).unwrap();
        assert_eq!(e.ipv4.text(), v4);
        let line = v4.lines().position(|l| l.contains("--dport 23")).unwrap() + 1;
        assert_eq!(e.ipv4.origin_at(line).unwrap().to_string(), "open tcp 22");
        let longer = format!("{v4}-A INPUT -j DROP\n");
        let err = t
            .__edited(&longer, t.ipv6.text(), t.nft.text())
            .unwrap_err();
        assert!(err.contains("IPv4") && err.contains("in place"), "{err}");
    }
}
