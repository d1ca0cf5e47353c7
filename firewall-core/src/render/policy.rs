//! The policy written back in the policy language: every statement, defaults
//! spelled out (derived ones as `//` comments), one per line.
//!
//! It is valid input: parsing it gives a policy that renders the very same
//! rules. The macro hands it out as `Firewall::source()` (and `apply()` parses
//! it again), and the bash script shows it in its header.
//!
//! ```
//! use firewall_core::Policy;
//! let p = Policy::parse("extif eth0; open tcp 22 from \"2001:db8::/32\";").unwrap();
//! let text = firewall_core::render::policy::text(p.model());
//! assert!(text.contains("open tcp 22 from \"2001:db8::/32\";"));
//! assert_eq!(Policy::parse(&text).unwrap().iptables_restore(), p.iptables_restore());
//! ```

use crate::model::{Iface, Model, Verdict};

/// An interface as the language writes it: bare when it is an identifier,
/// quoted otherwise (`"br-lan"`, and keywords such as `"type"`).
pub fn iface(i: &Iface) -> String {
    i.written()
}

/// The policy, one statement (or `//` comment) per line.
pub fn lines(model: &Model) -> Vec<String> {
    // Every field, by name: a statement added to the model and forgotten here
    // does not compile (and `source()` would silently drop it).
    let Model {
        extif,
        trust,
        input,
        forward,
        output,
        opens,
        icmp_accept,
        masquerade,
        dnats,
        redirects,
        forward_drop,
        block_out,
        ssh,
        failsafe,
        log_drops,
        exclusive,
        asserts,
    } = model;
    let mut out = Vec::new();
    let list = |v: &[Iface]| v.iter().map(iface).collect::<Vec<_>>().join(", ");
    out.push(format!("extif {};", list(extif)));
    match trust {
        Some(t) => out.push(format!("trust {};", list(t))),
        None => out.push("// trusted: lo and every interface that is not external".to_string()),
    }
    let verdict = |v: Verdict| v.as_str();
    out.push(format!("policy input {};", verdict(*input)));
    match forward {
        Some(v) => out.push(format!("policy forward {};", verdict(*v))),
        None => out.push(format!(
            "// policy forward {} (derived)",
            verdict(model.forward_policy())
        )),
    }
    out.push(format!("policy output {};", verdict(*output)));
    for o in opens {
        out.push(format!("{o};"));
    }
    out.push(format!(
        "icmp {};",
        if *icmp_accept { "accept" } else { "drop" }
    ));
    if *masquerade {
        out.push("masquerade;".to_string());
    }
    for d in dnats {
        out.push(format!("{d};"));
    }
    for r in redirects {
        out.push(format!("{r};"));
    }
    if *forward_drop {
        out.push("forward drop;".to_string());
    }
    for b in block_out {
        out.push(format!("{b};"));
    }
    match ssh {
        Some(p) => out.push(format!("ssh {p};")),
        None => out.push("ssh none;".to_string()),
    }
    if let Some(f) = failsafe {
        out.push(format!("failsafe {f};"));
    }
    if *log_drops {
        out.push("log drops;".to_string());
    }
    if *exclusive {
        out.push("exclusive;".to_string());
    }
    for a in asserts {
        out.push(format!("{a};"));
    }
    out
}

/// The policy as text (the lines of [`lines`]).
pub fn text(model: &Model) -> String {
    let mut s = lines(model).join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use crate::Policy;

    #[test]
    fn keyword_interface_names_are_quoted_and_parse_back() {
        // Every Rust keyword (and `_`) is a valid interface name but not an
        // identifier to the parser: written bare, the source would not parse.
        for kw in [
            "_", "abstract", "as", "async", "await", "become", "box", "break", "const", "continue",
            "crate", "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen",
            "if", "impl", "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override",
            "priv", "pub", "ref", "return", "Self", "self", "static", "struct", "super", "trait",
            "true", "try", "type", "typeof", "unsafe", "unsized", "use", "virtual", "where",
            "while", "yield",
        ] {
            let text = format!("extif \"{kw}\"; trust \"{kw}1\", \"{kw}\"; open tcp 22;")
                .replace(&format!(", \"{kw}\";"), ";");
            let p = Policy::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(
                p.source().contains(&format!("extif \"{kw}\";")),
                "{}",
                p.source()
            );
            let again = Policy::parse(p.source())
                .unwrap_or_else(|e| panic!("{kw}: the source does not parse: {e}\n{}", p.source()));
            assert_eq!(again.source(), p.source(), "{kw}");
            assert_eq!(again.iptables_restore(), p.iptables_restore(), "{kw}");
        }
        // Plain names stay bare.
        let p =
            Policy::parse("extif eth0, from, open; open tcp 22;").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            p.source().starts_with("extif eth0, from, open;\n"),
            "{}",
            p.source()
        );
    }
}
