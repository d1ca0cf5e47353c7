//! Policy-level checks (DSL.md section 3) on the lowered [`Model`]. Value checks
//! (`port-range`, `address`, interface names, `failsafe`, `redirect-self`) happen
//! while lowering, in [`crate::compile`]; what is here needs the whole policy.

mod interfaces;
mod lockout;
mod ports;
mod router;

use crate::compile::Spans;
use crate::diagnostic::{SpanRange, SpannedDiagnostic};
use crate::model::Model;

/// Runs every policy-level check. `complete` is false when some statement
/// failed to parse or lower: checks that reason about what is *missing*
/// (lockout) are then skipped, since the broken statement may be what provides it.
pub(crate) fn run(
    model: &Model,
    spans: &Spans,
    complete: bool,
    whole: SpanRange,
) -> Vec<SpannedDiagnostic> {
    let mut out = Vec::new();
    interfaces::check(model, spans, &mut out);
    ports::check(model, spans, &mut out);
    router::check(model, spans, &mut out);
    if complete {
        lockout::check(model, spans, whole, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::compile::compile_str;
    use crate::diagnostic::Code;

    /// The codes `text` is refused with, with the column each starts at.
    fn codes(text: &str) -> Vec<(Code, usize)> {
        match compile_str(text) {
            Ok(_) => Vec::new(),
            Err(ds) => ds
                .iter()
                .map(|d| (d.code, d.located().start.column))
                .collect(),
        }
    }

    #[test]
    fn clean_policies_pass() {
        for ok in [
            "extif eth0; open tcp 22, 80;",
            "extif eth0; open tcp 22 from 198.51.100.0/24; open tcp 22 from \"2001:db8::/32\";",
            "extif eth0; ssh none; policy input accept; dnat 22 -> 203.0.113.2;",
            "extif eth0; ssh none; policy input drop;",
            "extif eth0; ssh 2222; redirect 2222 -> 22;",
            "extif eth0; open tcp 22; open tcp 80..=90; open tcp 91..=100; open udp 80;",
            "extif eth0; open tcp 22; policy forward drop; forward drop;",
        ] {
            assert_eq!(codes(ok), vec![], "{ok}");
        }
    }

    #[test]
    fn each_mistake_has_its_code_and_place() {
        let cases: &[(&str, Code, usize)] = &[
            ("extif eth0; open tcp 80;", Code::Lockout, 1),
            ("extif eth0; ssh 2222; open tcp 22;", Code::Lockout, 13),
            (
                "extif eth0; open tcp 80; dnat 22 -> 203.0.113.2;",
                Code::Lockout,
                26,
            ),
            ("extif eth0; open tcp 22, 443, 443;", Code::Duplicate, 31),
            (
                "extif eth0; open tcp 22, 400..=500; open tcp 443;",
                Code::Duplicate,
                46,
            ),
            (
                "extif eth0; open tcp 22; dnat 80 -> 203.0.113.2; redirect 80 -> 8080;",
                Code::Duplicate,
                59,
            ),
            (
                "extif eth0; open tcp 22; open tcp 22 from 198.51.100.0/24;",
                Code::Redundant,
                35,
            ),
            (
                "extif eth0; open tcp 22, 80; redirect 80 -> 8080;",
                Code::Shadowed,
                26,
            ),
            (
                "extif eth0; open tcp 22; masquerade; forward drop;",
                Code::Router,
                38,
            ),
            (
                "extif eth0; open tcp 22; redirect 25 -> 25;",
                Code::RedirectSelf,
                35,
            ),
            (
                "extif eth0; open tcp 22 from 198.51.100.7/24;",
                Code::Address,
                30,
            ),
            (
                "extif eth0; open tcp 22; dnat 80 -> 224.0.0.1;",
                Code::Address,
                37,
            ),
            ("extif eth0; trust eth0; open tcp 22;", Code::Interface, 19),
            ("open tcp 22;", Code::Interface, 1),
            ("extif \"a/b\"; open tcp 22;", Code::Interface, 7),
            ("extif eth0; opne tcp 22;", Code::Syntax, 13),
            (
                "extif eth0; open tcp 22; icmp accept; icmp drop;",
                Code::Syntax,
                39,
            ),
            ("extif eth0; open tcp 0;", Code::PortRange, 22),
            ("extif eth0; open tcp 65536;", Code::PortRange, 22),
            ("extif eth0; open tcp 22; failsafe 2h;", Code::Failsafe, 35),
            (
                "extif eth0; open tcp 22; failsafe 61min;",
                Code::Failsafe,
                35,
            ),
        ];
        for (text, code, column) in cases {
            assert_eq!(codes(text), vec![(*code, *column)], "{text}");
        }
    }

    #[test]
    fn a_broken_statement_does_not_cause_follow_on_errors() {
        // The `open` that would accept ssh is broken: no lockout on top of it.
        assert_eq!(
            codes("extif eth0; open tcp 22 80;"),
            vec![(Code::Syntax, 25)]
        );
        // A broken `extif` is reported once, not also as "no extif".
        assert_eq!(
            codes("extif br-lan; open tcp 22;"),
            vec![(Code::Interface, 7)]
        );
    }

    #[test]
    fn ten_thousand_distinct_ports_check_quickly_and_cleanly() {
        let ports: Vec<String> = (1000..11000).map(|p| p.to_string()).collect();
        let text = format!("extif eth0; open tcp 22, {};", ports.join(", "));
        assert_eq!(codes(&text), vec![]);
    }
}
