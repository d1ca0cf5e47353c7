//! Policy-level checks (DSL.md sections 3 and 7) on the lowered [`Model`]. Value checks
//! (`port-range`, `address`, interface names, `failsafe`, `redirect-self`) happen
//! while lowering, in [`crate::lowering`]; what is here needs the whole policy.
//! Checks read the model and the span table lowering made, and write only
//! diagnostics.

mod accept;
mod interfaces;
mod lockout;
mod ports;
mod router;

use crate::diagnostic::{Sink, SpanRange};
use crate::lowering::Spans;
use crate::model::Model;

/// Runs every policy-level check, into `out`. `complete` is false when some
/// statement failed to parse or lower: checks that reason about what is
/// *missing* (lockout) are then skipped, since the broken statement may be
/// what provides it.
pub(crate) fn run(model: &Model, spans: &Spans, complete: bool, whole: SpanRange, out: &mut Sink) {
    interfaces::check(model, spans, out);
    ports::check(model, spans, out);
    accept::check(model, spans, out);
    router::check(model, spans, out);
    if complete {
        lockout::check(model, spans, whole, out);
    }
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

    /// The diagnostics of `text` as (code, column, help).
    fn helps(text: &str) -> Vec<(Code, usize, String)> {
        match compile_str(text) {
            Ok(_) => Vec::new(),
            Err(ds) => ds
                .iter()
                .map(|d| (d.code, d.located().start.column, d.help.clone()))
                .collect(),
        }
    }

    #[test]
    fn an_extif_wildcard_may_not_match_a_trusted_interface() {
        for (text, column) in [
            ("extif \"eth+\"; trust eth1; open tcp 22;", 21),
            ("extif \"+\"; trust eth1; open tcp 22;", 18),
            ("extif eth0, \"ppp+\"; trust \"ppp1\"; open tcp 22;", 27),
            ("extif \"eth+\"; trust \"eth1+\"; open tcp 22;", 21),
            ("extif \"eth+\"; trust \"eth+\"; open tcp 22;", 21),
            ("extif \"eth+\"; trust eth; open tcp 22;", 21),
        ] {
            assert_eq!(codes(text), vec![(Code::Interface, column)], "{text}");
        }
        let ds = helps("extif \"eth+\"; trust eth1; open tcp 22;");
        assert!(ds[0].2.contains("\"eth+\""), "{ds:?}");
        assert!(ds[0].2.contains("extif eth0;"), "{ds:?}");
        // The bare wildcard's example is a real name, not `"0"`.
        for (text, example) in [
            (
                "extif \"+\"; trust \"br-lan\"; open tcp 22;",
                "`extif eth0;`",
            ),
            ("extif \"+\"; trust eth0; open tcp 22;", "`extif eth1;`"),
        ] {
            let ds = helps(text);
            assert!(ds[0].2.contains(example), "{text}: {ds:?}");
        }
        for ok in [
            "extif \"ppp+\"; trust eth1; open tcp 22;",
            "extif \"eth1+\"; trust eth1; open tcp 22;"
                .replace("eth1+", "eth10+")
                .as_str(),
            // A trust wildcard over an extif is fine: external is matched first.
            "extif eth0; trust \"eth+\"; open tcp 22;",
        ] {
            assert_eq!(codes(ok), vec![], "{ok}");
        }
    }

    #[test]
    fn restrictions_that_an_accepting_input_policy_makes_void() {
        assert_eq!(
            codes(
                "extif eth0; policy input accept; open tcp 22 from 198.51.100.0/24, 203.0.113.7;"
            ),
            vec![(Code::Redundant, 51)]
        );
        assert_eq!(
            codes("extif eth0; policy input accept; log drops;"),
            vec![(Code::Redundant, 34)]
        );
        // One mistake, one diagnostic: not also "redundant next to the open one".
        assert_eq!(
            codes(
                "extif eth0; policy input accept; open tcp 22; open tcp 22 from 198.51.100.0/24;"
            ),
            vec![(Code::Redundant, 64)]
        );
        for ok in [
            "extif eth0; policy input reject; open tcp 22 from 198.51.100.0/24; log drops;",
            "extif eth0; policy input accept; open tcp 22;",
            "extif eth0; open tcp 22; log drops;",
        ] {
            assert_eq!(codes(ok), vec![], "{ok}");
        }
    }

    #[test]
    fn one_diagnostic_per_duplicated_item() {
        // 1,000 repetitions of the whole range: one each, not one per pair.
        let text = format!(
            "extif eth0; open tcp 22, {};",
            vec!["1..=65535"; 1000].join(", ")
        );
        let ds = codes(&text);
        assert_eq!(ds.len(), 1000);
        assert!(ds.iter().all(|(c, _)| *c == Code::Duplicate));
        // A range over several earlier ports: one diagnostic, the help keeps the rest.
        assert_eq!(
            helps("extif eth0; open tcp 22, 80, 443; open tcp 1..=1024;"),
            vec![(
                Code::Duplicate,
                44,
                "write `1..=21, 23..=79, 81..=442, 444..=1024` here instead of `1..=1024`"
                    .to_string()
            )]
        );
        // The same host on 10,000 lines: one per repeated line.
        let mut text = String::from("extif eth0;\n");
        for _ in 0..10_000 {
            text.push_str("open tcp 22 from 198.51.100.7;\n");
        }
        assert_eq!(codes(&text).len(), 9_999);
    }

    #[test]
    fn the_same_port_to_different_hosts_is_not_a_duplicate_and_is_checked_in_n_log_n() {
        let mut text = String::from("extif eth0;\n");
        for i in 0..10_000 {
            text.push_str(&format!(
                "open tcp 22 from 10.{}.{}.{};\n",
                i / 65536 % 256,
                i / 256 % 256,
                i % 256
            ));
        }
        let t = std::time::Instant::now();
        assert_eq!(codes(&text), vec![]);
        // Pairwise, this took a minute in a debug build (9.6 s in release).
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t.elapsed()
        );
        // One long `from` list, searched with a set.
        let hosts: Vec<String> = (0..10_000)
            .map(|i| format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256))
            .collect();
        let text = format!("extif eth0; open tcp 22 from {};", hosts.join(", "));
        assert_eq!(codes(&text), vec![]);
    }

    #[test]
    fn covered_networks_are_found_through_their_supernets() {
        // An earlier network that contains a later one.
        assert_eq!(
            codes(
                "extif eth0; open tcp 22; open tcp 80 from 10.0.0.0/8; open tcp 80 from 10.1.2.3;"
            ),
            vec![(Code::Redundant, 64)]
        );
        // A later one that contains an earlier one.
        assert_eq!(
            codes(
                "extif eth0; open tcp 22; open tcp 80 from 10.1.2.3; open tcp 80 from 10.0.0.0/8;"
            ),
            vec![(Code::Redundant, 35)]
        );
        // Within one `from`.
        assert_eq!(
            codes("extif eth0; open tcp 22 from 10.0.0.0/8, 10.1.2.3;"),
            vec![(Code::Redundant, 42)]
        );
        // A port twice in one statement is one port-list mistake, whatever
        // else covers it.
        assert_eq!(
            codes("extif eth0; open tcp 22 from 10.1.0.0/16; open tcp 22, 22 from 10.1.0.0/16, 192.0.2.0/24;"),
            vec![(Code::Duplicate, 56), (Code::Duplicate, 64)]
        );
        // IPv6 and IPv4 do not contain each other.
        assert_eq!(
            codes("extif eth0; open tcp 22 from \"::/0\"; open tcp 22 from 10.0.0.0/8;"),
            vec![]
        );
    }

    #[test]
    fn a_covered_network_among_several_is_pointed_at_not_the_port() {
        // Removing `22` would revoke 192.0.2.0/24: point at the covered network.
        let ds = helps(
            "extif eth0; open tcp 22 from 10.0.0.0/8; open tcp 22 from 10.1.0.0/16, 192.0.2.0/24;",
        );
        assert_eq!(ds.len(), 1, "{ds:?}");
        assert_eq!((ds[0].0, ds[0].1), (Code::Redundant, 59));
        assert_eq!(
            ds[0].2,
            "remove `10.1.0.0/16` from this `from`: `open tcp 22 from 10.0.0.0/8` already opens these ports to it"
        );
        // Covered on one port only: the help keeps the other port open to it.
        let ds = helps(
            "extif eth0; open tcp 22 from 10.0.0.0/8; open tcp 22, 80 from 10.1.0.0/16, 192.0.2.0/24;",
        );
        assert_eq!(
            ds.iter().map(|d| d.2.as_str()).collect::<Vec<_>>(),
            vec!["remove `10.1.0.0/16` from this `from` and add `open tcp 80 from 10.1.0.0/16;`"]
        );
    }

    #[test]
    fn a_missing_comma_is_called_a_missing_comma() {
        for (text, column, example) in [
            ("extif eth0; open tcp 22 80;", 25, "`open tcp 22, 80;`"),
            ("extif eth0 eth1; open tcp 22;", 12, "`extif eth0, eth1;`"),
            (
                "extif eth0 \"ppp0\"; open tcp 22;",
                12,
                "`extif eth0, eth1;`",
            ),
            (
                "extif eth0; trust eth1 eth2; open tcp 22;",
                24,
                "`trust eth1, \"br-lan\";`",
            ),
            (
                "extif eth0; open tcp 22 from 10.0.0.0/8 192.0.2.0/24;",
                41,
                "`open tcp 22 from 198.51.100.0/24, 203.0.113.7;`",
            ),
            (
                "extif eth0; open tcp 22; block out tcp 25 465;",
                43,
                "`block out tcp 25, 465;`",
            ),
        ] {
            assert_eq!(
                helps(text),
                vec![(
                    Code::Syntax,
                    column,
                    format!("separate the items with `,`, as in {example}")
                )],
                "{text}"
            );
        }
        // A next statement is a missing `;`; other words are not list items.
        let ds = helps("extif eth0 open tcp 22;");
        assert_eq!(ds[0].2, "end every statement with `;`");
        let ds = helps("extif eth0; open tcp 22; masquerade all;");
        assert!(ds[0].2.starts_with("end the statement with `;`"), "{ds:?}");
    }

    #[test]
    fn a_hash_is_not_taken_for_a_doc_comment() {
        let ds = compile_str("# the gateway\nextif eth0;\nopen tcp 22;")
            .err()
            .unwrap_or_default();
        assert_eq!(ds.len(), 1, "{ds:?}");
        assert_eq!(ds[0].message, "`#` does not start a comment in a policy");
        assert!(ds[0].help.contains("`// ...`") && ds[0].help.contains("`/* ... */`"));
        for doc in [
            "/// the gateway\nextif eth0; open tcp 22;",
            "//! the gateway\nextif eth0; open tcp 22;",
        ] {
            let ds = compile_str(doc).err().unwrap_or_default();
            assert!(ds[0].message.starts_with("doc comments"), "{ds:?}");
        }
        // A `#` line that does not even lex: the help names the comments too.
        let ds = compile_str("# it's \"quoted\nextif eth0; open tcp 22;")
            .err()
            .unwrap_or_default();
        assert!(ds[0].help.contains("not `#`"), "{ds:?}");
    }

    #[test]
    fn an_open_range_over_several_nat_ports_is_one_diagnostic() {
        let ds =
            helps("extif eth0; open tcp 22, 40..=50; dnat 45 -> 203.0.113.2; redirect 47 -> 2525;");
        assert_eq!(ds.len(), 1, "{ds:?}");
        assert_eq!((ds[0].0, ds[0].1), (Code::Shadowed, 26));
        assert!(
            ds[0]
                .2
                .starts_with("write `40..=44, 46, 48..=50` instead of `40..=50`"),
            "{ds:?}"
        );
        // 10,000 dnat ports inside one open range: still one.
        let dnats: String = (1000..11_000)
            .map(|p| format!("dnat {p} -> 203.0.113.2;"))
            .collect();
        let text = format!("extif eth0; open tcp 22, 1000..=20000; {dnats}");
        assert_eq!(codes(&text), vec![(Code::Shadowed, 26)]);
    }

    #[test]
    fn ten_thousand_distinct_ports_check_quickly_and_cleanly() {
        let ports: Vec<String> = (1000..11000).map(|p| p.to_string()).collect();
        let text = format!("extif eth0; open tcp 22, {};", ports.join(", "));
        assert_eq!(codes(&text), vec![]);
    }
}
