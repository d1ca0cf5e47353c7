//! The kernel options a policy needs, as comment lines for the bash script's
//! header (computed by [`crate::plan::requirements`]), so that a reviewer of
//! the script sees them next to the policy.
//!
//! ```
//! use firewall_core::Policy;
//! let p = Policy::parse("extif eth0; open tcp 22, 80;").unwrap();
//! let script = p.bash();
//! assert!(script.contains("#   CONFIG_NETFILTER_XT_MATCH_MULTIPORT (xt_multiport): open tcp 22, 80\n"));
//! assert!(script.contains("# With iptables-nft instead: "));
//! assert!(script.contains("# With nftables (nft -f): CONFIG_"));
//! ```

use crate::model::Model;
use crate::plan::{
    self,
    requirements::{self, Backend, Requirement},
};
use std::fmt::Write as _;

/// The longest list of reasons written on one line, in bytes.
const REASONS_MAX: usize = 60;

/// Comment lines (each starting with `#`, ending in a newline): the
/// iptables-legacy requirements one per line with what needs them, then the
/// options iptables-nft needs in place of the legacy tables, then the
/// options of the nftables backend.
pub fn header(model: &Model) -> String {
    let plan = plan::lower(model);
    let legacy = requirements::of(&plan, Backend::IptablesLegacy);
    let nft = requirements::of(&plan, Backend::IptablesNft);
    let mut s = String::from(
        "#\n# Kernel options this policy needs with iptables-legacy (each =y, or =m with\n\
         # its module loadable), and what needs them:\n",
    );
    for r in &legacy {
        let _ = writeln!(s, "#   {} ({}): {}", r.config, r.module, reasons(r));
    }
    let extra: Vec<&str> = nft
        .iter()
        .filter(|r| !legacy.iter().any(|l| l.config == r.config))
        .map(|r| r.config)
        .collect();
    let dropped: Vec<&str> = legacy
        .iter()
        .filter(|l| !nft.iter().any(|r| r.config == l.config))
        .map(|l| l.config)
        .collect();
    let mut line = String::from("# With iptables-nft instead: ");
    wrap(&mut s, &mut line, &extra);
    s.push_str(&line);
    s.push_str(";\n");
    let mut line = String::from("#   in place of ");
    wrap(&mut s, &mut line, &dropped);
    s.push_str(&line);
    s.push_str(".\n");
    let native: Vec<&str> = requirements::of(&plan, Backend::Nftables)
        .iter()
        .map(|r| r.config)
        .collect();
    let mut line = String::from("# With nftables (nft -f): ");
    wrap(&mut s, &mut line, &native);
    s.push_str(&line);
    s.push_str(".\n");
    s
}

/// The reasons, joined by `; `, cut at [`REASONS_MAX`] with a count of the rest.
fn reasons(r: &Requirement) -> String {
    let mut out = String::new();
    for (i, reason) in r.needed_by.iter().enumerate() {
        let text: String = reason
            .to_string()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if i > 0 && out.len() + text.len() > REASONS_MAX {
            let _ = write!(out, "; and {} more", r.needed_by.len() - i);
            break;
        }
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&text);
    }
    out
}

/// Appends `words` to `line`, comma separated, moving full lines into `s`.
fn wrap(s: &mut String, line: &mut String, words: &[&str]) {
    let mut on_line = 0;
    for (i, w) in words.iter().enumerate() {
        let sep = if i + 1 < words.len() { "," } else { "" };
        if line.len() + w.len() + sep.len() > 78 && on_line > 0 {
            while line.ends_with(' ') {
                line.pop();
            }
            s.push_str(line);
            s.push('\n');
            *line = String::from("#   ");
            on_line = 0;
        }
        on_line += 1;
        line.push_str(w);
        line.push_str(sep);
        line.push(' ');
    }
    while line.ends_with(' ') {
        line.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    #[test]
    fn header_is_comment_lines_and_follows_the_policy() {
        let nat =
            Policy::parse("extif eth0; open tcp 22, 80; masquerade; redirect 26 -> 25; log drops;")
                .unwrap();
        let plain = Policy::parse("extif eth0; open tcp 22;").unwrap();
        for p in [&nat, &plain] {
            let h = header(p.model());
            assert!(h.ends_with(".\n"), "{h}");
            for line in h.lines() {
                assert!(line.starts_with('#'), "{line:?}");
                assert!(line.len() <= 110, "{line:?}");
            }
            assert!(p.bash().contains(&h), "the script carries the header");
        }
        let h = header(nat.model());
        assert!(
            h.contains("#   CONFIG_NETFILTER_XT_TARGET_MASQUERADE (xt_MASQUERADE): masquerade\n")
        );
        assert!(h.contains("#   CONFIG_NETFILTER_XT_TARGET_LOG (xt_LOG): log drops\n"));
        assert!(h.contains("(xt_multiport): open tcp 22, 80\n"));
        let h = header(plain.model());
        assert!(!h.contains("MASQUERADE") && !h.contains("xt_LOG") && !h.contains("multiport"));
        // Many reasons are cut with a count.
        assert!(h.contains("; and "), "{h}");
    }
}
